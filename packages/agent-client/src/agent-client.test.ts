import { AGENT_COMMAND_NAMES, AGENT_COMMANDS } from "@stratum/agent-protocol";
import { startAgentSim, type AgentSim } from "@stratum/agent-sim";
import { Code, createLogger, StratumError } from "@stratum/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentFailure, createAgentClient, type AgentClient, type AgentClientOptions } from "./index";

let sim: AgentSim;
let client: AgentClient;
const lines: Array<Record<string, unknown>> = [];
/** The retries the client logged. */
const warnings = (): Array<Record<string, unknown>> => lines.filter((l) => l["msg"] === "agent call retried");

async function setup(simOptions: Parameters<typeof startAgentSim>[0] = {}, clientOptions: AgentClientOptions = {}): Promise<void> {
  sim = await startAgentSim(simOptions);
  const logger = createLogger({}, { level: "debug", sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  client = createAgentClient({ baseDelayMs: 10, maxDelayMs: 50, logger, ...clientOptions });
}

beforeEach(() => {
  lines.length = 0;
});
afterEach(async () => {
  await client?.close();
  await sim?.close();
});

const spec = (vmUuid: string) => ({ vmUuid, cpuNum: 1, memoryBytes: 1 << 30 });

async function failure(promise: Promise<unknown>): Promise<StratumError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StratumError);
  return err as StratumError;
}

