import { Code, errorMessage, StratumError, type Logger } from "@stratum/core";
import { currentWork } from "@stratum/core";
import { TurnBatcher } from "@stratum/db";
import type { VmVolumes } from "../clients/volumes";
import type { VmRow } from "../store/schema";
import type { VmStore } from "../store/vm-store";

/** CreateVmRequest's default root volume size (root_volume_size_bytes = 0). */
export const DEFAULT_ROOT_VOLUME_BYTES = 10 * 1024 ** 3;
/** CreateRootVolumesRequest's limit. */
const MAX_BATCH = 1000;

/** What a create asks for its VM's root volume. */
export interface RootVolumeWish {
  sizeBytes: number;
  /** Empty: storage chooses. */
  primaryStorageUuid: string;
}

interface Pending {
  vm: VmRow;
  wish: RootVolumeWish;
  requestId: string | null;
  resolve(vm: VmRow): void;
  reject(e: unknown): void;
}

/**
 * The step of a create between placement and its answer: the VMs placed in one event-loop turn
 * (a PlacementBatcher batch, and the lone or host-named creates of that turn) get their root
 * volumes from storage in ONE CreateRootVolumes call, and their outcomes are recorded in one
 * transaction (VmStore.finishCreates): a VM with a root volume records it and answers Created;
 * one without is removed with its host capacity given back, and its create answers storage's
 * error (RESOURCE_EXHAUSTED naming the storage when it has no room). When storage did not answer
 * at all, every VM of the call is rolled back and answers UNAVAILABLE, and each is marked for a
 * volume release, since storage may have made the volumes and lost only its answer.
 *
 * One call at a time, as placement does one batch at a time: while storage answers one, the
 * next fills up, so the two overlap instead of adding up.
 */
export class RootVolumeBatcher {
  readonly #batcher = new TurnBatcher<Pending>((pending) => this.#flush(pending), (p, e) => p.reject(e));

  constructor(private readonly d: { vms: VmStore; volumes: VmVolumes; log: Logger }) {}

  /** The VM (placed, Created, its capacity held) with its root volume recorded; rejects with why not, the VM then removed. */
  attach(vm: VmRow, wish: RootVolumeWish): Promise<VmRow> {
    const requestId = currentWork()?.requestId ?? null;
    return new Promise((resolve, reject) => this.#batcher.submit({ vm, wish, requestId, resolve, reject }));
  }

  async #flush(pending: Pending[]): Promise<Pending[]> {
    const batch = pending.slice(0, MAX_BATCH);
    const later = pending.slice(MAX_BATCH);
    const asks = batch.map((p) => ({ vmUuid: p.vm.uuid, hostUuid: p.vm.hostUuid!, sizeBytes: p.wish.sizeBytes, primaryStorageUuid: p.wish.primaryStorageUuid }));
    let answers;
    try {
      answers = await this.d.volumes.createRoots(asks);
    } catch (e) {
      const err = StratumError.from(e);
      const uuids = batch.map((p) => p.vm.uuid);
      await this.#settle(batch, [], uuids, uuids, () => err);
      return later;
    }
    const done: Array<{ uuid: string; rootVolumeUuid: string; requestId: string | null }> = [];
    const errors = new Map<string, StratumError>();
    for (const [i, a] of answers.entries()) {
      if ("volumeUuid" in a) done.push({ uuid: a.vmUuid, rootVolumeUuid: a.volumeUuid, requestId: batch[i]!.requestId });
      else errors.set(a.vmUuid, a.error);
    }
    await this.#settle(batch, done, [...errors.keys()], [], (uuid) => errors.get(uuid)!);
    return later;
  }

  async #settle(batch: Pending[], done: Array<{ uuid: string; rootVolumeUuid: string; requestId: string | null }>, failed: string[], maybeMade: string[], why: (uuid: string) => StratumError): Promise<void> {
    let recorded: Map<string, VmRow>;
    try {
      recorded = await this.d.vms.finishCreates(done, failed, maybeMade);
    } catch (e) {
      // Left Created: the takeover scan settles them (this replica's own VMs with no operation on them).
      this.d.log.warn("could not record the outcome of root volumes", { vms: batch.length, error: errorMessage(e) });
      for (const p of batch) p.reject(e);
      return;
    }
    const failedSet = new Set(failed);
    for (const p of batch) {
      if (failedSet.has(p.vm.uuid)) p.reject(why(p.vm.uuid));
      else {
        const row = recorded.get(p.vm.uuid);
        if (row) p.resolve(row);
        else p.reject(new StratumError(Code.UNAVAILABLE, `vm ${p.vm.uuid} could not record its root volume: this replica may no longer write it; retry`, { reason: "VM_TAKEN_OVER", resources: { vmUuid: p.vm.uuid } }));
      }
    }
  }
}
