import { randomUUID } from "node:crypto";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, errorMessage, StratumError, type Logger } from "@stratum/core";
import { uuidForRequest } from "@stratum/validation";
import type { LongJobClient } from "@stratum/jobs";
import { backupStorageFull, type BackupStore, type NewBackupStorage, type Refusal } from "../store/backup-store";
import type { BackupModeValue, BackupRow, BackupStorageRow, VolumeRow } from "../store/schema";
import type { VolumeStore } from "../store/volume-store";
import { BUSY_STATES } from "./backup-state";

export interface BackupManagerDeps {
  backups: BackupStore;
  volumes: VolumeStore;
  jobs: LongJobClient;
  queue: ChainTaskQueue;
  log: Logger;
}

export interface CreateBackupSpec {
  uuid: string;
  name: string;
  volumeUuid: string;
  backupStorageUuid: string;
  mode: BackupModeValue;
  clientRequestId: string;
}

/** The job that creates a backup: chosen from the backup's UUID, so every retry names the same one. */
export function backupJobUuid(backupUuid: string): string {
  return uuidForRequest("storage.backup", backupUuid);
}

/**
 * Backup storages and backups. A backup's mutations run in the replica's chain-task queue under
 * `backup-<uuid>`; every state change is a conditional update of the backup state machine whose
 * result says whether it happened, and when it did not, the backup as it is says why. The jobs
 * doing the copying (storage.backup, storage.restore) are submitted to longjob after the backup
 * is recorded, under a UUID and request id fixed before, so a retried call submits once.
 */
export class BackupManager {
  constructor(private readonly d: BackupManagerDeps) {}

  async addStorage(s: NewBackupStorage): Promise<BackupStorageRow> {
    return this.d.queue.submit({
      signature: `backup-storage-${s.uuid}`,
      name: "add-backup-storage",
      run: async () => {
        const existing = await this.d.backups.getStorage(s.uuid);
        if (existing && s.clientRequestId !== null && existing.clientRequestId === s.clientRequestId) return existing;
        return this.d.backups.addStorage(s);
      },
    });
  }

  async getStorage(uuid: string): Promise<BackupStorageRow> {
    const s = await this.d.backups.getStorage(uuid);
    if (!s) throw backupStorageNotFound(uuid);
    return s;
  }

  async get(uuid: string): Promise<BackupRow> {
    const b = await this.d.backups.get(uuid);
    if (!b) throw StratumError.notFound("backup", uuid);
    return b;
  }

