import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { IpHolderKind } from "@stratum/proto/stratum/network/v1/network_pb";
import { VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { exitOf } from "@stratum/runtime/testing";
import { ownedBy, startChildReplica } from "./child-replica";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { untilVmState } from "./watch";

/**
 * A replica killed (crash point, in a child process) between a create's accept — the VM placed,
 * Created, its capacity held — and the record of its root volume and NICs with its first event.
 * CreateVm had not answered, so the takeover removes the VM as a failed create: capacity back,
 * what storage and network made for it released, no event. The caller's retry (same request id)
 * then creates it afresh, its events starting from ∅.
 */
let stack: ComputeStack;
let hostUuid: string;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 1, network: true });
  hostUuid = (await stack.addSimHosts(8, 16n))[0]!;
});
afterAll(() => stack?.stop());

const cpuUsed = async () => (await stack.hosts.getHost({ uuid: hostUuid })).host!.cpuUsed;
const rowOf = async (uuid: string) => (await stack.replicas[0]!.ctx.db.sql`SELECT state::text AS state, root_volume_uuid FROM compute.vms WHERE uuid = ${uuid}`)[0];
const volumesOf = async (vmUuid: string) => (await stack.storage.client.listVolumes({ vmUuid })).volumes;
const chainOf = (uuid: string) => stack.vmEvents.filter((e) => e.data.vmUuid === uuid).map((e) => `${e.data.from ?? "∅"}→${e.data.to}`);
async function heldFor(vmUuid: string): Promise<string[]> {
  const page = await stack.network.networks.listIpAddresses({ l3NetworkUuid: stack.network.l3NetworkUuid, pageSize: 1000 });
  return page.ipAddresses.filter((a) => a.vmUuid === vmUuid && a.holderKind === IpHolderKind.NIC).map((a) => a.ip);
}

/** Starts compute-1 to die at `step`, and a create of a VM it owns that reaches that step. */
async function createKilledAt(step: string, name: string) {
  const child = await startChildReplica(stack, "compute-1", { STRATUM_CRASH_POINT: step });
  const exited = exitOf(child);
  const uuid = ownedBy(stack);
  const req = { uuid, name, cpu: 1, memoryBytes: GIB, hostUuid, l3NetworkUuids: [stack.network.l3NetworkUuid], clientRequestId: `create-${uuid}` };
  const failed = await stack.vms.createVm(req).catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(StratumError); // the caller was never told of the VM
  expect(await exited).toBe("SIGKILL");
  // The crash came inside the window: placed and Created, nothing recorded for it.
  expect(await rowOf(uuid)).toEqual({ state: "Created", root_volume_uuid: null });
  return req;
}

/** The retried create, to its end: Running with its root volume and NIC, events chained from ∅. */
async function expectCreatedAfresh(vm: Vm, before: number): Promise<void> {
  expect(vm.state).toBe(VmState.CREATED);
  expect(vm.rootVolumeUuid).not.toBe("");
  expect(vm.nics).toHaveLength(1);
  const running = await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
  expect(running.rootVolumeUuid).toBe(vm.rootVolumeUuid);
  await until(() => chainOf(vm.uuid).length >= 3, `the events of ${vm.uuid}`);
  expect(chainOf(vm.uuid)).toEqual(["∅→Created", "Created→Starting", "Starting→Running"]);
  expect(await cpuUsed()).toBe(before + 1);
  const live = (await volumesOf(vm.uuid)).filter((v) => v.state !== VolumeState.DELETED);
  expect(live.map((v) => [v.uuid, v.state])).toEqual([[vm.rootVolumeUuid, VolumeState.IN_USE]]);
  expect(await heldFor(vm.uuid)).toEqual([vm.nics[0]!.ip]);
  await stack.vms.destroyVm({ uuid: vm.uuid });
  await untilVmState(stack.vms, vm.uuid, VmState.DESTROYED);
  expect(await cpuUsed()).toBe(before);
}

describe("a create whose replica died between its accept and the record of its root volume and NICs", () => {
  it("is removed by the takeover like a failed create (no VM, capacity back, root volume and address released, no event); the retry creates it afresh", async () => {
    const before = await cpuUsed();
    const req = await createKilledAt("compute:create-resources-answered", "killed-before-record");
    // Storage and network had answered: what they made is there, and nobody holds it.
    expect(await volumesOf(req.uuid)).toHaveLength(1);
    expect(await heldFor(req.uuid)).toHaveLength(1);

    await until(async () => (await rowOf(req.uuid))?.state !== "Created", "the takeover of the placed VM", 30_000);
    const after = await stack.vms.getVm({ uuid: req.uuid }).catch((e: unknown) => e);
    expect(after, "the VM is removed, not settled without a root volume").toMatchObject({ code: Code.NOT_FOUND });
    expect(await cpuUsed()).toBe(before);
    await until(async () => (await volumesOf(req.uuid)).every((v) => v.state === VolumeState.DELETED), "the root volume released");
    await until(async () => (await heldFor(req.uuid)).length === 0, "the NIC address given back");
    expect(chainOf(req.uuid)).toEqual([]);

    // The caller retries (same request id): the create runs again, from the start.
    const { vm } = await stack.vms.createVm(req);
    await expectCreatedAfresh(vm!, before);
  });

  it("a retry racing the takeover gets the VM created afresh, its events from ∅", async () => {
    const before = await cpuUsed();
    const req = await createKilledAt("compute:create-placed", "killed-after-placement");
    // Retried at once: refused while the dead replica still holds the request (UNAVAILABLE), then
    // run on the new owner — after, or through, the takeover's removal of the placed VM.
    let retried: unknown;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      retried = await stack.vms.createVm(req).catch((e: unknown) => e);
      if (!(retried instanceof StratumError && retried.code === Code.UNAVAILABLE)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(retried).toMatchObject({ vm: { uuid: req.uuid, clientRequestId: req.clientRequestId } });
    await expectCreatedAfresh((retried as { vm: Vm }).vm, before);
  });
});
