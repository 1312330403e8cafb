import { afterAll, beforeAll, expect, it } from "vitest";
import { HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

let stack: ComputeStack;
let hostUuids: string[];

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 2, hosts: 2, compute: { pingIntervalMs: 100, agent: { commands: { "host/ping": { timeoutMs: 300 }, "host/connect": { timeoutMs: 300 } } } } });
  hostUuids = await stack.addSimHosts(4, 8n);
});
afterAll(() => stack?.stop());

const status = async (uuid: string) => (await stack.hosts.getHost({ uuid })).host!.status;

it("the owner marks a host Disconnected when its agent stops answering, and reconnects it when it is back", async () => {
  const sim = stack.sim.hosts[0]!;
  const uuid = hostUuids[0]!;
  const handshakes = sim.inspect().connection!.count;

  await sim.stop();
  await until(async () => (await status(uuid)) === HostStatus.DISCONNECTED, "host to be marked Disconnected");
  const down = (await stack.hosts.getHost({ uuid })).host!;
  expect(down.lastError).toContain(sim.url);
  // The other host is unaffected.
  expect(await status(hostUuids[1]!)).toBe(HostStatus.CONNECTED);

  await sim.start();
  await until(async () => (await status(uuid)) === HostStatus.CONNECTED, "host to reconnect");
  expect((await stack.hosts.getHost({ uuid })).host!.lastError).toBe("");
  // Reconnecting is a new handshake, not just a ping that answered.
  expect(sim.inspect().connection!.count).toBeGreaterThan(handshakes);

  // Exactly one replica, the owner, pings each host.
  const owners = stack.replicas.filter((r) => r.ctx.membership()!.owns(uuid));
  expect(owners).toHaveLength(1);
});

it("a new VM is not placed on a disconnected host", async () => {
  const sim = stack.sim.hosts[1]!;
  const uuid = hostUuids[1]!;
  await sim.stop();
  await until(async () => (await status(uuid)) === HostStatus.DISCONNECTED, "host to be marked Disconnected");
  for (let i = 0; i < 4; i++) {
    const { vm } = await stack.vms.createVm({ name: `avoid-${i}`, cpu: 1, memoryBytes: 1n << 30n });
    expect(vm!.hostUuid).toBe(hostUuids[0]);
  }
  await sim.start();
});
