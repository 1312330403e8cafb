import { startAgentSim, type AgentSim } from "@stratum/agent-sim";
import { Code, runWithWork, StratumError } from "@stratum/core";
import { afterEach, expect, it } from "vitest";
import { createAgentClient, type AgentClient } from "./index";

let sim: AgentSim;
let client: AgentClient;
afterEach(async () => {
  await client?.close();
  await sim?.close();
});

const requestIds = () => sim.host(0).inspect().log.map((e) => e.requestId);

it("sends the work scope's request id with every agent call (retries included)", async () => {
  sim = await startAgentSim();
  client = createAgentClient({ baseDelayMs: 1, maxDelayMs: 1 });
  const host = sim.host(0);
  host.injectFault({ command: "host/ping", kind: "http500", status: 503, times: 1 });
  await runWithWork({ requestId: "req-42" }, async () => {
    await client.call(host.url, "host/ping");
    await client.call(host.url, "vm/start", { vmUuid: "v", cpuNum: 1, memoryBytes: 1 << 30 }, { taskId: "t-1" });
  });
  await client.call(host.url, "host/ping"); // outside any work: none sent
  expect(requestIds()).toEqual(["req-42", "req-42", "req-42", undefined]);
});

it("an explicit request id wins over the work scope's", async () => {
  sim = await startAgentSim();
  client = createAgentClient();
  await runWithWork({ requestId: "from-scope" }, () => client.call(sim.host(0).url, "host/ping", {}, { requestId: "explicit" }));
  expect(requestIds()).toEqual(["explicit"]);
});

it("a malformed explicit request id is INVALID_ARGUMENT and nothing is sent; a malformed ambient one is left out", async () => {
  sim = await startAgentSim();
  client = createAgentClient();
  const err = await client.call(sim.host(0).url, "host/ping", {}, { requestId: "a\r\nx-evil: 1" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StratumError);
  expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [expect.objectContaining({ field: "requestId" })] });
  expect(requestIds()).toEqual([]);
  await runWithWork({ requestId: "has space" }, () => client.call(sim.host(0).url, "host/ping"));
  expect(requestIds()).toEqual([undefined]);
});
