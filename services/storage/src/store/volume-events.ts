import type postgres from "postgres";

/** The event every change of a volume writes: `stratum.storage.volume_changed.<uuid>`, the volume's snapshot. */
export const VOLUME_CHANGED = "volume_changed";

/**
 * The outbox insert of a `volume_changed` event per row of the CTE `m` (changed volumes,
 * `RETURNING t.*`), keyed by the volume's UUID so that a watcher of one volume subscribes to its
 * subject alone; the payload is the row itself, written in the statement of the change.
 */
export function volumeChangedOutbox(sql: postgres.Sql | postgres.TransactionSql, requestId: string | null): postgres.PendingQuery<postgres.Row[]> {
  const q = sql as postgres.Sql;
  return q`INSERT INTO "storage"."outbox" (domain, event, key, payload, request_id) SELECT 'storage', ${VOLUME_CHANGED}, m.uuid::text, to_jsonb(m), ${requestId} FROM m`;
}
