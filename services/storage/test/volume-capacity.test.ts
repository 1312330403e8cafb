import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { VolumeKind, VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, startStorage, type StorageStack } from "./harness";

let stack: StorageStack;
beforeAll(async () => {
  stack = await startStorage();
});
afterAll(async () => {
  await stack?.stop();
});

describe("capacity accounting", () => {
  it("concurrent creates on both replicas never over-commit a storage: exactly what fits is created", async () => {
    const { primaryStorage: ps } = await stack.storage.addPrimaryStorage({ name: "ps-race", totalCapacityBytes: 10n * GIB });
    // 30 creates of 1 GiB at once, half sent to each replica; each runs on its volume's owner, so
    // both replicas reserve on the same storage row concurrently.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => stack.at(i % 2).createVolume({ name: `v${i}`, sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA })),
    );
    const created = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(created).toHaveLength(10);
    expect(refused).toHaveLength(20);
    for (const r of refused) expect(r.reason).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "PRIMARY_STORAGE_FULL", resources: { primaryStorageUuid: ps!.uuid } });
    const { primaryStorage: after } = await stack.storage.getPrimaryStorage({ uuid: ps!.uuid });
    expect(after!.usedBytes).toBe(10n * GIB);
    const { volumes } = await stack.storage.listVolumes({ primaryStorageUuid: ps!.uuid });
    expect(volumes).toHaveLength(10);
  });

  it("delete gives the bytes back, resize reserves the difference and refuses what does not fit, changing nothing", async () => {
    const { primaryStorage: ps } = await stack.storage.addPrimaryStorage({ name: "ps-resize", totalCapacityBytes: 4n * GIB });
    const { volume: a } = await stack.storage.createVolume({ name: "a", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.ROOT });
    const { volume: b } = await stack.storage.createVolume({ name: "b", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA });
    const used = async () => (await stack.storage.getPrimaryStorage({ uuid: ps!.uuid })).primaryStorage!.usedBytes;
    expect(await used()).toBe(2n * GIB);

    const { volume: grown } = await stack.at(1).resizeVolume({ uuid: a!.uuid, sizeBytes: 2n * GIB });
    expect(grown).toMatchObject({ sizeBytes: 2n * GIB, state: VolumeState.AVAILABLE });
    expect(await used()).toBe(3n * GIB);

    await expect(stack.storage.resizeVolume({ uuid: b!.uuid, sizeBytes: 3n * GIB })).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "PRIMARY_STORAGE_FULL" });
    expect((await stack.storage.getVolume({ uuid: b!.uuid })).volume!.sizeBytes).toBe(GIB);
    expect(await used()).toBe(3n * GIB);

    // Volumes only grow: a smaller size is bad input naming the field, and changes nothing.
    await expect(stack.storage.resizeVolume({ uuid: a!.uuid, sizeBytes: GIB })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "size_bytes" }] });
    expect((await stack.storage.getVolume({ uuid: a!.uuid })).volume!.sizeBytes).toBe(2n * GIB);

    const { volume: gone } = await stack.storage.deleteVolume({ uuid: a!.uuid });
    expect(gone!.state).toBe(VolumeState.DELETED);
    expect(await used()).toBe(GIB);
    // A retried delete answers the deleted volume and gives nothing back twice.
    expect((await stack.at(1).deleteVolume({ uuid: a!.uuid })).volume!.state).toBe(VolumeState.DELETED);
    expect(await used()).toBe(GIB);
    await expect(stack.storage.resizeVolume({ uuid: a!.uuid, sizeBytes: 3n * GIB })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VOLUME_DELETED" });
  });

  it("a primary storage is deleted only when empty", async () => {
    const { primaryStorage: ps } = await stack.storage.addPrimaryStorage({ name: "ps-del", totalCapacityBytes: 2n * GIB, hostUuid: "6f1b2d3c-4a5e-4f60-8a1b-2c3d4e5f6a7b" });
    expect(ps!.hostUuid).toBe("6f1b2d3c-4a5e-4f60-8a1b-2c3d4e5f6a7b");
    const { volume: v } = await stack.storage.createVolume({ name: "v", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA });
    await expect(stack.storage.deletePrimaryStorage({ uuid: ps!.uuid })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "PRIMARY_STORAGE_NOT_EMPTY" });
    expect((await stack.storage.getPrimaryStorage({ uuid: ps!.uuid })).primaryStorage!.usedBytes).toBe(GIB);
    await stack.storage.deleteVolume({ uuid: v!.uuid });
    await stack.at(1).deletePrimaryStorage({ uuid: ps!.uuid });
    await expect(stack.storage.getPrimaryStorage({ uuid: ps!.uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "PRIMARY_STORAGE_NOT_FOUND" });
    await expect(stack.storage.createVolume({ name: "late", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "PRIMARY_STORAGE_NOT_FOUND" });
  });
});