describe("calls", () => {
  it("sends a JSON command and resolves with the agent's JSON answer", async () => {
    await setup();
    const host = sim.host(0);
    const facts = await client.call<{ hostUuid: string; hypervisorType: string }>(host.url, "host/connect", { hostUuid: "h-1" });
    expect(facts).toMatchObject({ hostUuid: host.uuid, hypervisorType: "KVM" });
    expect(host.inspect().connection?.hostUuid).toBe("h-1");
  });

  it("reuses an idle connection younger than the keep-alive cap", async () => {
    await setup({ socketTimeoutMs: 10_000 }, { keepAliveTimeoutMs: 1_000 });
    const host = sim.host(0);
    for (let i = 0; i < 3; i++) {
      await client.call(host.url, "host/ping");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(host.connectionStats.accepted).toBe(1);
  });

  it("evicts an idle connection once it is older than the cap (the client closes it, not the agent)", async () => {
    await setup({ socketTimeoutMs: 10_000 }, { keepAliveTimeoutMs: 200 });
    const host = sim.host(0);
    await client.call(host.url, "host/ping");
    expect(host.connectionStats.open).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(host.connectionStats).toMatchObject({ open: 0, idleClosed: 0 });
    expect(Object.values(client.stats())[0]?.connected ?? 0).toBe(0);
    await client.call(host.url, "host/ping");
    expect(host.connectionStats.accepted).toBe(2);
  });

  it("rejects bad input before sending anything", async () => {
    await setup();
    expect((await failure(client.call("not a url", "host/ping"))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await failure(client.call(sim.host(0).url, "../etc/passwd"))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await failure(client.call(sim.host(0).url, "host/ping", {}, { taskId: "has space" }))).code).toBe(Code.INVALID_ARGUMENT);
    expect(sim.host(0).inspect().log).toHaveLength(0);
  });
});

describe("retries", () => {
  it("retries an idempotent command after connection resets", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "reset", times: 2 });
    await expect(client.call(host.url, "host/ping")).resolves.toMatchObject({ hostUuid: host.uuid });
    expect(host.inspect().commands["host/ping"]).toMatchObject({ received: 3, executed: 1, faulted: 2 });
    expect(warnings().map((w) => w["attempt"])).toEqual([1, 2]);
    expect(warnings()[0]).toMatchObject({ level: "warn", command: "host/ping", reason: AgentFailure.UNREACHABLE });
  });

  it("gives up after maxAttempts with AGENT_UNREACHABLE naming the host and command", async () => {
    await setup({}, { maxAttempts: 3 });
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "reset" });
    const err = await failure(client.call(host.url, "host/ping", {}, { hostUuid: "host-a" }));
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.UNREACHABLE });
    expect(err.message).toContain("host-a");
    expect(err.message).toContain("host/ping");
    expect(err.message).toContain("after 3 attempts");
    expect(err.resources).toMatchObject({ hostUuid: "host-a", hostUrl: host.url, command: "host/ping", errorCode: "ECONNRESET" });
    expect(err.cause).toBeInstanceOf(Error);
    expect(host.inspect().commands["host/ping"]!.received).toBe(3);
  });

  it("retries a non-idempotent command that carries a task id; it runs once (reset before it ran)", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "vm/start", kind: "reset", times: 1 });
    await client.call(host.url, "vm/start", spec("vm-1"), { taskId: "job-1/start" });
    expect(host.inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1 });
  });

  it("retries a non-idempotent command with a task id whose reply was lost; the agent answers from the first run", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "vm/start", kind: "reset", phase: "after", times: 1 });
    await expect(client.call(host.url, "vm/start", spec("vm-1"), { taskId: "job-2/start" })).resolves.toMatchObject({ alreadyRunning: false });
    expect(host.inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1, deduplicated: 1 });
  });

  it("never retries a non-idempotent command without a task id: the error surfaces, the agent ran it exactly once", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "vm/start", kind: "reset", phase: "after", times: 1 });
    const err = await failure(client.call(host.url, "vm/start", spec("vm-1")));
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.UNREACHABLE });
    expect(host.inspect().commands["vm/start"]).toMatchObject({ received: 1, executed: 1 });
    expect(host.inspect().vms).toHaveLength(1);
    expect(warnings()).toHaveLength(0);
  });

  it("treats vm/stop as not idempotent (a late repeat could undo the next operation)", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "vm/stop", kind: "reset", times: 1 });
    await failure(client.call(host.url, "vm/stop", { vmUuid: "v" }));
    expect(host.inspect().commands["vm/stop"]!.received).toBe(1);
  });

  it("retries a 503 for a safe command, not a 500", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "http500", status: 503, times: 1 });
    await expect(client.call(host.url, "host/ping")).resolves.toBeDefined();
    host.injectFault({ command: "host/ping", kind: "http500", times: 1 });
    await failure(client.call(host.url, "host/ping"));
    expect(host.inspect().commands["host/ping"]!.received).toBe(3);
  });

  it("maps a refused connection (agent down) to AGENT_UNREACHABLE after retries", async () => {
    await setup();
    const host = sim.host(0);
    await host.stop();
    const err = await failure(client.call(host.url, "host/ping"));
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.UNREACHABLE });
    expect(err.resources["errorCode"]).toBe("ECONNREFUSED");
    expect(warnings()).toHaveLength(2);
  });

  it("does not retry when the backoff would end past the call's deadline: the real failure surfaces at once", async () => {
    await setup({}, { baseDelayMs: 1_000, maxDelayMs: 1_000, maxAttempts: 5 });
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "reset" });
    const started = Date.now();
    const err = await failure(client.call(host.url, "host/ping", {}, { timeoutMs: 300 }));
    expect(err.reason).toBe(AgentFailure.UNREACHABLE);
    expect(Date.now() - started).toBeLessThan(250);
    expect(host.inspect().commands["host/ping"]!.received).toBe(1);
  });
});

