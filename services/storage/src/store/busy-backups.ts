import { Code, StratumError } from "@stratum/core";
import type postgres from "postgres";

/** A backup a job is working on that involves a volume: being created from it, or restored into it. */
export interface BusyBackup {
  backupUuid: string;
  /** The job doing it (the backup's own job, or the restore's). */
  jobUuid: string;
  volumeUuid: string;
  state: "Creating" | "Restoring";
}

/**
 * The backups being created from the volumes, or (with `restores`) restored into them, read in
 * the caller's transaction after it locked the volumes' rows: a backup create locks its volume's
 * row too (BackupStore.create), so one committed before the lock is seen here, and one after it
 * finds the volume as this transaction left it.
 */
export async function busyBackupsOf(tx: postgres.TransactionSql, volumeUuids: readonly string[], restores = false): Promise<BusyBackup[]> {
  const sql = tx as unknown as postgres.Sql;
  const ids = volumeUuids as string[];
  const rows = await sql`
    SELECT uuid, job_uuid, volume_uuid, state::text AS state FROM "storage"."backups"
    WHERE state = 'Creating' AND volume_uuid = ANY(${ids}::uuid[])
    ${restores ? sql`UNION ALL SELECT uuid, restore_job_uuid, restore_volume_uuid, state::text FROM "storage"."backups" WHERE state = 'Restoring' AND restore_volume_uuid = ANY(${ids}::uuid[])` : sql``}`;
  return rows.map((r) => ({ backupUuid: r.uuid as string, jobUuid: r.job_uuid as string, volumeUuid: r.volume_uuid as string, state: r.state as BusyBackup["state"] }));
}

/** FAILED_PRECONDITION `VOLUME_BACKUP_RUNNING` naming the backup and its job: what deleting the volume under it is answered. */
export function volumeBackupRunning(b: BusyBackup, what: string): StratumError {
  const doing = b.state === "Creating" ? `backup ${b.backupUuid} is being created from it` : `backup ${b.backupUuid} is being restored into it`;
  return new StratumError(Code.FAILED_PRECONDITION, `volume ${b.volumeUuid} cannot be ${what}: ${doing} by job ${b.jobUuid}; cancel the job or wait for it`, {
    reason: "VOLUME_BACKUP_RUNNING",
    resources: { volumeUuid: b.volumeUuid, backupUuid: b.backupUuid, jobUuid: b.jobUuid },
  });
}
