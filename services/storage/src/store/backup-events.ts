import type postgres from "postgres";

/** The event every change of a backup writes: `stratum.storage.backup_changed.<uuid>`, the backup's snapshot. */
export const BACKUP_CHANGED = "backup_changed";

/**
 * The outbox insert of a `backup_changed` event per row of the CTE `m` (changed backups,
 * `RETURNING t.*`), keyed by the backup's UUID so that a watcher of one backup subscribes to its
 * subject alone; written in the statement of the change.
 */
export function backupChangedOutbox(sql: postgres.Sql | postgres.TransactionSql, requestId: string | null): postgres.PendingQuery<postgres.Row[]> {
  const q = sql as postgres.Sql;
  return q`INSERT INTO "storage"."outbox" (domain, event, key, payload, request_id) SELECT 'storage', ${BACKUP_CHANGED}, m.uuid::text, to_jsonb(m), ${requestId} FROM m`;
}
