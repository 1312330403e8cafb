import { afterAll, beforeAll, expect, it } from "vitest";
import { HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code } from "@stratum/core";
import { startComputeStack, type ComputeStack } from "./harness";
import { HostStore } from "../src/store/host-store";
import { until } from "./until";
import { settle } from "./watch";

let stack: ComputeStack;
let hostUuids: string[];

beforeAll(async () => {
  // The pinger bounds its pings and handshakes by the interval (the policies bound the
  // explicit calls): 250 ms leaves a loaded test machine room, so a host does not flap.
  stack = await startComputeStack({ replicas: 2, hosts: 2, compute: { pingIntervalMs: 250, agent: { commands: { "host/ping": { timeoutMs: 300 }, "host/connect": { timeoutMs: 1_000 } } } } });
  hostUuids = await stack.addSimHosts(8, 8n);
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

  // Each status change has its event (written with it, relayed from the outbox): added, down, back.
  const seen: Array<{ from: string | null; to: string }> = [];
  const sub = await stack.replicas[0]!.ctx.events.subscribe<{ hostUuid: string; from: string | null; to: string }>(
    "compute.host_status_changed",
    (e) => void (e.data.hostUuid === uuid && seen.push({ from: e.data.from, to: e.data.to })),
    { from: "all" },
  );
  try {
    await until(() => seen.length >= 3, "the host's three status events");
    expect(seen).toEqual([{ from: null, to: "Connected" }, { from: "Connected", to: "Disconnected" }, { from: "Disconnected", to: "Connected" }]);
  } finally {
    await sub.stop();
  }
});

it("an explicit reconnect to a dead agent fails with the agent's error and leaves the host Disconnected", async () => {
  const sim = stack.sim.hosts[1]!;
  await sim.stop();
  const err = await stack.hosts.reconnectHost({ uuid: hostUuids[1]! }).catch((e) => e);
  expect(err).toMatchObject({ code: Code.UNAVAILABLE });
  expect(err.message).toContain("host/connect");
  expect(await status(hostUuids[1]!)).toBe(HostStatus.DISCONNECTED);
  await sim.start();
  expect((await stack.hosts.reconnectHost({ uuid: hostUuids[1]! })).host!.status).toBe(HostStatus.CONNECTED);
});

it("an explicit reconnect to a hung agent fails at host/connect's own deadline with the agent's error and leaves the host Disconnected", async () => {
  const sim = stack.sim.hosts[1]!;
  const uuid = hostUuids[1]!;
  const hung = sim.injectFault({ command: "host/connect", kind: "hang" });
  const err = await stack.hosts.reconnectHost({ uuid }).catch((e) => e);
  // The operator's handshake keeps the policy's deadline (1 s here), not the pinger's interval.
  expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED });
  expect(err.message).toContain("host/connect: no answer within 1000 ms");
  expect(await status(uuid)).toBe(HostStatus.DISCONNECTED);
  hung.clear();
  await until(async () => (await status(uuid)) === HostStatus.CONNECTED, "the pinger to reconnect the host");
});

it("after its agent restarts, a host's VMs are synced with what it really runs", async () => {
  const sim = stack.sim.hosts[0]!;
  const uuid = hostUuids[0]!;
  const lost = await settle(stack.vms, stack.vms.createVm({ name: "lost", cpu: 1, memoryBytes: 1n << 30n, hostUuid: uuid }), VmState.RUNNING);
  const revived = await settle(stack.vms, stack.vms.createVm({ name: "revived", cpu: 1, memoryBytes: 1n << 30n, hostUuid: uuid }), VmState.RUNNING);
  await settle(stack.vms, stack.vms.stopVm({ uuid: revived.uuid }), VmState.STOPPED);
  // The hypervisor changed under the agent's restart: one VM gone, the stopped one running.
  await sim.stop();
  sim.state.vms.delete(lost.uuid);
  sim.state.vms.get(revived.uuid)!.state = "running";
  await sim.start();
  const state = async (vm: string) => (await stack.vms.getVm({ uuid: vm })).vm!;
  await until(async () => (await state(lost.uuid)).state === VmState.STOPPED && (await state(revived.uuid)).state === VmState.RUNNING, "the VM states to be synced");
  expect((await state(lost.uuid)).lastError).toContain("found missing");
  await stack.vms.destroyVm({ uuid: lost.uuid });
  await stack.vms.destroyVm({ uuid: revived.uuid });
});

