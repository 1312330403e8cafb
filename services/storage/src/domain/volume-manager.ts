import { Code, StratumError } from "@stratum/core";
import type { ChainTaskQueue } from "@stratum/chain-task";
import type { Logger } from "@stratum/core";
import type { PrimaryStorageRow, VolumeKindValue, VolumeRow } from "../store/schema";
import { volumeBackupRunning } from "../store/busy-backups";
import type { NewPrimaryStorage, VolumeStore } from "../store/volume-store";

export interface VolumeManagerDeps {
  store: VolumeStore;
  queue: ChainTaskQueue;
  log: Logger;
}

export interface CreateVolumeSpec {
  uuid: string;
  name: string;
  primaryStorageUuid: string;
  kind: VolumeKindValue;
  sizeBytes: number;
  clientRequestId: string;
}

/**
 * Primary storage and volume operations. Every mutation of a volume runs in the replica's
 * chain-task queue under `volume-<uuid>` (one at a time per volume, on its owner: the kit routes
 * the call there), and every state change is a conditional update whose row count says whether
 * it happened; when it did not, the volume as it is now says why.
 */
export class VolumeManager {
  constructor(private readonly d: VolumeManagerDeps) {}

  async addStorage(s: NewPrimaryStorage): Promise<PrimaryStorageRow> {
    return this.d.queue.submit({
      signature: `primary-storage-${s.uuid}`,
      name: "add-primary-storage",
      run: async () => {
        // A retry whose first attempt committed (its holder died before recording the outcome).
        const existing = await this.d.store.getStorage(s.uuid);
        if (existing && s.clientRequestId !== null && existing.clientRequestId === s.clientRequestId) return existing;
        return this.d.store.addStorage(s);
      },
    });
  }

  async getStorage(uuid: string): Promise<PrimaryStorageRow> {
    const s = await this.d.store.getStorage(uuid);
    if (!s) throw storageNotFound(uuid);
    return s;
  }

  async deleteStorage(uuid: string): Promise<void> {
    return this.d.queue.submit({
      signature: `primary-storage-${uuid}`,
      name: "delete-primary-storage",
      run: async () => {
        const gone = await this.d.store.deleteStorage(uuid);
        if (gone === false) {
          throw new StratumError(Code.FAILED_PRECONDITION, `primary storage ${uuid} still holds volumes: delete them first`, {
            reason: "PRIMARY_STORAGE_NOT_EMPTY",
            resources: { primaryStorageUuid: uuid },
          });
        }
        // Undefined: gone already (a retried delete) — deleting is idempotent.
      },
    });
  }

