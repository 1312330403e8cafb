import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack, durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema, RequestInfoSchema } from "@stratum/proto/google/rpc/error_details_pb";
import { StatusSchema } from "@stratum/proto/google/rpc/status_pb";
import { EchoRequestSchema, EchoService, EchoStreamRequestSchema } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { Harness, rejection } from "./echo.fixture";
import { StratumError } from "@stratum/core";
import { STATUS_DETAILS_KEY } from "./status";
import { fieldPath, validate } from "@stratum/core";

const h = new Harness();
afterEach(() => h.close());

/** A raw grpc-js unary call with caller-chosen bytes, bypassing our client and its serializer. */
function rawUnary(address: string, path: string, body: Uint8Array): Promise<{ err: grpc.ServiceError | null; response: Buffer | undefined }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(body),
      new grpc.Metadata(),
      {},
      (err, response) => {
        client.close();
        resolve({ err, response });
      },
    );
  });
}


describe("round trips", () => {
  it("unary: request in, response out, request id from x-request-id", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const payload = new Uint8Array([0, 1, 2, 255]);
    const res = await client.echo({ message: "hello", payload }, { metadata: { "x-request-id": "req-123" } });
    expect(res.message).toBe("hello");
    expect(res.payload).toEqual(payload);
    expect(res.requestId).toBe("req-123");
    // Without one, the server makes one up.
    const generated = await client.echo({ message: "x" });
    expect(generated.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("server streaming: every message in order, then the end", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const got: [string, number][] = [];
    for await (const m of client.echoStream({ message: "tick", count: 4, interval: durationFromMs(5) })) got.push([m.message, m.index]);
    expect(got).toEqual([
      ["tick", 0],
      ["tick", 1],
      ["tick", 2],
      ["tick", 3],
    ]);
  });

  it("client streaming: every request in, one response out", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    async function* parts() {
      for (const message of ["con", "cat", "enated"]) {
        await new Promise((r) => setTimeout(r, 2));
        yield { message };
      }
    }
    await expect(h.concatClient(server.address).concat(parts())).resolves.toMatchObject({ message: "concatenated", count: 3 });
  });

  it("client streaming: a request source that fails cancels the call; the handler never sees a complete stream", async () => {
    let outcome: unknown = "not started";
    let firstReceived!: () => void;
    const received = new Promise<void>((r) => (firstReceived = r));
    const server = await h.server({
      async concat(requests) {
        try {
          for await (const _ of requests) firstReceived();
          outcome = "completed";
        } catch (err) {
          outcome = err;
        }
        return {};
      },
    });
    const client = h.concatClient(server.address);
    async function* broken() {
      yield { message: "a" };
      await received;
      throw new Error("source failed");
    }
    await expect(client.concat(broken())).rejects.toThrow("source failed");
    await expect.poll(() => outcome, { timeout: 5_000 }).not.toBe("not started");
    await expect.poll(() => (outcome instanceof StratumError ? outcome.code : outcome), { timeout: 5_000 }).toBe(Code.CANCELLED);
  });

  it("server streaming: an error after some messages reaches the consumer as StratumError", async () => {
    const server = await h.server({
      async *echoStream(req) {
        yield { message: req.message, index: 0 };
        throw new StratumError(Code.FAILED_PRECONDITION, "host went away", { reason: "HOST_DISCONNECTED", resources: { hostUuid: "h1" } });
      },
    });
    const client = h.client(server.address);
    const got: number[] = [];
    const err = await rejection(
      (async () => {
        for await (const m of client.echoStream({ message: "m", count: 5 })) got.push(m.index);
      })(),
    );
    expect(got).toEqual([0]);
    expect(err.code).toBe(Code.FAILED_PRECONDITION);
    expect(err.reason).toBe("HOST_DISCONNECTED");
    expect(err.resources).toEqual({ hostUuid: "h1" });
  });
});

