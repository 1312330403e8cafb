import { startAgentSim, type AgentSim } from "@stratum/agent-sim";
import { Code, createLogger, runWithWork } from "@stratum/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentFailure, createAgentClient, type AgentCallEvent, type AgentClient, type AgentClientOptions } from "./index";

let sim: AgentSim;
let client: AgentClient;
const lines: Array<Record<string, unknown>> = [];
const events: AgentCallEvent[] = [];

async function setup(clientOptions: AgentClientOptions = {}): Promise<void> {
  sim = await startAgentSim();
  const logger = createLogger({ component: "test" }, { level: "debug", sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  client = createAgentClient({ baseDelayMs: 10, maxDelayMs: 20, logger, onCall: (e) => events.push(e), ...clientOptions });
}

beforeEach(() => {
  lines.length = 0;
  events.length = 0;
});
afterEach(async () => {
  await client?.close();
  await sim?.close();
});

const byMsg = (msg: string) => lines.filter((l) => l["msg"] === msg);

describe("logging (the kit's Logger)", () => {
  it("logs each retry at warn with the command, host, attempt, error and request id", async () => {
    await setup();
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "reset", times: 1 });
    await runWithWork({ requestId: "req-retry" }, () => client.call(host.url, "host/ping", {}, { hostUuid: "host-a" }));
    expect(byMsg("agent call retried")).toEqual([
      expect.objectContaining({
        level: "warn", component: "test", command: "host/ping", hostUuid: "host-a", attempt: 1, requestId: "req-retry",
        reason: AgentFailure.UNREACHABLE, code: "UNAVAILABLE", error: expect.stringContaining("ECONNRESET"),
      }),
    ]);
    // It succeeded in the end: no failure line.
    expect(byMsg("agent call failed")).toEqual([]);
  });

  it("logs a final failure once, at the level of its kind", async () => {
    await setup({ maxAttempts: 2 });
    const host = sim.host(0);
    host.injectFault({ command: "host/ping", kind: "reset" });
    await client.call(host.url, "host/ping").catch(() => undefined);
    await client.call(host.url, "vm/reboot", { vmUuid: "ghost" }).catch(() => undefined);
    host.injectFault({ command: "vm/stop", kind: "http500", times: 1 });
    await client.call(host.url, "vm/stop", { vmUuid: "v" }).catch(() => undefined);
    expect(byMsg("agent call failed").map((l) => [l["command"], l["level"], l["reason"], l["attempts"]])).toEqual([
      ["host/ping", "warn", AgentFailure.UNREACHABLE, 2], // host trouble: an operator's concern
      ["vm/reboot", "info", AgentFailure.REJECTED, 1], // the caller's business
      ["vm/stop", "error", AgentFailure.ERROR, 1], // failed inside the agent
    ]);
  });
});

describe("onCall (metrics)", () => {
  it("is told once per call how it ended: outcome, code, attempts, duration", async () => {
    await setup({ maxAttempts: 3 });
    const host = sim.host(0);
    await client.call(host.url, "host/connect", {}, { hostUuid: "h-1" });
    host.injectFault({ command: "host/ping", kind: "reset" });
    await client.call(host.url, "host/ping").catch(() => undefined);
    expect(events).toEqual([
      { command: "host/connect", hostUuid: "h-1", outcome: "ok", durationMs: expect.any(Number), attempts: 1 },
      { command: "host/ping", outcome: AgentFailure.UNREACHABLE, code: Code.UNAVAILABLE, durationMs: expect.any(Number), attempts: 3 },
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
  });

  it("counts a call the deadline stopped as AGENT_TIMEOUT", async () => {
    await setup();
    sim.host(0).injectFault({ command: "host/ping", kind: "hang" });
    await client.call(sim.host(0).url, "host/ping", {}, { timeoutMs: 100 }).catch(() => undefined);
    expect(events).toEqual([expect.objectContaining({ outcome: AgentFailure.TIMEOUT, code: Code.DEADLINE_EXCEEDED, attempts: 1 })]);
  });

  it("an observer that throws does not fail the call; the throw is logged", async () => {
    sim = await startAgentSim();
    const logger = createLogger({}, { sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    client = createAgentClient({ logger, onCall: () => { throw new Error("metrics broke"); } });
    await expect(client.call(sim.host(0).url, "host/ping")).resolves.toMatchObject({ hostUuid: sim.host(0).uuid });
    expect(byMsg("agent call observer threw")).toEqual([expect.objectContaining({ level: "error", command: "host/ping" })]);
  });
});
