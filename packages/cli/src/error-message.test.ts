import { describe, expect, it } from "vitest";
import { Code, STATUS_DETAILS_KEY, StratumError } from "@stratum/rpc";
import { describeError, type ErrorContext } from "./error-message";

const ctx: ErrorContext = { endpoint: { service: "compute", target: "127.0.0.1:7101", display: "127.0.0.1:7101", source: "default" }, timeoutMs: 60_000, requestId: "req-1" };

/** What the client raises for a status that came with google.rpc.Status details (i.e. from a Stratum server). */
function fromServer(code: Code, message: string, options: ConstructorParameters<typeof StratumError>[2] = {}): StratumError {
  const metadata = { get: (key: string) => (key === STATUS_DETAILS_KEY ? [new Uint8Array([1])] : []) };
  return new StratumError(code, message, { ...options, cause: { code, metadata } });
}

/** What the client raises when no server answered (grpc-js status without details). */
function fromTransport(code: Code, message: string): StratumError {
  return new StratumError(code, message, { cause: { code, metadata: { get: () => [] } } });
}

describe("describeError", () => {
  it("prints each field violation on its own line", () => {
    const err = fromServer(Code.INVALID_ARGUMENT, "invalid argument: …", {
      reason: "INVALID_ARGUMENT",
      violations: [
        { field: "memory_bytes", description: "must be between 16777216 and 17592186044416" },
        { field: "name", description: "is required" },
      ],
    });
    expect(describeError(err, ctx)).toEqual(["error: INVALID_ARGUMENT: memory_bytes: must be between 16777216 and 17592186044416", "error: INVALID_ARGUMENT: name: is required"]);
  });

  it("shows the reason when it says more than the code", () => {
    const err = fromServer(Code.NOT_FOUND, "vm 0b7c not found", { reason: "VM_NOT_FOUND" });
    expect(describeError(err, ctx)).toEqual(["error: NOT_FOUND (VM_NOT_FOUND): vm 0b7c not found"]);
  });

  it("says compute cannot be reached when no server answered, and what to do about it", () => {
    const [line] = describeError(fromTransport(Code.UNAVAILABLE, "No connection established"), ctx);
    expect(line).toMatch(/^error: cannot reach compute at 127\.0\.0\.1:7101 \(UNAVAILABLE\); start the devstack/);
    const fromFlag = describeError(fromTransport(Code.UNAVAILABLE, "x"), { ...ctx, endpoint: { ...ctx.endpoint, source: "--endpoint" } });
    expect(fromFlag).toEqual(["error: cannot reach compute at 127.0.0.1:7101 (UNAVAILABLE)"]);
  });

  it("names the service and its own settings when longjob cannot be reached", () => {
    const longjob = { ...ctx, endpoint: { service: "longjob" as const, target: "127.0.0.1:7401", display: "127.0.0.1:7401", source: "default" as const } };
    expect(describeError(fromTransport(Code.UNAVAILABLE, "x"), longjob)).toEqual([
      "error: cannot reach longjob at 127.0.0.1:7401 (UNAVAILABLE); start the devstack (pnpm start), or pass --longjob-endpoint HOST:PORT or set STRATUM_LONGJOB_ENDPOINT",
    ]);
    const fromEnv = { ...longjob, endpoint: { ...longjob.endpoint, source: "STRATUM_LONGJOB_ENDPOINT" as const } };
    expect(describeError(fromTransport(Code.UNAVAILABLE, "x"), fromEnv)).toEqual(["error: cannot reach longjob at 127.0.0.1:7401 (UNAVAILABLE); the address is from $STRATUM_LONGJOB_ENDPOINT"]);
  });

  it("keeps a server's own UNAVAILABLE (e.g. an unreachable agent) as the server worded it", () => {
    const err = fromServer(Code.UNAVAILABLE, "agent http://10.0.0.5:7070 host/connect: connection refused", { reason: "AGENT_UNREACHABLE" });
    expect(describeError(err, ctx)).toEqual(["error: UNAVAILABLE (AGENT_UNREACHABLE): agent http://10.0.0.5:7070 host/connect: connection refused"]);
  });

  it("words a client-side deadline as a timeout that may not have undone the change", () => {
    const [line] = describeError(fromTransport(Code.DEADLINE_EXCEEDED, "Deadline exceeded"), { ...ctx, timeoutMs: 1500 });
    expect(line).toMatch(/^error: no answer from compute at 127\.0\.0\.1:7101 within 1\.5 s \(DEADLINE_EXCEEDED\); a change may still complete/);
  });

  it("adds the request id to internal errors so the server's log can be searched", () => {
    expect(describeError(fromServer(Code.INTERNAL, "internal error"), ctx)).toEqual(["error: INTERNAL: internal error (request id req-1)"]);
  });
});
