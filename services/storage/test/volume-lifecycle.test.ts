import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { VolumeKind, VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, startStorage, type StorageStack } from "./harness";

const VM_A = "0b7c1c3e-5d2a-4b8e-9f01-2a3b4c5d6e7f";
const VM_B = "1c8d2d4f-6e3b-4c9f-8a12-3b4c5d6e7f80";

let stack: StorageStack;
let psUuid: string;
beforeAll(async () => {
  stack = await startStorage();
  psUuid = (await stack.storage.addPrimaryStorage({ name: "ps", totalCapacityBytes: 100n * GIB })).primaryStorage!.uuid;
});
afterAll(async () => {
  await stack?.stop();
});

const used = async () => (await stack.storage.getPrimaryStorage({ uuid: psUuid })).primaryStorage!.usedBytes;

describe("volumes", () => {
  it("bad input is INVALID_ARGUMENT naming each field, and creates nothing", async () => {
    const before = (await stack.storage.listVolumes({ primaryStorageUuid: psUuid })).volumes.length;
    const usedBefore = await used();
    const err = await stack.storage
      .createVolume({ name: "", sizeBytes: 1n, primaryStorageUuid: "not-a-uuid", kind: VolumeKind.UNSPECIFIED, clientRequestId: "bad-1" })
      .catch((e) => e);
    expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(err.violations.map((v: { field: string }) => v.field).sort()).toEqual(["kind", "name", "primary_storage_uuid", "size_bytes"]);
    await expect(stack.storage.attachVolume({ uuid: "0b7c1c3e-5d2a-4b8e-9f01-2a3b4c5d6e70", vmUuid: "vm-1" })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "vm_uuid" }] });
    expect((await stack.storage.listVolumes({ primaryStorageUuid: psUuid })).volumes).toHaveLength(before);
    expect(await used()).toBe(usedBefore);
  });

  it("a retried create with the same request id returns the first volume, reserved once", async () => {
    const usedBefore = await used();
    const req = { name: "retry", sizeBytes: GIB, primaryStorageUuid: psUuid, kind: VolumeKind.DATA, clientRequestId: "create-retry-1" };
    const { volume: first } = await stack.storage.createVolume(req);
    const { volume: again } = await stack.at(1).createVolume(req);
    expect(again!.uuid).toBe(first!.uuid);
    expect(again).toMatchObject({ name: "retry", clientRequestId: "create-retry-1", state: VolumeState.AVAILABLE });
    expect(await used()).toBe(usedBefore + GIB);
    // The same id with another request is refused, not a second volume.
    await expect(stack.storage.createVolume({ ...req, name: "other" })).rejects.toMatchObject({ code: Code.ALREADY_EXISTS, reason: "REQUEST_ID_IN_USE" });
    expect(await used()).toBe(usedBefore + GIB);
  });

  it("attach, detach and delete follow the state machine; attaching elsewhere names the VM", async () => {
    const { volume: v } = await stack.storage.createVolume({ name: "disk", sizeBytes: GIB, primaryStorageUuid: psUuid, kind: VolumeKind.DATA });
    const { volume: attached } = await stack.at(1).attachVolume({ uuid: v!.uuid, vmUuid: VM_A });
    expect(attached).toMatchObject({ state: VolumeState.IN_USE, vmUuid: VM_A });
    expect(attached!.revision).toBeGreaterThan(v!.revision);
    // Attaching it again to the same VM answers the volume (a retry); to another is refused, naming the VM.
    expect((await stack.storage.attachVolume({ uuid: v!.uuid, vmUuid: VM_A })).volume!.revision).toBe(attached!.revision);
    const other = await stack.storage.attachVolume({ uuid: v!.uuid, vmUuid: VM_B }).catch((e) => e);
    expect(other).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VOLUME_ATTACHED", resources: { volumeUuid: v!.uuid, vmUuid: VM_A } });
    expect(other.message).toContain(VM_A);
    await expect(stack.storage.deleteVolume({ uuid: v!.uuid })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VOLUME_ATTACHED", resources: { vmUuid: VM_A } });
    // A resize keeps it attached.
    expect((await stack.storage.resizeVolume({ uuid: v!.uuid, sizeBytes: 2n * GIB })).volume).toMatchObject({ state: VolumeState.IN_USE, vmUuid: VM_A, sizeBytes: 2n * GIB });

    const { volume: detached } = await stack.storage.detachVolume({ uuid: v!.uuid });
    expect(detached).toMatchObject({ state: VolumeState.AVAILABLE, vmUuid: "" });
    expect((await stack.at(1).attachVolume({ uuid: v!.uuid, vmUuid: VM_B })).volume).toMatchObject({ state: VolumeState.IN_USE, vmUuid: VM_B });
    await stack.storage.detachVolume({ uuid: v!.uuid });
    expect((await stack.storage.deleteVolume({ uuid: v!.uuid })).volume!.state).toBe(VolumeState.DELETED);
    await expect(stack.storage.attachVolume({ uuid: v!.uuid, vmUuid: VM_A })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VOLUME_DELETED" });
    await expect(stack.storage.getVolume({ uuid: "2d9e3e50-7f4c-4da0-9b23-4c5d6e7f8091" })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "VOLUME_NOT_FOUND" });
  });

  it("lists volumes by storage, state and VM, in pages whose tokens are bound to their filters", async () => {
    const { primaryStorage: ps } = await stack.storage.addPrimaryStorage({ name: "ps-list", totalCapacityBytes: 100n * GIB });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await stack.storage.createVolume({ name: `l${i}`, sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA })).volume!.uuid);
    await stack.storage.attachVolume({ uuid: made[1]!, vmUuid: VM_A });
    await stack.storage.attachVolume({ uuid: made[3]!, vmUuid: VM_A });

    const seen: string[] = [];
    let token = "";
    do {
      const page = await stack.at(1).listVolumes({ primaryStorageUuid: ps!.uuid, pageSize: 2, pageToken: token });
      expect(page.volumes.length).toBeLessThanOrEqual(2);
      seen.push(...page.volumes.map((v) => v.uuid));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(made);

    const inUse = await stack.storage.listVolumes({ primaryStorageUuid: ps!.uuid, state: VolumeState.IN_USE });
    expect(inUse.volumes.map((v) => v.uuid)).toEqual([made[1], made[3]]);
    const onVm = await stack.storage.listVolumes({ vmUuid: VM_A, pageSize: 1 });
    expect(onVm.volumes.map((v) => v.uuid)).toEqual([made[1]]);
    // A token from one listing does not page another.
    await expect(stack.storage.listVolumes({ vmUuid: VM_B, pageToken: onVm.nextPageToken })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "page_token" }] });
  });

  it("every change writes a volume_changed event keyed by the volume, relayed from the outbox in order", async () => {
    const { volume: v } = await stack.storage.createVolume({ name: "evented", sizeBytes: GIB, primaryStorageUuid: psUuid, kind: VolumeKind.ROOT });
    await stack.storage.attachVolume({ uuid: v!.uuid, vmUuid: VM_B });
    await stack.storage.detachVolume({ uuid: v!.uuid });
    await stack.storage.deleteVolume({ uuid: v!.uuid });
    const seen: Array<{ state: string; vm_uuid: string | null; revision: number }> = [];
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const sub = await stack.service.replicas[0]!.ctx.events.subscribe<{ uuid: string; state: string; vm_uuid: string | null; revision: number }>(
      `storage.volume_changed.${v!.uuid}`,
      (e) => {
        seen.push({ state: e.data.state, vm_uuid: e.data.vm_uuid, revision: e.data.revision });
        if (seen.length === 4) done();
      },
      { from: "all" },
    );
    try {
      await all;
      expect(seen).toEqual([
        { state: "Available", vm_uuid: null, revision: 1 },
        { state: "InUse", vm_uuid: VM_B, revision: 2 },
        { state: "Available", vm_uuid: null, revision: 3 },
        { state: "Deleted", vm_uuid: null, revision: 4 },
      ]);
    } finally {
      await sub.stop();
    }
  });
});
