import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { causeCode, post, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("fault injection", () => {
  it("http500 answers a 5xx `times` times, without running the command", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    sim.host(0).injectFault({ command: "vm/start", kind: "http500", times: 2, message: "libvirt is sad" });
    const first = await post(url, "vm/start", vmSpec("vm-1"));
    expect(first).toMatchObject({ status: 500, body: { error: { code: "INJECTED_FAULT", message: "libvirt is sad" } } });
    expect((await post(url, "vm/start", vmSpec("vm-1"))).status).toBe(500);
    expect((await post(url, "vm/start", vmSpec("vm-1"))).status).toBe(200);
    expect(sim.host(0).inspect().commands["vm/start"]).toMatchObject({ received: 3, executed: 1, faulted: 2 });
  });

  it("http500 can carry another 5xx status and hit after the command ran", async () => {
    sim = await startAgentSim();
    sim.host(0).injectFault({ command: "vm/start", kind: "http500", status: 503, phase: "after", times: 1 });
    expect((await post(sim.host(0).url, "vm/start", vmSpec("vm-1"))).status).toBe(503);
    expect(sim.host(0).inspect().vms).toHaveLength(1);
  });

  it("only the named command on the named host is hit", async () => {
    sim = await startAgentSim({ hosts: 2 });
    sim.host(0).injectFault({ command: "vm/stop", kind: "http500" });
    expect((await post(sim.host(0).url, "vm/start", vmSpec("v"))).status).toBe(200);
    expect((await post(sim.host(1).url, "vm/stop", { vmUuid: "v" })).status).toBe(200);
    expect((await post(sim.host(0).url, "vm/stop", { vmUuid: "v" })).status).toBe(500);
  });

  it("a permanent fault hits until cleared; `*` hits every command", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    const fault = sim.host(0).injectFault({ command: "*", kind: "http500" });
    for (let i = 0; i < 3; i++) expect((await post(url, "host/ping")).status).toBe(500);
    expect((await post(url, "vm/stop", { vmUuid: "v" })).status).toBe(500);
    expect(fault.hits).toBe(4);
    fault.clear();
    expect((await post(url, "host/ping")).status).toBe(200);
  });

  it("hang never answers; the client has to give up", async () => {
    sim = await startAgentSim();
    sim.host(0).injectFault({ command: "host/ping", kind: "hang", times: 1 });
    const started = Date.now();
    const err = await post(sim.host(0).url, "host/ping", {}, { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(sim.host(0).inspect().commands["host/ping"]).toMatchObject({ received: 1, executed: 0 });
    expect((await post(sim.host(0).url, "host/ping")).status).toBe(200);
  });

  it("reset destroys the connection with an RST (ECONNRESET)", async () => {
    sim = await startAgentSim();
    sim.host(0).injectFault({ command: "host/ping", kind: "reset", times: 1 });
    const err = await post(sim.host(0).url, "host/ping").catch((e: unknown) => e);
    expect(causeCode(err)).toBe("ECONNRESET");
    expect(sim.host(0).inspect().log.at(-1)).toMatchObject({ command: "host/ping", outcome: "reset", fault: "reset" });
  });

  it("slow delays the answer by delayMs", async () => {
    sim = await startAgentSim();
    sim.host(0).injectFault({ command: "host/ping", kind: "slow", delayMs: 250, times: 1 });
    const started = Date.now();
    expect((await post(sim.host(0).url, "host/ping")).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });

  it("rejects an invalid rule, naming the field", async () => {
    sim = await startAgentSim();
    expect(() => sim!.host(0).injectFault({ kind: "slow" })).toThrow("missing field: delayMs");
    expect(() => sim!.host(0).injectFault({ kind: "explode" as never })).toThrow(/kind/);
  });
});

describe("latency", () => {
  it("applies per host and per command, host settings first", async () => {
    sim = await startAgentSim({ hosts: 2, latency: { commands: { "host/ping": 300 } } });
    sim.host(1).setLatency({ defaultMs: 0 });
    const time = async (url: string, command: string, body: unknown = {}): Promise<number> => {
      const t = Date.now();
      await post(url, command, body);
      return Date.now() - t;
    };
    expect(await time(sim.host(0).url, "host/ping")).toBeGreaterThanOrEqual(290);
    expect(await time(sim.host(0).url, "vm/stop", { vmUuid: "v" })).toBeLessThan(200);
    expect(await time(sim.host(1).url, "host/ping")).toBeLessThan(200);
    sim.host(1).setLatency({ commands: { "vm/stop": 300 } });
    expect(await time(sim.host(1).url, "vm/stop", { vmUuid: "v" })).toBeGreaterThanOrEqual(290);
  });
});
