/** The event every change of a job writes: `stratum.longjob.job_changed.<uuid>`, the job's snapshot. */
export const JOB_CHANGED = "job_changed";

/**
 * The outbox insert of a `job_changed` event per row of the CTE `alias` (changed jobs, `RETURNING
 * t.*`): the payload is the row itself (`to_jsonb`), keyed by the job's UUID so that a watcher
 * subscribes to its job's subject alone.
 */
export function jobChangedOutbox(alias: string): string {
  return `INSERT INTO "longjob"."outbox" (domain, event, key, payload) SELECT 'longjob', '${JOB_CHANGED}', ${alias}.uuid::text, to_jsonb(${alias}) FROM ${alias}`;
}
