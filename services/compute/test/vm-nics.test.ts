import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipStatus, type Eip } from "@stratum/proto/stratum/network/v1/eip_pb";
import { IpHolderKind } from "@stratum/proto/stratum/network/v1/network_pb";
import { VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { MarkStore, EIP_SYNCS, NIC_RELEASES } from "../src/store/mark-store";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { untilVmState } from "./watch";

let stack: ComputeStack;
let hostUuids: string[];
let publicL3: string;

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2, network: true });
  hostUuids = await stack.addSimHosts(32, 128n);
  const { l3Network } = await stack.network.networks.createL3Network({ name: "public", cidr: "172.30.0.0/24", public: true });
  await stack.network.networks.addIpRange({ l3NetworkUuid: l3Network!.uuid, startIp: "172.30.0.10", endIp: "172.30.0.250" });
  publicL3 = l3Network!.uuid;
});
afterAll(() => stack?.stop());

const db = () => stack.replicas[0]!.ctx.db;
const marks = (spec: typeof EIP_SYNCS) => new MarkStore(db() as never, spec).pending();
/** The addresses network holds for NICs of `vmUuid` on `l3`. */
async function heldFor(vmUuid: string, l3 = stack.network.l3NetworkUuid): Promise<string[]> {
  const out: string[] = [];
  let pageToken = "";
  do {
    const page = await stack.network.networks.listIpAddresses({ l3NetworkUuid: l3, pageSize: 1000, pageToken });
    out.push(...page.ipAddresses.filter((a) => a.vmUuid === vmUuid && a.holderKind === IpHolderKind.NIC).map((a) => a.ip));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return out;
}
const cpuUsed = async () => (await stack.hosts.listHosts({})).hosts.reduce((n, h) => n + h.cpuUsed, 0);
/** A small network of `size` addresses (10.60.x.10 …). */
async function smallNetwork(size: number): Promise<string> {
  const n = Math.floor(Math.random() * 200) + 1;
  const { l3Network } = await stack.network.networks.createL3Network({ name: `small-${n}`, cidr: `10.${60 + (n % 60)}.${n}.0/24` });
  await stack.network.networks.addIpRange({ l3NetworkUuid: l3Network!.uuid, startIp: `10.${60 + (n % 60)}.${n}.10`, endIp: `10.${60 + (n % 60)}.${n}.${9 + size}` });
  return l3Network!.uuid;
}
async function untilEip(uuid: string, pick: (e: Eip) => boolean, what: string): Promise<Eip> {
  let last: Eip | undefined;
  await until(async () => pick((last = (await stack.network.eips.getEip({ uuid })).eip!)), `eip ${uuid} ${what}`, 20_000).catch((e) => {
    throw new Error(`${(e as Error).message}: it is ${last ? `${EipStatus[last.status]} (${last.statusReason})` : "unseen"}`);
  });
  return last!;
}
/** The sim host behind compute host `hostUuid` (added in the sim's order). */
const simOf = (hostUuid: string) => stack.sim.hosts[hostUuids.indexOf(hostUuid)]!;
const rulesOn = (hostUuid: string) => simOf(hostUuid).inspect().eips;

describe("a VM's NICs", () => {
  it("a VM created on L3 networks has a NIC on each, in order, with an address network holds for it: in the answer, GetVm, ListVms, WatchVm and the agent's vm/start", async () => {
    const second = await smallNetwork(10);
    const { vm } = await stack.vms.createVm({ name: "with-nics", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]!, l3NetworkUuids: [stack.network.l3NetworkUuid, second] });
    expect(vm!.nics.map((n) => [n.deviceIndex, n.l3NetworkUuid])).toEqual([
      [0, stack.network.l3NetworkUuid],
      [1, second],
    ]);
    const [nic0, nic1] = vm!.nics;
    expect(nic0!.ip).toMatch(/^10\.50\./);
    expect(nic1!.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(nic0!.mac).not.toBe(nic1!.mac);
    expect(await heldFor(vm!.uuid)).toEqual([nic0!.ip]);
    expect(await heldFor(vm!.uuid, second)).toEqual([nic1!.ip]);

    const running = await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    expect(running.nics).toEqual(vm!.nics);
    expect((await stack.vms.getVm({ uuid: vm!.uuid })).vm!.nics).toEqual(vm!.nics);
    const listed = (await stack.vms.listVms({ hostUuid: hostUuids[0]! })).vms.find((v) => v.uuid === vm!.uuid);
    expect(listed!.nics).toEqual(vm!.nics);
    // The agent got them with vm/start, as a real one plugs them.
    const onAgent = simOf(hostUuids[0]!).inspect();
    expect(onAgent.vms.find((v) => v.vmUuid === vm!.uuid)!.spec).toMatchObject({
      nics: vm!.nics.map((n) => ({ nicUuid: n.uuid, mac: n.mac, ip: n.ip, l3NetworkUuid: n.l3NetworkUuid })),
    });
  });

  it("a VM without networks has no NIC, and its create asks network nothing", async () => {
    const before = stack.vmEvents.length;
    const { vm } = await stack.vms.createVm({ name: "bare", cpu: 1, memoryBytes: GIB });
    expect(vm!.nics).toEqual([]);
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    expect(stack.vmEvents.length).toBeGreaterThan(before);
    expect((await marks(EIP_SYNCS)).map((m) => m.key)).not.toContain(vm!.uuid);
  });

  it("a batch on a network with room for only some: those are Created, the others answer RESOURCE_EXHAUSTED naming the network and leave nothing (no VM, no address, no root volume, capacity back)", async () => {
    const small = await smallNetwork(3);
    const cpuBefore = await cpuUsed();
    const uuids: string[] = Array.from({ length: 6 }, () => randomUUID());
    // Each also on the big network: the addresses it did get there must be given back.
    const outcomes = await Promise.allSettled(uuids.map((uuid) => stack.vms.createVm({ uuid, name: `full-${uuid.slice(0, 8)}`, cpu: 1, memoryBytes: GIB, l3NetworkUuids: [stack.network.l3NetworkUuid, small] })));
    const created = uuids.filter((_, i) => outcomes[i]!.status === "fulfilled");
    const refused = uuids.filter((_, i) => outcomes[i]!.status === "rejected");
    expect(created).toHaveLength(3);
    for (const o of outcomes) {
      if (o.status === "rejected") {
        expect(o.reason).toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
        expect(o.reason.message).toContain(small);
      }
    }
    expect(await cpuUsed()).toBe(cpuBefore + 3);
    for (const uuid of refused) {
      await expect(stack.vms.getVm({ uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND });
      expect(stack.vmEvents.filter((e) => e.data.vmUuid === uuid)).toEqual([]);
      expect(await heldFor(uuid, small)).toEqual([]);
      // Its root volume (storage made it) and its address on the big network are given back.
      await until(async () => (await heldFor(uuid)).length === 0, `the address of refused vm ${uuid} given back`);
      await until(async () => (await stack.storage.client.listVolumes({ vmUuid: uuid })).volumes.every((v) => v.state === VolumeState.DELETED), `the root volume of ${uuid} released`);
    }
    await until(async () => (await marks(NIC_RELEASES)).every((m) => !refused.includes(m.key)), "the NIC release marks drained");
  });

  it("destroy gives the NICs' addresses back (ReleaseVmNics from a durable mark), also when network was down at the destroy", async () => {
    const { vm } = await stack.vms.createVm({ name: "to-destroy", cpu: 1, memoryBytes: GIB, l3NetworkUuids: [stack.network.l3NetworkUuid] });
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    expect(await heldFor(vm!.uuid)).toHaveLength(1);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
    const destroyed = await untilVmState(stack.vms, vm!.uuid, VmState.DESTROYED);
    expect(destroyed.nics).toEqual([]);
    await until(async () => (await heldFor(vm!.uuid)).length === 0, "the address given back");

    const { vm: other } = await stack.vms.createVm({ name: "destroy-in-outage", cpu: 1, memoryBytes: GIB, l3NetworkUuids: [stack.network.l3NetworkUuid] });
    await untilVmState(stack.vms, other!.uuid, VmState.RUNNING);
    await stack.network.stop();
    await stack.vms.destroyVm({ uuid: other!.uuid });
    await untilVmState(stack.vms, other!.uuid, VmState.DESTROYED);
    await until(async () => (await marks(NIC_RELEASES)).some((m) => m.key === other!.uuid && m.attempts > 0 && m.lastError !== ""), "the release tried and kept");
    await stack.network.start();
    await until(async () => (await heldFor(other!.uuid)).length === 0, "the address given back once network returned", 20_000);
    await until(async () => !(await marks(NIC_RELEASES)).some((m) => m.key === other!.uuid), "the release mark cleared");
  });

  it("a create while network is down answers UNAVAILABLE naming network and leaves nothing (its root volume released); the retry succeeds once it is back", async () => {
    const cpuBefore = await cpuUsed();
    await stack.network.stop();
    const req = { uuid: randomUUID(), name: "create-in-outage", cpu: 1, memoryBytes: GIB, clientRequestId: `outage-${randomUUID()}`, l3NetworkUuids: [stack.network.l3NetworkUuid] };
    const err = await stack.vms.createVm(req).catch((e) => e);
    try {
      expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: "NETWORK_UNAVAILABLE", resources: { vmUuid: req.uuid } });
      await expect(stack.vms.getVm({ uuid: req.uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND });
      expect(await cpuUsed()).toBe(cpuBefore);
    } finally {
      await stack.network.start();
    }
    await until(async () => (await stack.storage.client.listVolumes({ vmUuid: req.uuid })).volumes.every((v) => v.state === VolumeState.DELETED), "the root volume released");
    const { vm } = await stack.vms.createVm(req);
    expect(vm).toMatchObject({ uuid: req.uuid, state: VmState.CREATED });
    expect(vm!.nics).toHaveLength(1);
    expect(await heldFor(req.uuid)).toEqual([vm!.nics[0]!.ip]);
    await untilVmState(stack.vms, req.uuid, VmState.RUNNING);
  });
});

describe("a VM's elastic IPs follow its EIP host (SyncVmEips from durable marks)", () => {
  async function runningWithEip(): Promise<{ vm: Vm; eip: Eip }> {
    const { vm } = await stack.vms.createVm({ name: "eip-vm", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]!, l3NetworkUuids: [stack.network.l3NetworkUuid] });
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    const { eip } = await stack.network.eips.createEip({ name: `eip-${vm!.uuid.slice(0, 8)}`, l3NetworkUuid: publicL3 });
    await stack.network.eips.attachEip({ uuid: eip!.uuid, vmNicUuid: vm!.nics[0]!.uuid });
    const active = await untilEip(eip!.uuid, (e) => e.status === EipStatus.ACTIVE, "active");
    expect(active).toMatchObject({ hostUuid: hostUuids[0]!, guestIp: vm!.nics[0]!.ip });
    return { vm: vm!, eip: active };
  }

  it("stop writes the mark and network releases the rule (Down); start applies it again (Active); the marks drain", async () => {
    const { vm, eip } = await runningWithEip();
    expect(rulesOn(hostUuids[0]!).map((r) => r.eipUuid)).toContain(eip.uuid);
    await stack.vms.stopVm({ uuid: vm.uuid });
    await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
    await untilEip(eip.uuid, (e) => e.status === EipStatus.DOWN, "down after the stop");
    expect(rulesOn(hostUuids[0]!).map((r) => r.eipUuid)).not.toContain(eip.uuid);
    await until(async () => !(await marks(EIP_SYNCS)).some((m) => m.key === vm.uuid), "the sync mark drained");

    await stack.vms.startVm({ uuid: vm.uuid });
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    await untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.hostUuid === hostUuids[0]!, "active again after the start");
    expect(rulesOn(hostUuids[0]!).map((r) => r.eipUuid)).toContain(eip.uuid);
    await until(async () => !(await marks(EIP_SYNCS)).some((m) => m.key === vm.uuid), "the sync mark drained");
  });

  it("a stop while network is down keeps the mark (attempts and error recorded) and network gets it once back", async () => {
    const { vm, eip } = await runningWithEip();
    await stack.network.stop();
    try {
      await stack.vms.stopVm({ uuid: vm.uuid });
      await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
      await until(async () => (await marks(EIP_SYNCS)).some((m) => m.key === vm.uuid && m.attempts > 0 && m.lastError !== ""), "the sync tried and kept");
    } finally {
      await stack.network.start();
    }
    await untilEip(eip.uuid, (e) => e.status === EipStatus.DOWN, "down once network returned");
    expect(rulesOn(hostUuids[0]!).map((r) => r.eipUuid)).not.toContain(eip.uuid);
    await until(async () => !(await marks(EIP_SYNCS)).some((m) => m.key === vm.uuid), "the sync mark drained");
  });

  it("a host whose agent restarted without its rules is reconciled by network on the reconnect (ReconcileHostEips)", async () => {
    const { eip } = await runningWithEip();
    const host = simOf(hostUuids[0]!);
    // The agent restarts (a new boot id) and its NAT table is empty, as after a host reboot.
    await host.stop();
    await host.start({ loseEipRules: true });
    expect(rulesOn(hostUuids[0]!).map((r) => r.eipUuid)).not.toContain(eip.uuid);
    await stack.hosts.reconnectHost({ uuid: hostUuids[0]! });
    await until(() => rulesOn(hostUuids[0]!).some((r) => r.eipUuid === eip.uuid), "the rule applied again by the reconcile", 20_000);
    await until(async () => (await db().sql`SELECT 1 FROM compute.host_eip_reconciles WHERE host_uuid = ${hostUuids[0]!}`).length === 0, "the reconcile mark drained");
  });
});

