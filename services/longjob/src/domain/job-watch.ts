import type { Bus } from "@stratum/bus";
import { subject } from "@stratum/bus";
import { rowMapper } from "@stratum/db";
import { StratumError } from "@stratum/core";
import type { JobStore } from "../store/job-store";
import { JOB_CHANGED } from "../store/job-events";
import { jobs, type JobRow } from "../store/schema";
import { isFinal } from "./job-state";

/**
 * How long a watch goes without an event before it reads the job again: events reach watchers
 * over core NATS (at most once), so a lost one costs a watcher this much delay, never the change.
 */
export const WATCH_RESYNC_MS = 2_000;

const toRow = rowMapper(jobs);

/**
 * A job's changes, as they are committed: its current state first, then each change (ordered by
 * `revision`; a change already seen is skipped) until the final state. Any replica serves a
 * watch: it subscribes to the job's own event subject (`stratum.longjob.job_changed.<uuid>`, the
 * outbox's key) before it reads the job, so no change falls between the read and the events.
 */
export async function* watchJob(bus: Bus, store: JobStore, uuid: string, signal: AbortSignal): AsyncGenerator<JobRow> {
  const pending: JobRow[] = [];
  let wake: (() => void) | undefined;
  const sub = bus.nc.subscribe(subject(bus.prefix, "stratum", "longjob", JOB_CHANGED, uuid), {
    callback: (err, msg) => {
      if (err) return;
      try {
        pending.push(toRow(msg.json<Record<string, unknown>>()));
      } catch {
        return; // not a snapshot: the resync reads the job instead
      }
      wake?.();
    },
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    const first = await store.get(uuid);
    if (!first) throw StratumError.notFound("job", uuid);
    yield first;
    let last = first.revision;
    if (isFinal(first.state)) return;
    for (;;) {
      if (signal.aborted) return;
      if (pending.length === 0) {
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), WATCH_RESYNC_MS);
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wake = undefined;
        if (signal.aborted) return;
        if (timedOut) {
          const now = await store.get(uuid);
          if (!now) throw StratumError.notFound("job", uuid); // deleted while watched (it had finished)
          pending.push(now);
        }
      }
      for (const row of pending.splice(0)) {
        if (row.revision <= last) continue;
        last = row.revision;
        yield row;
        if (isFinal(row.state)) return;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}
