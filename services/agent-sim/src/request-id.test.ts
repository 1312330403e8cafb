import { afterEach, describe, expect, it } from "vitest";
import { AgentErrorCode, startAgentSim, type AgentSim } from "./index";
import { post, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("x-request-id", () => {
  it("is recorded in the command log with the command it came with, and handed to the handler", async () => {
    const seen: Array<string | undefined> = [];
    sim = await startAgentSim({ commands: { "test/echo": ({ requestId }) => (seen.push(requestId), {}) } });
    const host = sim.host(0);
    await post(host.url, "vm/start", vmSpec("v"), { requestId: "req-1", taskId: "t-1" });
    await post(host.url, "host/ping");
    await post(host.url, "test/echo", {}, { requestId: "req-2" });
    expect(host.inspect().log.map(({ command, requestId, taskId }) => ({ command, requestId, taskId }))).toEqual([
      { command: "vm/start", requestId: "req-1", taskId: "t-1" },
      { command: "host/ping", requestId: undefined, taskId: undefined },
      { command: "test/echo", requestId: "req-2", taskId: undefined },
    ]);
    expect(seen).toEqual(["req-2"]);
  });

  it("is recorded for a request the agent refuses too", async () => {
    sim = await startAgentSim();
    await post(sim.host(0).url, "vm/start", { vmUuid: "v" }, { requestId: "req-bad-body" });
    expect(sim.host(0).inspect().log).toEqual([expect.objectContaining({ command: "vm/start", requestId: "req-bad-body", outcome: 400 })]);
  });

  it("a malformed one is a 400 naming the header, and the command does not run", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    // fetch refuses control characters itself; a space or non-ASCII is what could reach an agent.
    const reply = await post(host.url, "vm/start", vmSpec("v"), { requestId: "two words" });
    expect(reply).toMatchObject({ status: 400, body: { error: { code: AgentErrorCode.INVALID_REQUEST_ID, message: "invalid x-request-id header" } } });
    expect(host.inspect().vms).toEqual([]);
    expect(host.inspect().log[0]).not.toHaveProperty("requestId");
  });
});
