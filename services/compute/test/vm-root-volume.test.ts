import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { VolumeKind, VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import type { Client } from "@stratum/rpc";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { untilVmState } from "./watch";

const DEFAULT_ROOT = 10n * GIB;

let stack: ComputeStack;
let hostUuids: string[];
/** Storage as the test reaches it now (a new replica after a restart). */
let storage: Client<typeof StorageService>;

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2 });
  hostUuids = await stack.addSimHosts(32, 128n);
  storage = stack.storage.client;
});
afterAll(() => stack?.stop());

const usedOf = async (uuid: string) => (await storage.getPrimaryStorage({ uuid })).primaryStorage!.usedBytes;
const cpuUsed = async () => (await stack.hosts.listHosts({})).hosts.reduce((n, h) => n + h.cpuUsed, 0);
const volumesOf = async (vmUuid: string) => (await storage.listVolumes({ vmUuid })).volumes;
/** Compute's pending volume releases (its own table: what storage still owes it). */
const pendingReleases = async () => (await stack.replicas[0]!.ctx.db.sql`SELECT vm_uuid FROM compute.volume_releases`).map((r) => r.vm_uuid as string);

/** Stops storage (it leaves the ring: calls to it fail at once) and returns its restart. */
async function stopStorage(): Promise<() => Promise<void>> {
  await stack.storage.stop();
  return async () => {
    await stack.storage.start();
    storage = stack.storage.client;
  };
}

