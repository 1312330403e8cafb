import type { AsyncResource } from "node:async_hooks";
import type { Engine } from "./engine";
import type { ChainTask, TaskContext } from "./types";

// The queue's bookkeeping records. They are plain classes with all fields initialised in the
// constructor, so V8 gives every instance the same hidden class and the hot path stays monomorphic.

/** Job lifecycle. Numbers, not strings: compared on every transition. */
export const PENDING = 0;
export const RUNNING = 1;
export const DONE = 2;

/** One busy signature. Deleted from the engine's map as soon as it has nothing pending or running. */
export class Entry {
  readonly signature: string;
  readonly owner: Engine;
  /** Pending jobs: doubly linked FIFO (O(1) push, pop and removal on cancel/timeout). */
  head: Job | null = null;
  tail: Job | null = null;
  pending = 0;
  /** Running jobs in start order (needed by inspect and to recompute minRunningLevel). */
  runHead: Job | null = null;
  runTail: Job | null = null;
  running = 0;
  /** Smallest syncLevel among running jobs; Infinity when none runs. */
  minRunningLevel = Number.POSITIVE_INFINITY;
  /** dedupKey -> pending job; allocated on the first task that carries a key. */
  dedup: Map<string, Job> | null = null;
  /** Completion handlers shared by the entry's syncLevel-1 jobs; created on first use. */
  onFulfilled: ((value: unknown) => void) | null = null;
  onRejected: ((error: unknown) => void) | null = null;

  constructor(signature: string, owner: Engine) {
    this.signature = signature;
    this.owner = owner;
  }
}

/**
 * The rarely used part of a job (dedup, timeouts, cancellation, ctx.signal), allocated only when
 * one of them is in play. Keeping it out of {@link Job} makes the common job ~100 bytes smaller,
 * which is most of the queue's own GC cost when many tasks wait.
 */
export class JobExtras {
  readonly dedupKey: string | undefined;
  readonly pendingTimeoutMs: number;
  readonly executionTimeoutMs: number;
  /** Pending-timeout timer while pending, execution-timeout timer while running. */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The first submitter's signal, until it is released. */
  waitSignal: AbortSignal | null;
  /** Whether the first submitter's abort was counted while running. */
  voted = false;
  /** Later submitters coalesced through dedupKey. */
  sharers: Sharer[] | null = null;
  /** Submitters not yet detached (the first one included). */
  live = 1;
  /** Running-phase aborts received; when it reaches `live`, ctx.signal aborts. */
  abortVotes = 0;
  controller: AbortController | null = null;
  aborted = false;
  abortReason: unknown = undefined;

  constructor(dedupKey: string | undefined, pendingTimeoutMs: number, executionTimeoutMs: number, waitSignal: AbortSignal | null) {
    this.dedupKey = dedupKey;
    this.pendingTimeoutMs = pendingTimeoutMs;
    this.executionTimeoutMs = executionTimeoutMs;
    this.waitSignal = waitSignal;
  }
}

/**
 * One submitted task. It doubles as the task's {@link TaskContext} (one allocation instead of
 * two on the hot path); only the TaskContext members are public API. It also holds the first
 * submitter's promise callbacks, and is that submitter's abort listener (`handleEvent`), which
 * avoids allocating a closure per task.
 */
export class Job implements TaskContext {
  readonly entry: Entry;
  readonly name: string;
  readonly level: number;
  /** Dropped when the job settles, so a ctx kept by user code does not pin the task. */
  task: ChainTask<unknown> | null;
  state: number = PENDING;
  /** Whole milliseconds (see clock.ts): small integers stay unboxed in V8. */
  submittedAt: number;
  startedAt = 0;
  /** Links in the entry's pending list, then in its running list. */
  prev: Job | null = null;
  next: Job | null = null;
  /** The first submitter's promise callbacks; null once released (settled or detached). */
  resolve: ((value: unknown) => void) | null;
  reject: ((reason: unknown) => void) | null;
  ext: JobExtras | null;
  /** The submitter's async context, kept only while the job waits (see engine's invoke). */
  context: AsyncResource | null = null;

  constructor(
    entry: Entry,
    task: ChainTask<unknown>,
    level: number,
    resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
    ext: JobExtras | null,
    submittedAt: number,
  ) {
    this.entry = entry;
    this.name = task.name;
    this.level = level;
    this.task = task;
    this.submittedAt = submittedAt;
    this.resolve = resolve;
    this.reject = reject;
    this.ext = ext;
  }

  get signature(): string {
    return this.entry.signature;
  }

  get signal(): AbortSignal {
    const ext = (this.ext ??= new JobExtras(undefined, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, null));
    let controller = ext.controller;
    if (controller === null) {
      controller = ext.controller = new AbortController();
      if (ext.aborted) controller.abort(ext.abortReason);
    }
    return controller.signal;
  }

  /** Aborts ctx.signal, or remembers to hand out an aborted one if nobody has read it yet. */
  abort(reason: unknown): void {
    const ext = (this.ext ??= new JobExtras(undefined, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, null));
    if (ext.aborted) return;
    ext.aborted = true;
    ext.abortReason = reason;
    if (ext.controller !== null) ext.controller.abort(reason);
  }

  /** Abort listener for the first submitter's signal (EventListenerObject protocol). */
  handleEvent(): void {
    this.entry.owner.waiterAborted(this);
  }
}

/** A later submitter that joined a pending job through its dedupKey. */
export class Sharer {
  readonly job: Job;
  resolve: ((value: unknown) => void) | null;
  reject: ((reason: unknown) => void) | null;
  waitSignal: AbortSignal | null;
  voted = false;

  constructor(job: Job, resolve: (value: unknown) => void, reject: (reason: unknown) => void, waitSignal: AbortSignal | null) {
    this.job = job;
    this.resolve = resolve;
    this.reject = reject;
    this.waitSignal = waitSignal;
  }

  /** Abort listener for this submitter's signal. */
  handleEvent(): void {
    this.job.entry.owner.waiterAborted(this);
  }
}

/** Someone waiting for a job's outcome: its first submitter (the Job itself) or a Sharer. */
export type Waiter = Job | Sharer;