  async create(spec: CreateVolumeSpec): Promise<VolumeRow> {
    return this.#onVolume(spec.uuid, "create-volume", async () => {
      const existing = await this.d.store.get(spec.uuid);
      if (existing) {
        // The same create, retried after its first attempt committed: answer what it made.
        if (spec.clientRequestId && existing.clientRequestId === spec.clientRequestId) return existing;
        throw new StratumError(Code.ALREADY_EXISTS, `volume ${spec.uuid} already exists`, { reason: "VOLUME_ALREADY_EXISTS", resources: { volumeUuid: spec.uuid } });
      }
      const created = await this.d.store.createVolume({ ...spec, clientRequestId: spec.clientRequestId || null });
      if (created) return created;
      // Nothing written: say why, from what is there now.
      const storage = await this.d.store.getStorage(spec.primaryStorageUuid);
      if (!storage) throw storageNotFound(spec.primaryStorageUuid);
      if (!(await this.d.store.leaseHeld())) throw this.d.store.leaseLost();
      const free = storage.totalCapacity - storage.usedBytes;
      throw new StratumError(Code.RESOURCE_EXHAUSTED, `primary storage ${storage.uuid} has ${free} bytes free, the volume needs ${spec.sizeBytes}`, {
        reason: "PRIMARY_STORAGE_FULL",
        resources: { primaryStorageUuid: storage.uuid, volumeUuid: spec.uuid },
      });
    });
  }

  async get(uuid: string): Promise<VolumeRow> {
    const v = await this.d.store.get(uuid);
    if (!v) throw StratumError.notFound("volume", uuid);
    return v;
  }

  async attach(uuid: string, vmUuid: string): Promise<VolumeRow> {
    return this.#onVolume(uuid, "attach-volume", async () => {
      const moved = await this.d.store.transition(uuid, "InUse", vmUuid);
      if (moved) return moved;
      const v = await this.get(uuid);
      if (v.state === "InUse" && v.vmUuid === vmUuid) return v; // attached there already: a retry
      if (v.state === "InUse") {
        throw new StratumError(Code.FAILED_PRECONDITION, `volume ${uuid} is attached to VM ${v.vmUuid}: detach it first`, {
          reason: "VOLUME_ATTACHED",
          resources: { volumeUuid: uuid, vmUuid: v.vmUuid ?? "" },
        });
      }
      throw await this.#refused(v, "attach");
    });
  }

  async detach(uuid: string): Promise<VolumeRow> {
    return this.#onVolume(uuid, "detach-volume", async () => {
      const moved = await this.d.store.transition(uuid, "Available", null, ["InUse"]);
      if (moved) return moved;
      const v = await this.get(uuid);
      if (v.state === "Available") return v; // not attached (any more): nothing to do
      throw await this.#refused(v, "detach");
    });
  }

  async resize(uuid: string, sizeBytes: number): Promise<VolumeRow> {
    return this.#onVolume(uuid, "resize-volume", async () => {
      const v = await this.get(uuid);
      if (v.state === "Deleted") throw await this.#refused(v, "resize");
      if (sizeBytes === v.sizeBytes) return v; // that size already: a retry, or nothing asked
      if (sizeBytes < v.sizeBytes) {
        throw StratumError.invalidArgument([{ field: "size_bytes", description: `must be at least the volume's current size ${v.sizeBytes} (volumes only grow)` }], { volumeUuid: uuid });
      }
      const resized = await this.d.store.resize(uuid, v.sizeBytes, sizeBytes);
      if (resized === "no-capacity") {
        throw new StratumError(Code.RESOURCE_EXHAUSTED, `primary storage ${v.primaryStorageUuid} has not ${sizeBytes - v.sizeBytes} bytes free to grow volume ${uuid}`, {
          reason: "PRIMARY_STORAGE_FULL",
          resources: { primaryStorageUuid: v.primaryStorageUuid, volumeUuid: uuid },
        });
      }
      if (resized) return resized;
      // Its queue runs one operation at a time, so only a lost lease can have kept it from moving.
      throw await this.#refused(await this.get(uuid), "resize");
    });
  }

  async delete(uuid: string): Promise<VolumeRow> {
    return this.#onVolume(uuid, "delete-volume", async () => {
      const deleted = await this.d.store.delete(uuid);
      if (deleted && "busy" in deleted) throw volumeBackupRunning(deleted.busy, "deleted");
      if (deleted) return deleted;
      const v = await this.get(uuid);
      if (v.state === "Deleted") return v; // a retried delete
      if (v.state === "InUse") {
        throw new StratumError(Code.FAILED_PRECONDITION, `volume ${uuid} is attached to VM ${v.vmUuid}: detach it before deleting it`, {
          reason: "VOLUME_ATTACHED",
          resources: { volumeUuid: uuid, vmUuid: v.vmUuid ?? "" },
        });
      }
      throw await this.#refused(v, "delete");
    });
  }

  #onVolume<T>(uuid: string, name: string, run: () => Promise<T>): Promise<T> {
    return this.d.queue.submit({ signature: `volume-${uuid}`, name, run });
  }

  /**
   * Why a conditional update matched nothing: the volume's state does not allow the operation, or
   * (when it is not deleted and this replica lost its lease) the fence refused the write.
   */
  async #refused(v: VolumeRow, what: string): Promise<StratumError> {
    if (v.state !== "Deleted" && !(await this.d.store.leaseHeld())) return this.d.store.leaseLost();
    if (v.state === "Deleted") {
      return new StratumError(Code.FAILED_PRECONDITION, `volume ${v.uuid} is deleted: cannot ${what} it`, { reason: "VOLUME_DELETED", resources: { volumeUuid: v.uuid } });
    }
    return new StratumError(Code.FAILED_PRECONDITION, `volume ${v.uuid} is ${v.state}: cannot ${what} it`, { reason: "VOLUME_STATE_CONFLICT", resources: { volumeUuid: v.uuid } });
  }
}

/** NOT_FOUND `PRIMARY_STORAGE_NOT_FOUND`, naming the storage as `primaryStorageUuid`. */
function storageNotFound(uuid: string): StratumError {
  return new StratumError(Code.NOT_FOUND, `primary storage ${uuid} not found`, { reason: "PRIMARY_STORAGE_NOT_FOUND", resources: { primaryStorageUuid: uuid } });
}
