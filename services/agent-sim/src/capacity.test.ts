import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_SIM_CPU_NUM, DEFAULT_SIM_MEMORY_BYTES, startAgentSim, type AgentSim } from "./index";
import { post } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const GiB = 1024 ** 3;

describe("host capacity on host/connect", () => {
  it("defaults to 32 CPUs and 128 GiB", async () => {
    sim = await startAgentSim();
    expect([DEFAULT_SIM_CPU_NUM, DEFAULT_SIM_MEMORY_BYTES]).toEqual([32, 128 * GiB]);
    expect((await post(sim.host(0).url, "host/connect")).body).toMatchObject({ cpuNum: 32, memoryBytes: 128 * GiB });
  });

  it("is configurable per simulated host", async () => {
    sim = await startAgentSim({ hosts: [{ cpuNum: 8, memoryBytes: 16 * GiB }, {}] });
    expect((await post(sim.host(0).url, "host/connect")).body).toMatchObject({ cpuNum: 8, memoryBytes: 16 * GiB });
    expect((await post(sim.host(1).url, "host/connect")).body).toMatchObject({ cpuNum: 32, memoryBytes: 128 * GiB });
  });

  it("refuses a capacity that is not a positive integer, naming the field", async () => {
    await expect(startAgentSim({ hosts: [{ cpuNum: 0 }] })).rejects.toThrow("cpuNum must be a positive integer, got 0");
    await expect(startAgentSim({ hosts: [{ memoryBytes: 1.5 }] })).rejects.toThrow("memoryBytes must be a positive integer, got 1.5");
  });
});