describe("a VM's root volume", () => {
  it("is created with the VM, IN_USE and attached to it: the default 10 GiB on the shared storage, or as asked on the storage named", async () => {
    const before = await usedOf(stack.storage.primaryStorageUuid);
    const { vm } = await stack.vms.createVm({ name: "with-root", cpu: 1, memoryBytes: GIB });
    expect(vm!.rootVolumeUuid).not.toBe("");
    const [root] = await volumesOf(vm!.uuid);
    expect(root).toMatchObject({ uuid: vm!.rootVolumeUuid, kind: VolumeKind.ROOT, state: VolumeState.IN_USE, vmUuid: vm!.uuid, sizeBytes: DEFAULT_ROOT, primaryStorageUuid: stack.storage.primaryStorageUuid });
    expect(await usedOf(stack.storage.primaryStorageUuid)).toBe(before + DEFAULT_ROOT);
    const running = await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    expect(running.rootVolumeUuid).toBe(vm!.rootVolumeUuid);

    const local = (await storage.addPrimaryStorage({ name: "local-0", totalCapacityBytes: 100n * GIB, hostUuid: hostUuids[0]! })).primaryStorage!;
    const { vm: onLocal } = await stack.vms.createVm({ name: "on-local", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]!, rootVolumeSizeBytes: 2n * GIB });
    expect((await volumesOf(onLocal!.uuid))[0]).toMatchObject({ uuid: onLocal!.rootVolumeUuid, primaryStorageUuid: local.uuid, sizeBytes: 2n * GIB });
    const named = (await storage.addPrimaryStorage({ name: "named", totalCapacityBytes: 10n * GIB })).primaryStorage!;
    const { vm: onNamed } = await stack.vms.createVm({ name: "on-named", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]!, rootVolumeSizeBytes: GIB, primaryStorageUuid: named.uuid });
    expect((await volumesOf(onNamed!.uuid))[0]).toMatchObject({ primaryStorageUuid: named.uuid, sizeBytes: GIB });
  });

  it("a batch whose storage has room for only some: those are Created, the rest answer RESOURCE_EXHAUSTED naming the storage and leave nothing (no VM, capacity back, no volume)", async () => {
    const small = (await storage.addPrimaryStorage({ name: "small", totalCapacityBytes: 3n * GIB })).primaryStorage!;
    const cpuBefore = await cpuUsed();
    const uuids = Array.from({ length: 8 }, () => randomUUID());
    const outcomes = await Promise.allSettled(uuids.map((uuid) => stack.vms.createVm({ uuid, name: `batch-${uuid.slice(0, 8)}`, cpu: 1, memoryBytes: GIB, rootVolumeSizeBytes: GIB, primaryStorageUuid: small.uuid })));
    const created = uuids.filter((_, i) => outcomes[i]!.status === "fulfilled");
    const refused = uuids.filter((_, i) => outcomes[i]!.status === "rejected");
    expect(created).toHaveLength(3);
    for (const o of outcomes) {
      if (o.status === "rejected") {
        expect(o.reason).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "PRIMARY_STORAGE_FULL" });
        expect(o.reason.message).toContain(`primary storage ${small.uuid}`);
      } else expect(o.value.vm!.rootVolumeUuid).not.toBe("");
    }
    for (const uuid of refused) {
      await expect(stack.vms.getVm({ uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND });
      expect(await volumesOf(uuid)).toEqual([]);
    }
    expect(await cpuUsed()).toBe(cpuBefore + 3);
    expect(await usedOf(small.uuid)).toBe(3n * GIB);
    // Nothing was recorded for them: not even a Created event.
    expect(stack.vmEvents.filter((e) => (refused as string[]).includes(e.data.vmUuid))).toEqual([]);
  });

  it("a retried create (same request id) gets the same VM and one root volume", async () => {
    const req = { name: "retried", cpu: 1, memoryBytes: GIB, clientRequestId: `retry-${randomUUID()}` };
    const [a, b] = await Promise.all([stack.vms.createVm(req), stack.vms.createVm(req)]);
    const c = await stack.vms.createVm(req);
    expect(new Set([a.vm!.uuid, b.vm!.uuid, c.vm!.uuid]).size).toBe(1);
    expect(c.vm!.rootVolumeUuid).toBe(a.vm!.rootVolumeUuid);
    expect(await volumesOf(a.vm!.uuid)).toHaveLength(1);
  });

  it("destroy deletes the root volume (its bytes back) and detaches the data volumes", async () => {
    const { vm } = await stack.vms.createVm({ name: "to-destroy", cpu: 1, memoryBytes: GIB });
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    const { volume: data } = await storage.createVolume({ name: "data", sizeBytes: GIB, primaryStorageUuid: stack.storage.primaryStorageUuid, kind: VolumeKind.DATA });
    await storage.attachVolume({ uuid: data!.uuid, vmUuid: vm!.uuid });
    // Host 0 has a local storage now (the first test): the root volume is wherever storage put it.
    const rootOn = (await storage.getVolume({ uuid: vm!.rootVolumeUuid })).volume!.primaryStorageUuid;
    const before = await usedOf(rootOn);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
    await untilVmState(stack.vms, vm!.uuid, VmState.DESTROYED);
    await until(async () => (await storage.getVolume({ uuid: vm!.rootVolumeUuid })).volume!.state === VolumeState.DELETED, "the root volume deleted");
    expect((await storage.getVolume({ uuid: data!.uuid })).volume).toMatchObject({ state: VolumeState.AVAILABLE, vmUuid: "" });
    expect(await usedOf(rootOn)).toBe(before - DEFAULT_ROOT);
    await until(async () => !(await pendingReleases()).includes(vm!.uuid), "the release mark cleared");
  });

  it("a destroy while storage is down: Destroyed at once, its volumes released once storage is back", async () => {
    const { vm } = await stack.vms.createVm({ name: "destroy-in-outage", cpu: 1, memoryBytes: GIB });
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    const restart = await stopStorage();
    await stack.vms.destroyVm({ uuid: vm!.uuid });
    await untilVmState(stack.vms, vm!.uuid, VmState.DESTROYED);
    // The release could not go out: its mark is kept (and retried), not dropped.
    await new Promise((r) => setTimeout(r, 300));
    expect(await pendingReleases()).toContain(vm!.uuid);

    await restart();
    await until(async () => (await storage.getVolume({ uuid: vm!.rootVolumeUuid })).volume!.state === VolumeState.DELETED, "the root volume deleted after storage returned", 20_000);
    await until(async () => !(await pendingReleases()).includes(vm!.uuid), "the release mark cleared");
  });

  it("a create while storage is down answers UNAVAILABLE naming storage and leaves nothing; the retry (same id) succeeds once it is back", async () => {
    const cpuBefore = await cpuUsed();
    const restart = await stopStorage();
    const req = { uuid: randomUUID(), name: "create-in-outage", cpu: 1, memoryBytes: GIB, clientRequestId: `outage-${randomUUID()}` };
    const err = await stack.vms.createVm(req).catch((e) => e);
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: "STORAGE_UNAVAILABLE", resources: { vmUuid: req.uuid } });
    expect(err.message).toContain("storage");
    await expect(stack.vms.getVm({ uuid: req.uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    expect(await cpuUsed()).toBe(cpuBefore);

    await restart();
    const { vm } = await stack.vms.createVm(req);
    expect(vm).toMatchObject({ uuid: req.uuid, state: VmState.CREATED });
    expect(await volumesOf(req.uuid)).toHaveLength(1);
    expect(await pendingReleases()).not.toContain(req.uuid);
    await untilVmState(stack.vms, req.uuid, VmState.RUNNING);
  });
});
