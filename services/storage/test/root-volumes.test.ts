import { randomUUID } from "node:crypto";
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

const used = async (uuid: string) => (await stack.storage.getPrimaryStorage({ uuid })).primaryStorage!.usedBytes;
const spec = (hostUuid: string, sizeBytes = GIB, primaryStorageUuid = "") => ({ vmUuid: randomUUID(), hostUuid, sizeBytes, primaryStorageUuid });

describe("CreateRootVolumes", () => {
  it("puts each VM's root volume on its host's local storage when it has room, else on the shared one with the most free; IN_USE, attached", async () => {
    const [hostA, hostB] = [randomUUID(), randomUUID()];
    const local = (await stack.storage.addPrimaryStorage({ name: "local-a", totalCapacityBytes: 2n * GIB, hostUuid: hostA })).primaryStorage!;
    const small = (await stack.storage.addPrimaryStorage({ name: "shared-small", totalCapacityBytes: 5n * GIB })).primaryStorage!;
    const big = (await stack.storage.addPrimaryStorage({ name: "shared-big", totalCapacityBytes: 50n * GIB })).primaryStorage!;
    const batch = [spec(hostA), spec(hostA), spec(hostA), spec(hostB), spec(hostB, GIB, small.uuid)];
    const { results } = await stack.at(1).createRootVolumes({ volumes: batch });
    expect(results.map((r) => r.vmUuid)).toEqual(batch.map((b) => b.vmUuid));
    expect(results.map((r) => r.errorCode)).toEqual(["", "", "", "", ""]);
    // Two fit on host A's 2 GiB local storage; the third and host B's go to the shared one with the most free; the named one where named.
    expect(results.map((r) => r.volume!.primaryStorageUuid)).toEqual([local.uuid, local.uuid, big.uuid, big.uuid, small.uuid]);
    for (const [i, r] of results.entries()) {
      expect(r.volume).toMatchObject({ kind: VolumeKind.ROOT, state: VolumeState.IN_USE, vmUuid: batch[i]!.vmUuid, sizeBytes: GIB });
      const { volumes } = await stack.storage.listVolumes({ vmUuid: batch[i]!.vmUuid });
      expect(volumes.map((v) => v.uuid)).toEqual([r.volume!.uuid]);
    }
    expect([await used(local.uuid), await used(small.uuid), await used(big.uuid)]).toEqual([2n * GIB, GIB, 2n * GIB]);
  });

  it("is idempotent per VM: a retried batch answers the volumes it made, and reserves nothing more", async () => {
    const ps = (await stack.storage.addPrimaryStorage({ name: "retry", totalCapacityBytes: 10n * GIB, hostUuid: randomUUID() })).primaryStorage!;
    const batch = [spec(ps.hostUuid), spec(ps.hostUuid)];
    const first = await stack.storage.createRootVolumes({ volumes: batch });
    // A retry through the other replica, concurrently with a third VM's first call.
    const [again, third] = await Promise.all([
      stack.at(1).createRootVolumes({ volumes: [...batch].reverse() }),
      stack.storage.createRootVolumes({ volumes: [spec(ps.hostUuid)] }),
    ]);
    expect(again.results.map((r) => r.volume!.uuid)).toEqual(first.results.map((r) => r.volume!.uuid).reverse());
    expect(third.results[0]!.volume!.primaryStorageUuid).toBe(ps.uuid);
    expect(await used(ps.uuid)).toBe(3n * GIB);
    expect((await stack.storage.listVolumes({ primaryStorageUuid: ps.uuid })).volumes).toHaveLength(3);
  });

  it("concurrent batches on one storage never over-commit it: exactly what fits is created, the rest RESOURCE_EXHAUSTED naming the storage", async () => {
    const ps = (await stack.storage.addPrimaryStorage({ name: "race", totalCapacityBytes: 5n * GIB })).primaryStorage!;
    const batches = Array.from({ length: 4 }, () => [spec(randomUUID(), GIB, ps.uuid), spec(randomUUID(), GIB, ps.uuid), spec(randomUUID(), GIB, ps.uuid)]);
    const answers = await Promise.all(batches.map((b, i) => stack.at(i % 2).createRootVolumes({ volumes: b })));
    const results = answers.flatMap((a) => a.results);
    const made = results.filter((r) => r.volume);
    const refused = results.filter((r) => !r.volume);
    expect(made).toHaveLength(5);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.errorCode).toBe("RESOURCE_EXHAUSTED");
      expect(r.errorMessage).toContain(`primary storage ${ps.uuid}`);
    }
    expect(await used(ps.uuid)).toBe(5n * GIB);
  });

  it("a VM that does not fit gets its own error, the others of the batch their volumes", async () => {
    const host = randomUUID();
    const ps = (await stack.storage.addPrimaryStorage({ name: "tight", totalCapacityBytes: 3n * GIB, hostUuid: host })).primaryStorage!;
    const other = (await stack.storage.addPrimaryStorage({ name: "other-host", totalCapacityBytes: 3n * GIB, hostUuid: randomUUID() })).primaryStorage!;
    const missing = randomUUID();
    const batch = [spec(host, 2n * GIB, ps.uuid), spec(host, 2n * GIB, ps.uuid), spec(host, GIB, missing), spec(host, GIB, other.uuid), spec(host, GIB, ps.uuid)];
    const { results } = await stack.storage.createRootVolumes({ volumes: batch });
    expect(results.map((r) => r.errorCode)).toEqual(["", "RESOURCE_EXHAUSTED", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"]);
    expect(results[1]!.errorMessage).toBe(`primary storage ${ps.uuid} has ${GIB} bytes free, the root volume of VM ${batch[1]!.vmUuid} needs ${2n * GIB}`);
    expect(results[2]!.errorMessage).toContain(missing);
    expect(results[3]!.errorMessage).toContain(`local to host ${other.hostUuid}`);
    expect(await used(ps.uuid)).toBe(2n * GIB);
    expect(await used(other.uuid)).toBe(0n);
  });

  it("refuses bad input before anything is written: a VM named twice, no VMs, a size below 1 MiB", async () => {
    const ps = (await stack.storage.addPrimaryStorage({ name: "bad-input", totalCapacityBytes: 10n * GIB })).primaryStorage!;
    const one = spec(randomUUID(), GIB, ps.uuid);
    await expect(stack.storage.createRootVolumes({ volumes: [one, { ...one }] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, message: expect.stringContaining("named more than once") });
    await expect(stack.storage.createRootVolumes({ volumes: [] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
    await expect(stack.storage.createRootVolumes({ volumes: [{ ...one, sizeBytes: 1n }] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(await used(ps.uuid)).toBe(0n);
  });
});

describe("ReleaseVmVolumes", () => {
  it("deletes each VM's root volume (its bytes back) and detaches its data volumes, in one call; a retry releases nothing more", async () => {
    const ps = (await stack.storage.addPrimaryStorage({ name: "release", totalCapacityBytes: 20n * GIB })).primaryStorage!;
    const [a, b] = [spec(randomUUID(), 2n * GIB, ps.uuid), spec(randomUUID(), 2n * GIB, ps.uuid)];
    const { results } = await stack.storage.createRootVolumes({ volumes: [a, b] });
    const { volume: data } = await stack.storage.createVolume({ name: "data", sizeBytes: GIB, primaryStorageUuid: ps.uuid, kind: VolumeKind.DATA });
    await stack.storage.attachVolume({ uuid: data!.uuid, vmUuid: a.vmUuid });
    expect(await used(ps.uuid)).toBe(5n * GIB);

    const { volumes } = await stack.at(1).releaseVmVolumes({ vmUuids: [a.vmUuid, b.vmUuid] });
    const byUuid = new Map(volumes.map((v) => [v.uuid, v]));
    expect(byUuid.get(results[0]!.volume!.uuid)).toMatchObject({ state: VolumeState.DELETED, vmUuid: "" });
    expect(byUuid.get(results[1]!.volume!.uuid)).toMatchObject({ state: VolumeState.DELETED, vmUuid: "" });
    expect(byUuid.get(data!.uuid)).toMatchObject({ state: VolumeState.AVAILABLE, vmUuid: "" });
    expect(await used(ps.uuid)).toBe(GIB);

    expect((await stack.storage.releaseVmVolumes({ vmUuids: [a.vmUuid, b.vmUuid] })).volumes).toEqual([]);
    expect(await used(ps.uuid)).toBe(GIB);
    // The VM could get a root volume again (a create rolled back, then retried): a new one.
    const again = await stack.storage.createRootVolumes({ volumes: [a] });
    expect(again.results[0]!.volume!.uuid).not.toBe(results[0]!.volume!.uuid);
  });

  it("refuses a VM uuid that is not one, changing nothing", async () => {
    await expect(stack.storage.releaseVmVolumes({ vmUuids: ["nope"] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });
});