describe("errors", () => {
  const failRequest = {
    code: Code.NOT_FOUND,
    reason: "VM_NOT_FOUND",
    message: "vm 7f3c not found",
    resources: { vmUuid: "7f3c", hostUuid: "h9" },
    violations: [{ field: "vm_uuid", description: "no such vm" }],
  };

  it("a StratumError reaches the client with code, message, reason, resources and violations", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const err = await rejection(client.fail(failRequest));
    expect(err.code).toBe(Code.NOT_FOUND);
    expect(err.message).toBe("vm 7f3c not found");
    expect(err.reason).toBe("VM_NOT_FOUND");
    expect(err.resources).toEqual({ vmUuid: "7f3c", hostUuid: "h9" });
    expect(err.violations).toEqual([{ field: "vm_uuid", description: "no such vm" }]);
  });

  it("the wire format is a standard google.rpc.Status in grpc-status-details-bin", async () => {
    const server = await h.server();
    const body = toBinary(EchoService.method.fail.input, create(EchoService.method.fail.input, failRequest));
    const { err } = await rawUnary(server.address, "/stratum.echo.v1.EchoService/Fail", body);
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toBe("vm 7f3c not found");
    const raw = err?.metadata.get(STATUS_DETAILS_KEY)[0];
    expect(raw).toBeInstanceOf(Buffer);
    const status = fromBinary(StatusSchema, raw as Buffer);
    expect(status.code).toBe(Code.NOT_FOUND);
    expect(status.message).toBe("vm 7f3c not found");
    expect(status.details.map((d) => d.typeUrl)).toEqual([
      "type.googleapis.com/google.rpc.ErrorInfo",
      "type.googleapis.com/google.rpc.BadRequest",
      "type.googleapis.com/google.rpc.RequestInfo",
    ]);
    const [infoAny, badAny, reqAny] = status.details;
    const info = anyUnpack(infoAny!, ErrorInfoSchema);
    expect(info?.reason).toBe("VM_NOT_FOUND");
    expect(info?.domain).toBe("stratum.io");
    expect(info?.metadata).toEqual({ vmUuid: "7f3c", hostUuid: "h9" });
    const bad = anyUnpack(badAny!, BadRequestSchema);
    expect(bad?.fieldViolations.map((v) => [v.field, v.description])).toEqual([["vm_uuid", "no such vm"]]);
    const requestInfo = anyUnpack(reqAny!, RequestInfoSchema);
    expect(requestInfo?.requestId).toBe(err?.metadata.get("x-request-id")[0]);
  });

  it("anything else becomes INTERNAL 'internal error'; the cause is logged, never sent", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const secret = "duplicate key value violates unique constraint \"vm_pkey\" (SELECT * FROM vm)";
    const err = await rejection(client.fail({ code: Code.OK, message: secret }, { metadata: { "x-request-id": "req-int" } }));
    expect(err.code).toBe(Code.INTERNAL);
    expect(err.message).toBe("internal error");
    expect(err.reason).toBe("INTERNAL");
    expect(JSON.stringify({ m: err.message, r: err.resources, v: err.violations })).not.toContain("vm_pkey");
    // The raw status line and details carry no trace of it either.
    const body = toBinary(EchoService.method.fail.input, create(EchoService.method.fail.input, { code: Code.OK, message: secret }));
    const raw = await rawUnary(server.address, "/stratum.echo.v1.EchoService/Fail", body);
    expect(raw.err?.details).toBe("internal error");
    expect(Buffer.from(raw.err?.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer).toString("latin1")).not.toContain("vm_pkey");
    // The server's log has one structured error line with the cause and the ids.
    const line = server.lines.find((l) => l["level"] === "error" && l["requestId"] === "req-int");
    expect(line).toMatchObject({ msg: "rpc failed", service: "stratum.echo.v1.EchoService", method: "Fail", code: "INTERNAL" });
    expect(JSON.stringify(line)).toContain("vm_pkey");
  });

  it("validate() in a handler answers INVALID_ARGUMENT naming every bad field", async () => {
    const server = await h.server({
      echo(req) {
        validate((v) => {
          v.required(fieldPath(EchoRequestSchema.field.message), req.message);
          v.check(req.payload.length <= 2, fieldPath(EchoRequestSchema.field.payload), "must be at most 2 bytes");
        });
        return { message: req.message };
      },
    });
    const client = h.client(server.address);
    const err = await rejection(client.echo({ message: " ", payload: new Uint8Array(3) }));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.violations).toEqual([
      { field: "message", description: "is required" },
      { field: "payload", description: "must be at most 2 bytes" },
    ]);
    expect(err.message).toContain("message: is required");
    await expect(client.echo({ message: "ok", payload: new Uint8Array(2) })).resolves.toMatchObject({ message: "ok" });
  });

  it("unknown fields in a request are rejected with INVALID_ARGUMENT, not silently dropped", async () => {
    let called = false;
    const server = await h.server({
      echo(req) {
        called = true;
        return { message: req.message };
      },
    });
    // EchoRequest{message:"hi"} followed by field 9 (varint 1), which EchoRequest does not have.
    const known = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hi" }));
    const body = new Uint8Array([...known, (9 << 3) | 0, 1]);
    const { err } = await rawUnary(server.address, "/stratum.echo.v1.EchoService/Echo", body);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain("unknown field number 9");
    expect(called).toBe(false);
    const ok = await rawUnary(server.address, "/stratum.echo.v1.EchoService/Echo", known);
    expect(ok.err).toBeNull();
  });

  it("malformed request bytes get INVALID_ARGUMENT naming the message type", async () => {
    const server = await h.server();
    const { err } = await rawUnary(server.address, "/stratum.echo.v1.EchoService/Echo", new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]));
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/^malformed request: cannot decode stratum\.echo\.v1\.EchoRequest/);
  });

  it("unknown methods and services get UNIMPLEMENTED", async () => {
    const server = await h.server();
    const method = await rawUnary(server.address, "/stratum.echo.v1.EchoService/NoSuchMethod", new Uint8Array());
    expect(method.err?.code).toBe(grpc.status.UNIMPLEMENTED);
    const service = await rawUnary(server.address, "/stratum.nope.v1.NopeService/Echo", new Uint8Array());
    expect(service.err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("an oversized request gets RESOURCE_EXHAUSTED with a message saying so", async () => {
    const server = await h.server({}, { maxReceiveMessageLength: 64 * 1024 });
    const client = h.client(server.address);
    const err = await rejection(client.echo({ message: "big", payload: new Uint8Array(100 * 1024) }));
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/larger than max/);
    await expect(client.echo({ message: "small", payload: new Uint8Array(60 * 1024) })).resolves.toMatchObject({ message: "small" });
  });

  it("an oversized response gets RESOURCE_EXHAUSTED on the client", async () => {
    const server = await h.server();
    const client = h.client(server.address, { channelOptions: { "grpc.max_receive_message_length": 1024 } });
    const err = await rejection(client.echo({ message: "big", payload: new Uint8Array(4096) }));
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
  });
});

describe("server streaming requests", () => {
  it("are checked too: unknown fields are rejected", async () => {
    const server = await h.server();
    const known = toBinary(EchoStreamRequestSchema, create(EchoStreamRequestSchema, { message: "m", count: 1 }));
    const body = Buffer.from([...known, (12 << 3) | 0, 1]);
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const call = client.makeServerStreamRequest("/stratum.echo.v1.EchoService/EchoStream", (b: Buffer) => b, (b: Buffer) => b, body, new grpc.Metadata(), {});
    const err = await new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve).on("data", () => {}));
    client.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toContain("unknown field number 12");
  });
});