  async create(spec: CreateBackupSpec): Promise<BackupRow> {
    return this.#onBackup(spec.uuid, "create-backup", async () => {
      const existing = await this.d.backups.get(spec.uuid);
      if (existing) {
        if (!spec.clientRequestId || existing.clientRequestId !== spec.clientRequestId) {
          throw new StratumError(Code.ALREADY_EXISTS, `backup ${spec.uuid} already exists`, { reason: "BACKUP_ALREADY_EXISTS", resources: { backupUuid: spec.uuid } });
        }
        // The same create, retried after its first attempt recorded the backup: its submit may
        // not have gone out (the replica died between); submitting again is answered with the first job.
        return existing.state === "Creating" ? this.#submitBackupJob(existing) : existing;
      }
      const volume = await this.d.volumes.get(spec.volumeUuid);
      if (!volume) throw StratumError.notFound("volume", spec.volumeUuid);
      if (volume.state === "Deleted") {
        throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} is deleted: it cannot be backed up`, { reason: "VOLUME_DELETED", resources: { volumeUuid: volume.uuid } });
      }
      const storage = await this.getStorage(spec.backupStorageUuid);
      let parentUuid: string | null = null;
      if (spec.mode === "Incremental") {
        const parent = await this.d.backups.lastComplete(volume.uuid, storage.uuid);
        if (!parent) {
          throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} has no available backup on backup storage ${storage.uuid} for an incremental backup to chain from: make a full one first`, {
            reason: "NO_PARENT_BACKUP",
            resources: { volumeUuid: volume.uuid, backupStorageUuid: storage.uuid },
          });
        }
        parentUuid = parent.uuid;
      }
      const created = await this.d.backups.create({
        uuid: spec.uuid,
        name: spec.name,
        volumeUuid: volume.uuid,
        volumeSizeBytes: volume.sizeBytes,
        backupStorageUuid: storage.uuid,
        mode: spec.mode,
        parentUuid,
        jobUuid: backupJobUuid(spec.uuid),
        clientRequestId: spec.clientRequestId || null,
      });
      if (!created) {
        if (!(await this.d.backups.leaseHeld())) throw this.d.backups.leaseLost();
        if ((await this.d.volumes.get(volume.uuid))?.state === "Deleted") {
          throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} was deleted: it cannot be backed up`, { reason: "VOLUME_DELETED", resources: { volumeUuid: volume.uuid } });
        }
        throw backupStorageFull(await this.getStorage(storage.uuid), volume.sizeBytes, spec.uuid);
      }
      return this.#submitBackupJob(created);
    });
  }

  /**
   * Restores an AVAILABLE backup into a volume that is AVAILABLE and at least as big as the
   * backed-up one (the backup's own volume when none is named): both RESTORING while the job runs.
   */
  async restore(uuid: string, targetVolumeUuid: string, clientRequestId: string): Promise<{ backup: BackupRow; jobUuid: string }> {
    return this.#onBackup(uuid, "restore-backup", async () => {
      const backup = await this.get(uuid);
      const target = targetVolumeUuid || backup.volumeUuid;
      const jobUuid = clientRequestId ? uuidForRequest("storage.restore", `${uuid}/${clientRequestId}`) : randomUUID();
      if (backup.state === "Restoring" && backup.restoreJobUuid === jobUuid) return { backup, jobUuid }; // a retry
      if (backup.state !== "Available") throw backupStateConflict(backup, "restore");
      const volume = await this.d.volumes.get(target);
      if (!volume) throw StratumError.notFound("volume", target);
      checkRestoreTarget(backup, volume);
      const started = await this.d.backups.startRestore(uuid, { jobUuid, volumeUuid: target });
      if ("refused" in started) throw await this.#refused(started, uuid, "restore");
      if ("refusedVolume" in started) {
        if (!started.volume) throw StratumError.notFound("volume", target);
        checkRestoreTarget(backup, started.volume);
        if (!(await this.d.backups.leaseHeld())) throw this.d.backups.leaseLost();
        throw new StratumError(Code.FAILED_PRECONDITION, `volume ${target} is ${started.volume.state}: a backup is restored only into an available volume`, { reason: "VOLUME_STATE_CONFLICT", resources: { volumeUuid: target } });
      }
      try {
        await this.d.jobs.submit({ uuid: jobUuid, type: "storage.restore", targetUuid: target, parameters: { backupUuid: uuid }, clientRequestId: `storage.restore-${jobUuid}` });
      } catch (e) {
        // Nothing will restore: both go back to Available as they were.
        await this.d.backups.transition([uuid], "Available", { restore: null }, ["Restoring"]);
        throw submitFailed(e, uuid, jobUuid, "restore");
      }
      return { backup: started.backup, jobUuid };
    });
  }

  /**
   * Deletes a backup no job works on: DELETING, then DELETED with its bytes given back — with the
   * incremental backups chained from it when `cascade`, refused naming them otherwise.
   */
  async delete(uuid: string, cascade: boolean): Promise<BackupRow[]> {
    return this.#onBackup(uuid, "delete-backup", async () => {
      const backup = await this.get(uuid);
      const dependents = await this.d.backups.dependents(uuid);
      if (backup.state === "Deleted" && dependents.length === 0) return [backup]; // a retried delete
      if (dependents.length > 0 && !cascade) {
        throw new StratumError(Code.FAILED_PRECONDITION, `backup ${uuid} has dependent incremental backups ${dependents.map((b) => b.uuid).join(", ")}: delete them first or delete with cascade`, {
          reason: "BACKUP_HAS_DEPENDENTS",
          resources: { backupUuid: uuid, dependentBackupUuids: dependents.map((b) => b.uuid).join(",") },
        });
      }
      const all = [backup, ...dependents];
      const busy = all.filter((b) => BUSY_STATES.includes(b.state));
      if (busy.length > 0) {
        throw new StratumError(Code.FAILED_PRECONDITION, `backup ${busy.map((b) => `${b.uuid} is ${b.state}`).join(", ")}: cancel its job or wait for it before deleting`, {
          reason: "BACKUP_BUSY",
          resources: { backupUuid: busy[0]!.uuid, jobUuid: busy[0]!.state === "Restoring" ? (busy[0]!.restoreJobUuid ?? "") : busy[0]!.jobUuid },
        });
      }
      // A delete an earlier attempt left half-way (Deleting) goes on from there.
      const toDelete = all.filter((b) => b.state !== "Deleting" && b.state !== "Deleted").map((b) => b.uuid);
      if (toDelete.length > 0) {
        const deleting = await this.d.backups.transition(toDelete, "Deleting");
        if ("refused" in deleting) throw await this.#refused(deleting, uuid, "delete");
      }
      const pending = all.filter((b) => b.state !== "Deleted").map((b) => b.uuid);
      const deleted = await this.d.backups.transition(pending, "Deleted", { held: "none" });
      if ("refused" in deleted) throw await this.#refused(deleted, uuid, "delete");
      const byUuid = new Map(deleted.map((b) => [b.uuid, b]));
      return all.map((b) => byUuid.get(b.uuid) ?? b);
    });
  }

  /** Submits a Creating backup's job; a submit that fails leaves the backup ERROR saying why, and the call fails. */
  async #submitBackupJob(b: BackupRow): Promise<BackupRow> {
    try {
      await this.d.jobs.submit({ uuid: b.jobUuid, type: "storage.backup", targetUuid: b.volumeUuid, parameters: { backupUuid: b.uuid }, clientRequestId: `storage.backup-${b.uuid}` });
      return b;
    } catch (e) {
      const err = submitFailed(e, b.uuid, b.jobUuid, "backup");
      const failed = await this.d.backups.transition([b.uuid], "Error", { error: err.message, held: "none" }, ["Creating"]);
      if ("refused" in failed) this.d.log.warn("backup whose job could not be submitted moved meanwhile", { backupUuid: b.uuid, state: failed.refused[0]?.state ?? "gone" });
      throw err;
    }
  }

  #onBackup<T>(uuid: string, name: string, run: () => Promise<T>): Promise<T> {
    return this.d.queue.submit({ signature: `backup-${uuid}`, name, run });
  }

  async #refused(r: Refusal, uuid: string, what: string): Promise<StratumError> {
    const mismatched = r.refused.find((b) => b.uuid === uuid) ?? r.refused[0];
    if (!mismatched) return StratumError.notFound("backup", uuid);
    if (!(await this.d.backups.leaseHeld())) return this.d.backups.leaseLost();
    return backupStateConflict(mismatched, what);
  }
}

function checkRestoreTarget(backup: BackupRow, volume: VolumeRow): void {
  if (volume.state === "InUse") {
    throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} is attached to VM ${volume.vmUuid}: detach it before restoring into it`, {
      reason: "VOLUME_ATTACHED",
      resources: { volumeUuid: volume.uuid, vmUuid: volume.vmUuid ?? "" },
    });
  }
  if (volume.state !== "Available") {
    throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} is ${volume.state}: a backup is restored only into an available volume`, { reason: "VOLUME_STATE_CONFLICT", resources: { volumeUuid: volume.uuid } });
  }
  if (volume.sizeBytes < backup.volumeSizeBytes) {
    throw new StratumError(Code.FAILED_PRECONDITION, `volume ${volume.uuid} has ${volume.sizeBytes} bytes, backup ${backup.uuid} needs at least ${backup.volumeSizeBytes}`, {
      reason: "VOLUME_TOO_SMALL",
      resources: { volumeUuid: volume.uuid, backupUuid: backup.uuid },
    });
  }
}

function backupStateConflict(b: BackupRow, what: string): StratumError {
  return new StratumError(Code.FAILED_PRECONDITION, `backup ${b.uuid} is ${b.state}: cannot ${what} it`, {
    reason: b.state === "Deleted" ? "BACKUP_DELETED" : "BACKUP_STATE_CONFLICT",
    resources: { backupUuid: b.uuid },
  });
}

function submitFailed(e: unknown, backupUuid: string, jobUuid: string, what: string): StratumError {
  const cause = StratumError.from(e);
  return new StratumError(cause.code === Code.UNAVAILABLE ? Code.UNAVAILABLE : Code.INTERNAL, `the ${what} job ${jobUuid} of backup ${backupUuid} could not be submitted to longjob: ${errorMessage(e)}`, {
    reason: "JOB_SUBMIT_FAILED",
    resources: { backupUuid, jobUuid },
    cause,
  });
}

/** NOT_FOUND `BACKUP_STORAGE_NOT_FOUND`. */
export function backupStorageNotFound(uuid: string): StratumError {
  return new StratumError(Code.NOT_FOUND, `backup storage ${uuid} not found`, { reason: "BACKUP_STORAGE_NOT_FOUND", resources: { backupStorageUuid: uuid } });
}
