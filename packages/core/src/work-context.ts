/**
 * The ids of the work at hand (the request that caused it, and later the job), carried through
 * async calls without threading them through every signature: the serving layer opens a work
 * scope per call, and whatever runs inside it — a queued task, an agent command, a published
 * event, a log line — can name the request it serves.
 *
 * Code that defers work to run later under another caller's turn (a queue) must capture the
 * scope at submission (`AsyncResource.bind`), or the work would run under whichever call
 * happened to drain the queue.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface Work {
  /** The request id (`x-request-id`) of the call this work serves. */
  readonly requestId?: string;
  /** More ids for log lines of this work (`jobUuid`, `vmUuid`…). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

const storage = new AsyncLocalStorage<Work>();

/** Runs `fn` with `work` as the current work (nested scopes replace the outer one). */
export function runWithWork<T>(work: Work, fn: () => T): T {
  return storage.run(work, fn);
}

/** The work the current async context serves, if any. */
export function currentWork(): Work | undefined {
  return storage.getStore();
}