it("an explicit reconnect syncs the host's VMs at once", async () => {
  const uuid = hostUuids[0]!;
  const vm = await settle(stack.vms, stack.vms.createVm({ name: "vanished", cpu: 1, memoryBytes: 1n << 30n, hostUuid: uuid }), VmState.RUNNING);
  stack.sim.hosts[0]!.state.vms.delete(vm.uuid); // gone from the hypervisor, the agent still up
  await stack.hosts.reconnectHost({ uuid });
  expect((await stack.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.STOPPED, lastError: expect.stringContaining("found missing") });
  await stack.vms.destroyVm({ uuid: vm.uuid });
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

it("a host is fenced by its row version: a status write or an agent command made from an old read of it is refused", async () => {
  const uuid = hostUuids[0]!;
  const { db } = stack.replicas[0]!.ctx;
  const store = new HostStore(db as never, stack.replicas[0]!.ctx.ownership.incarnation);
  await until(async () => (await status(uuid)) === HostStatus.CONNECTED, "the host to be connected");
  const stale = (await store.get(uuid))!;
  // Two pings by the owner since that read: each carries the fence it read and moves it on.
  await until(async () => (await store.get(uuid))!.fence >= stale.fence + 2, "two pings", 10_000);
  expect(await store.setStatus(uuid, "Disconnected", { lastError: "stale", fence: stale.fence })).toBe("fenced");
  expect((await store.get(uuid))!.status).toBe("Connected");
  const sim = stack.sim.hosts[0]!;
  const res = await fetch(`${sim.url}/host/ping`, { method: "POST", headers: { "content-type": "application/json", "x-fencing-token": `host:${uuid}=${stale.fence}` }, body: JSON.stringify({ hostUuid: uuid }) });
  expect(res.status).toBe(409);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe("FENCED");
});

it("a replica that stops drains the operations it accepted before it closes its agent client", async () => {
  const vm = await settle(stack.vms, stack.vms.createVm({ name: "drain", cpu: 1, memoryBytes: 1n << 30n, hostUuid: hostUuids[0]! }), VmState.RUNNING);
  const owner = stack.replicas.find((r) => r.ctx.membership()!.owns(vm.uuid))!;
  const survivor = stack.replicas.find((r) => r !== owner)!;
  const toOwner = stack.clientsTo(stack.replicas.indexOf(owner));
  const hold = stack.sim.hosts[0]!.hold("vm/reboot", { times: 1 });
  expect((await toOwner.vms.rebootVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.REBOOTING);
  const held = await hold.next(5_000);
  // One operation at a time: a second is refused at once, naming the first's state.
  await expect(toOwner.vms.stopVm({ uuid: vm.uuid })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_BUSY", resources: { state: "Rebooting" } });
  const replicaStopped = owner.stop();
  // It left the ring first, so new calls already go elsewhere…
  await until(() => survivor.ctx.view.member("compute", owner.ctx.config.replicaId) === undefined, "the owner to leave the ring");
  held.release();
  // …and the operation it had accepted still completes before it stops.
  await replicaStopped;
  const after = (await stack.clientsTo(stack.replicas.indexOf(survivor)).vms.getVm({ uuid: vm.uuid })).vm!;
  expect(after).toMatchObject({ state: VmState.RUNNING, lastError: "" });
  expect(stack.sim.hosts[0]!.inspect().log.filter((l) => l.command === "vm/reboot" && l.fence?.startsWith(`vm:${vm.uuid}=`) && l.outcome === 200)).toHaveLength(1);
});
