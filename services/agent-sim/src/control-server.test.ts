import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, request } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("control endpoint", () => {
  it("lists hosts and serves their state", async () => {
    sim = await startAgentSim({ hosts: 2, controlPort: 0 });
    const control = sim.controlUrl!;
    const hosts = await request(`${control}/hosts`, "GET");
    expect(hosts.body.hosts).toEqual(sim.hosts.map((h, index) => ({ index, hostUuid: h.uuid, url: h.url, port: h.port, listening: true, cpuNum: 32, memoryBytes: 128 * 1024 ** 3 })));
    await post(sim.host(1).url, "vm/start", { vmUuid: "v", cpuNum: 1, memoryBytes: 1024 });
    const byUuid = await request(`${control}/hosts/${sim.host(1).uuid}/state`, "GET");
    const byIndex = await request(`${control}/hosts/1/state`, "GET");
    expect(byUuid.body.vms).toEqual([expect.objectContaining({ vmUuid: "v", state: "running" })]);
    expect(byIndex.body).toEqual(byUuid.body);
    expect((await request(`${control}/state`, "GET")).body.hosts).toHaveLength(2);
    expect((await request(`${control}/hosts/nope/state`, "GET")).status).toBe(404);
  });

  it("injects, lists and clears faults", async () => {
    sim = await startAgentSim({ controlPort: 0 });
    const base = `${sim.controlUrl!}/hosts/0`;
    const created = await request(`${base}/faults`, "POST", { command: "host/ping", kind: "http500", times: 1 });
    expect(created.body.id).toEqual(expect.any(String));
    expect((await request(`${base}/faults`, "GET")).body.faults).toEqual([expect.objectContaining({ command: "host/ping", kind: "http500", times: 1, hits: 0 })]);
    expect((await post(sim.host(0).url, "host/ping")).status).toBe(500);
    expect((await post(sim.host(0).url, "host/ping")).status).toBe(200);
    await request(`${base}/faults`, "POST", { kind: "http500" });
    await request(`${base}/faults`, "DELETE");
    expect((await post(sim.host(0).url, "host/ping")).status).toBe(200);
    const bad = await request(`${base}/faults`, "POST", { kind: "slow" });
    expect(bad).toMatchObject({ status: 400, body: { error: { message: "missing field: delayMs" } } });
  });

  it("sets latency globally and per host", async () => {
    sim = await startAgentSim({ controlPort: 0 });
    expect((await request(`${sim.controlUrl!}/latency`, "PUT", { commands: { "host/ping": 300 } })).status).toBe(200);
    let t = Date.now();
    await post(sim.host(0).url, "host/ping");
    expect(Date.now() - t).toBeGreaterThanOrEqual(290);
    await request(`${sim.controlUrl!}/hosts/0/latency`, "PUT", { defaultMs: 0 });
    t = Date.now();
    await post(sim.host(0).url, "host/ping");
    expect(Date.now() - t).toBeLessThan(200);
    expect((await request(`${sim.controlUrl!}/latency`, "PUT", { defaultMs: -1 })).status).toBe(400);
  });

  it("finishes volume tasks and stops/starts hosts", async () => {
    sim = await startAgentSim({ controlPort: 0 });
    const url = sim.host(0).url;
    await post(url, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "t", durationMs: 60_000 });
    const finished = await request(`${sim.controlUrl!}/hosts/0/volume-tasks/t/finish`, "POST", { state: "failed" });
    expect(finished.body.task.state).toBe("failed");
    await request(`${sim.controlUrl!}/hosts/0/stop`, "POST");
    await expect(post(url, "host/ping")).rejects.toThrow();
    await request(`${sim.controlUrl!}/hosts/0/start`, "POST");
    expect((await post(url, "host/ping")).status).toBe(200);
  });

  it("answers unknown endpoints with 404 and wrong methods with 405", async () => {
    sim = await startAgentSim({ controlPort: 0 });
    expect((await request(`${sim.controlUrl!}/nope`, "GET")).status).toBe(404);
    expect((await request(`${sim.controlUrl!}/hosts`, "POST")).status).toBe(405);
  });
});
