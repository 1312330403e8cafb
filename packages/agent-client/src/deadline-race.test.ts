/**
 * The deadline against failures that really happened (the host-ping flake: a reconnect to a
 * stopped agent answered DEADLINE_EXCEEDED instead of UNAVAILABLE about once a run).
 *
 * undici settles a request that is aborted while its connection is still being made only when
 * the connect ends — with the connect's own error. On a loaded machine the loop can reach the
 * deadline timer before the poll that delivers ECONNREFUSED, so the refusal arrives after the
 * deadline fired, and was reported as "no answer in time". Here the condition is forced, not
 * waited for: the loop is blocked (as a busy CI machine does) past the deadline between the
 * request's dispatch and the refusal's delivery, or between a failed attempt and its retry.
 */
import { startAgentSim, type AgentSim } from "@stratum/agent-sim";
import { Code, createLogger, StratumError } from "@stratum/core";
import { afterEach, expect, it } from "vitest";
import { AgentFailure, createAgentClient, type AgentClient } from "./index";

let sim: AgentSim;
let client: AgentClient;
afterEach(async () => {
  await client?.close();
  await sim?.close();
});

/** Blocks the event loop for `ms`: timers fall due, no I/O is delivered meanwhile. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy on purpose
  }
}

async function failure(promise: Promise<unknown>): Promise<StratumError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StratumError);
  return err as StratumError;
}

it("a refusal delivered after the deadline fired is still AGENT_UNREACHABLE (UNAVAILABLE), not a timeout", async () => {
  sim = await startAgentSim();
  client = createAgentClient({ maxAttempts: 1 });
  const host = sim.host(0);
  await host.stop();
  const call = failure(client.call(host.url, "host/connect", {}, { timeoutMs: 20 }));
  stall(60); // the connect is under way; its refusal can only be read after the deadline timer ran
  const err = await call;
  expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.UNREACHABLE });
  expect(err.resources["errorCode"]).toBe("ECONNREFUSED");
  expect(err.message).toContain("host/connect");
});

it("a deadline that ends the backoff before a retry reports the last attempt's failure", async () => {
  sim = await startAgentSim();
  const host = sim.host(0);
  await host.stop();
  // The retry log line is written right before the backoff: stall there, past the deadline.
  const logger = createLogger({}, { sink: (line) => { if (line.includes("agent call retried")) stall(80); } });
  client = createAgentClient({ logger, baseDelayMs: 10, maxDelayMs: 10, maxAttempts: 3 });
  const err = await failure(client.call(host.url, "host/connect", {}, { timeoutMs: 40 }));
  expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: AgentFailure.UNREACHABLE });
  expect(err.resources["errorCode"]).toBe("ECONNREFUSED");
});

it("a deadline that cuts short an attempt the agent received is still AGENT_TIMEOUT", async () => {
  sim = await startAgentSim();
  const host = sim.host(0);
  host.injectFault({ command: "host/connect", kind: "reset", times: 1 });
  host.injectFault({ command: "host/connect", kind: "hang" });
  client = createAgentClient({ baseDelayMs: 1, maxDelayMs: 1 });
  const err = await failure(client.call(host.url, "host/connect", {}, { timeoutMs: 200 }));
  expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, reason: AgentFailure.TIMEOUT });
  expect(host.inspect().commands["host/connect"]!.received).toBe(2);
});