describe("SetVmNicIp", () => {
  it("moves the NIC to the address asked for (or the next free one): network holds it, the VM shows it (a new revision on WatchVm), the old one is free; its EIP follows", async () => {
    const { vm } = await stack.vms.createVm({ name: "renumber", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]!, l3NetworkUuids: [stack.network.l3NetworkUuid] });
    const running = await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    const nic = running.nics[0]!;
    const { eip } = await stack.network.eips.createEip({ name: "follows", l3NetworkUuid: publicL3 });
    await stack.network.eips.attachEip({ uuid: eip!.uuid, vmNicUuid: nic.uuid });
    await untilEip(eip!.uuid, (e) => e.status === EipStatus.ACTIVE, "active");

    const { vm: moved } = await stack.vms.setVmNicIp({ uuid: vm!.uuid, nicUuid: nic.uuid, ip: "10.50.200.7", clientRequestId: `renumber-${randomUUID()}` });
    expect(moved!.nics[0]).toMatchObject({ uuid: nic.uuid, ip: "10.50.200.7", mac: nic.mac });
    expect(moved!.revision).toBeGreaterThan(running.revision);
    expect(await heldFor(vm!.uuid)).toEqual(["10.50.200.7"]);
    expect((await stack.vms.getVm({ uuid: vm!.uuid })).vm!.nics[0]!.ip).toBe("10.50.200.7");
    for await (const m of stack.vms.watchVm({ uuid: vm!.uuid }, { timeoutMs: 5_000 })) {
      expect(m.vm!.nics[0]!.ip).toBe("10.50.200.7");
      break;
    }
    await untilEip(eip!.uuid, (e) => e.status === EipStatus.ACTIVE && e.guestIp === "10.50.200.7", "following the new address");
    await until(() => rulesOn(hostUuids[1]!).some((r) => r.eipUuid === eip!.uuid && r.guestIp === "10.50.200.7"), "the rule on the agent with the new address");

    // Stopped VMs too; an empty ip: the next free one.
    await stack.vms.stopVm({ uuid: vm!.uuid });
    await untilVmState(stack.vms, vm!.uuid, VmState.STOPPED);
    const { vm: again } = await stack.vms.setVmNicIp({ uuid: vm!.uuid, nicUuid: nic.uuid });
    expect(again!.nics[0]!.ip).not.toBe("10.50.200.7");
    expect(await heldFor(vm!.uuid)).toEqual([again!.nics[0]!.ip]);
  });

  it("refuses a NIC that is not the VM's (NOT_FOUND naming both), a VM in an operation (VM_BUSY) or destroyed (VM_STATE_INVALID), changing nothing", async () => {
    const { vm } = await stack.vms.createVm({ name: "refuse", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]!, l3NetworkUuids: [stack.network.l3NetworkUuid] });
    const running = await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    const ip = running.nics[0]!.ip;
    const stranger = randomUUID();
    const notMine = await stack.vms.setVmNicIp({ uuid: vm!.uuid, nicUuid: stranger, ip: "10.50.201.1" }).catch((e) => e);
    expect(notMine).toMatchObject({ code: Code.NOT_FOUND, reason: "NIC_NOT_FOUND" });
    expect(notMine.message).toContain(stranger);
    expect(notMine.message).toContain(vm!.uuid);

    // Held in an operation: the agent's vm/stop is held, the VM stays Stopping.
    const hold = simOf(hostUuids[1]!).hold("vm/stop");
    await stack.vms.stopVm({ uuid: vm!.uuid });
    const held = await hold.next(10_000);
    const busy = await stack.vms.setVmNicIp({ uuid: vm!.uuid, nicUuid: running.nics[0]!.uuid, ip: "10.50.201.2" }).catch((e) => e);
    held.release();
    expect(busy).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_BUSY" });
    await untilVmState(stack.vms, vm!.uuid, VmState.STOPPED);
    expect(await heldFor(vm!.uuid)).toEqual([ip]);
    expect((await stack.vms.getVm({ uuid: vm!.uuid })).vm!.nics[0]!.ip).toBe(ip);

    await stack.vms.destroyVm({ uuid: vm!.uuid });
    await untilVmState(stack.vms, vm!.uuid, VmState.DESTROYED);
    const gone = await stack.vms.setVmNicIp({ uuid: vm!.uuid, nicUuid: running.nics[0]!.uuid }).catch((e) => e);
    expect(gone).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID" });
  });
});