describe("error mapping", () => {
  it("a hung agent is AGENT_TIMEOUT (DEADLINE_EXCEEDED) at the call's deadline, not retried", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "hang" });
    const started = Date.now();
    const err = await failure(client.call(host.url, "host/ping", {}, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, reason: AgentFailure.TIMEOUT });
    expect(err.message).toContain("within 300 ms");
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500);
    expect(host.inspect().commands["host/ping"]!.received).toBe(1);
  });

  it("uses the command's default timeout when none is given", async () => {
    await setup({}, { commands: { "host/ping": { timeoutMs: 200 } } });
    sim.host(0).injectFault({ command: "host/ping", kind: "hang" });
    expect((await failure(client.call(sim.host(0).url, "host/ping"))).message).toContain("within 200 ms");
    expect(client.policyOf("vm/migrate")).toEqual({ idempotent: false, timeoutMs: 10 * 60_000 });
    expect(client.policyOf("vm/migrate/status")).toEqual({ idempotent: true, timeoutMs: 10_000 });
    expect(client.policyOf("vm/migrate/abort")).toEqual({ idempotent: true, timeoutMs: 10_000 });
    expect(client.policyOf("custom/thing")).toEqual({ idempotent: false, timeoutMs: 60_000 });
  });

  it("a 500 is AGENT_ERROR (INTERNAL) with the agent's message", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "vm/start", kind: "http500", message: "libvirt: domain exploded", times: 1 });
    const err = await failure(client.call(host.url, "vm/start", spec("vm-1"), { taskId: "t-500" }));
    expect(err).toMatchObject({ code: Code.INTERNAL, reason: AgentFailure.ERROR });
    expect(err.message).toContain("libvirt: domain exploded");
    expect(err.message).toContain("vm/start");
    expect(err.resources).toMatchObject({ httpStatus: "500", agentErrorCode: "INJECTED_FAULT", taskId: "t-500" });
    expect(host.inspect().commands["vm/start"]!.received).toBe(1);
  });

  it("4xx answers are AGENT_REJECTED with a code matching the status", async () => {
    await setup();
    const url = sim.host(0).url;
    const missing = await failure(client.call(url, "vm/start", { vmUuid: "v", cpuNum: 1 }));
    expect(missing).toMatchObject({ code: Code.INVALID_ARGUMENT, reason: AgentFailure.REJECTED });
    expect(missing.message).toContain("missing field: memoryBytes");
    expect(await failure(client.call(url, "vm/teleport", {}))).toMatchObject({ code: Code.UNIMPLEMENTED, reason: AgentFailure.REJECTED });
    expect(await failure(client.call(url, "vm/reboot", { vmUuid: "ghost" }))).toMatchObject({ code: Code.NOT_FOUND, reason: AgentFailure.REJECTED });
    await client.call(url, "vm/start", spec("v"));
    await client.call(url, "vm/stop", { vmUuid: "v" });
    expect(await failure(client.call(url, "vm/reboot", { vmUuid: "v" }))).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: AgentFailure.REJECTED });
  });

  it("the caller's abort is AGENT_CALL_CANCELLED", async () => {
    await setup();
    sim.host(0).injectFault({ command: "host/ping", kind: "hang" });
    const controller = new AbortController();
    const call = client.call(sim.host(0).url, "host/ping", {}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await failure(call)).toMatchObject({ code: Code.CANCELLED, reason: AgentFailure.CANCELLED });
  });
});

describe("close", () => {
  it("closes idle connections at once and fails later calls with AGENT_CLIENT_CLOSED", async () => {
    await setup({ socketTimeoutMs: 10_000 });
    const host = sim.host(0);
    await client.call(host.url, "host/ping");
    expect(host.connectionStats.open).toBe(1);
    await client.close();
    expect(client.closed).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(host.connectionStats.open).toBe(0);
    const err = await failure(client.call(host.url, "host/ping"));
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.CLIENT_CLOSED });
  });

  it("lets an in-flight call finish within the grace period", async () => {
    await setup({ latency: { commands: { "host/ping": 200 } } });
    const call = client.call(sim.host(0).url, "host/ping");
    await new Promise((r) => setTimeout(r, 50));
    await client.close({ graceMs: 2_000 });
    await expect(call).resolves.toMatchObject({ hostUuid: sim.host(0).uuid });
  });

  it("aborts calls still running after the grace period, so shutdown cannot hang", async () => {
    await setup();
    sim.host(0).injectFault({ command: "host/ping", kind: "hang" });
    // Observe the outcome from the start: the call fails inside close(), before the assertion.
    const outcome = failure(client.call(sim.host(0).url, "host/ping", {}, { timeoutMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await client.close({ graceMs: 200 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await outcome).toMatchObject({ reason: AgentFailure.CLIENT_CLOSED });
  });
});

describe("protocol", () => {
  it("retries without a task id exactly the commands the protocol calls idempotent, each with a deadline", () => {
    const c = createAgentClient();
    for (const command of AGENT_COMMAND_NAMES) {
      expect(c.policyOf(command), command).toEqual({ idempotent: AGENT_COMMANDS[command].idempotent, timeoutMs: expect.any(Number) });
    }
    expect(c.policyOf("toString")).toEqual({ idempotent: false, timeoutMs: 60_000 });
    void c.close();
  });
});
