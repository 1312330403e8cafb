import type { JobStateValue } from "../store/schema";

/**
 * The job state machine, in one place (job.proto's JobState repeats it for clients). Every write
 * of a job's state is a conditional update from one of the states listed here, so no race can
 * take a job along an edge that is not.
 */
export const JOB_TRANSITIONS: Readonly<Record<JobStateValue, readonly JobStateValue[]>> = {
  // Dispatched and started; cancelled before any dispatch (nothing ran); cancelled once
  // dispatched (its executor may be starting it: it stops at its first checkpoint); no dispatch
  // possible (no such type in its service).
  Waiting: ["Running", "Canceled", "Canceling", "Failed", "Succeeded"],
  // Canceling also when its executor died, for a type that can neither resume nor fail: Suspended.
  Running: ["Succeeded", "Failed", "Canceling", "Suspended", "Canceled"],
  // ZStack's rule: a Canceling job whose work finished before it saw the cancel ends Succeeded —
  // the work won the race, and saying Canceled would hide what it did.
  Canceling: ["Canceled", "Succeeded", "Failed"],
  // RerunJob resumes it (Waiting, with its progress); CancelJob ends it.
  Suspended: ["Waiting", "Canceled"],
  Succeeded: [],
  Failed: [],
  Canceled: [],
};

/** The states a job ends in. */
export const FINAL_STATES: readonly JobStateValue[] = ["Succeeded", "Failed", "Canceled"];

/** The states in which a job has work in flight somewhere (dispatched or to dispatch). */
export const ACTIVE_STATES: readonly JobStateValue[] = ["Waiting", "Running", "Canceling"];

export function isFinal(state: JobStateValue): boolean {
  return FINAL_STATES.includes(state);
}

/**
 * Throws when a write would take a job along an edge the table does not list: every owner write
 * (`JobStore.transition`) names its from-states and target, checked here before it is sent.
 */
export function assertTransition(from: readonly JobStateValue[], to: JobStateValue): void {
  const bad = from.filter((f) => !JOB_TRANSITIONS[f].includes(to));
  if (bad.length > 0) throw new TypeError(`no job transition ${bad.join("|")} → ${to} (see JOB_TRANSITIONS)`);
}
