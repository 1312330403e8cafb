import {
  cancelledError,
  closedError,
  executionTimeoutError,
  pendingTimeoutError,
  queueFullError,
} from "./errors";
import { AsyncResource } from "node:async_hooks";
import { now } from "./clock";
import { notifyEnd, notifyStart } from "./observer";
import { DONE, Entry, Job, JobExtras, PENDING, RUNNING, Sharer, type Waiter } from "./records";
import type { ChainTask, ChainTaskObserver, SignatureSnapshot, TaskOutcome, TaskSnapshot } from "./types";

// The queue's state machine. Internal: ChainTaskQueue validates input and delegates here.
//
// Invariants:
// - an Entry is in `entries` iff it has a pending or running job; it is deleted the moment both
//   counts reach 0, so an idle signature holds no memory;
// - pending jobs of an entry are started from the head only (FIFO) and as soon as a slot allows:
//   if an entry has pending jobs, its head cannot start right now;
// - every Waiter is released exactly once (resolve/reject set to null), which removes its abort
//   listener; every job leaves RUNNING exactly once, which frees its slot.

// Captures a new promise's resolve/reject without allocating an executor closure per task.
// Safe because the Promise constructor calls its executor synchronously.
let capturedResolve: (value: unknown) => void = noop;
let capturedReject: (reason: unknown) => void = noop;
function capture(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}
function noop(): void {}

// setTimeout passes the job as an argument: no closure per timer.
function pendingTimeoutFired(job: Job): void {
  job.entry.owner.pendingTimedOut(job);
}
function executionTimeoutFired(job: Job): void {
  job.entry.owner.executionTimedOut(job);
}

/**
 * Calls the task's run() in its submitter's async context: a queued task is started by whichever
 * task's completion freed the slot, and without this it would run (log, send requests, publish
 * events) under that other request's id.
 */
function invoke(job: Job): Promise<unknown> {
  const context = job.context;
  if (context === null) return invokeHere(job);
  job.context = null;
  // `this` carries the job: no argument array per call.
  return context.runInAsyncScope(invokeThis, job);
}

function invokeThis(this: Job): Promise<unknown> {
  return invokeHere(this);
}

/** Calls the task's run() and turns whatever happens into a promise (never throws). */
function invokeHere(job: Job): Promise<unknown> {
  const task = job.task as ChainTask<unknown>;
  try {
    // Promise.resolve returns a native promise as is and adopts foreign thenables, so the
    // handlers below run exactly once and never synchronously.
    return Promise.resolve(task.run(job));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The abort signal a waiter listens to, if any and not yet released. */
function waitSignalOf(waiter: Waiter): AbortSignal | null {
  if (waiter instanceof Sharer) return waiter.waitSignal;
  return waiter.ext === null ? null : waiter.ext.waitSignal;
}

/** Hands the outcome to one waiter, once, and stops listening to its signal. */
function release(waiter: Waiter, ok: boolean, value: unknown): void {
  const resolve = waiter.resolve;
  const reject = waiter.reject;
  if (resolve === null || reject === null) return;
  waiter.resolve = null;
  waiter.reject = null;
  const holder = waiter instanceof Sharer ? waiter : waiter.ext;
  if (holder !== null && holder.waitSignal !== null) {
    const signal = holder.waitSignal;
    holder.waitSignal = null;
    signal.removeEventListener("abort", waiter);
  }
  if (ok) resolve(value);
  else reject(value);
}

/** Hands the outcome to every waiter of a job and drops references the job no longer needs. */
function deliver(job: Job, ok: boolean, value: unknown): void {
  const ext = job.ext;
  if (ext === null) {
    // Hot path: one submitter, no signal.
    const resolve = job.resolve;
    const reject = job.reject;
    job.resolve = null;
    job.reject = null;
    job.task = null;
    if (resolve !== null && reject !== null) {
      if (ok) resolve(value);
      else reject(value);
    }
    return;
  }
  release(job, ok, value);
  if (ext.sharers !== null) {
    const sharers = ext.sharers;
    ext.sharers = null;
    for (const sharer of sharers) release(sharer, ok, value);
  }
  job.task = null;
}

function clearTimer(job: Job): void {
  const ext = job.ext;
  if (ext !== null && ext.timer !== undefined) {
    clearTimeout(ext.timer);
    ext.timer = undefined;
  }
}

export class Engine {
  readonly entries = new Map<string, Entry>();
  pendingTotal = 0;
  runningTotal = 0;
  closed = false;
  /** Metrics hooks; null (the common case) costs one check per transition. */
  observer: ChainTaskObserver | null = null;
  private drainWaiters: Array<() => void> | null = null;

  submit(
    task: ChainTask<unknown>,
    level: number,
    pendingTimeoutMs: number,
    executionTimeoutMs: number,
    maxPending: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const signature = task.signature;
    if (this.closed) {
      this.refused(signature, task.name, "closed");
      return Promise.reject(closedError(signature, task.name));
    }
    if (signal !== undefined && signal.aborted) {
      this.refused(signature, task.name, "cancelled");
      return Promise.reject(cancelledError(signature, task.name, signal.reason));
    }
    let entry = this.entries.get(signature);
    if (entry === undefined) {
      entry = new Entry(signature, this);
      this.entries.set(signature, entry);
    } else {
      const key = task.dedupKey;
      if (key !== undefined && entry.dedup !== null) {
        const primary = entry.dedup.get(key);
        if (primary !== undefined) return this.share(primary, signal);
      }
      // With pending jobs ahead the new one must wait; without, it waits only if no slot is free.
      if (entry.pending >= maxPending && (entry.pending > 0 || !canStart(entry, level))) {
        this.refused(signature, task.name, "queue_full");
        return Promise.reject(queueFullError(signature, task.name, maxPending));
      }
    }

    const promise = new Promise<unknown>(capture);
    const dedupKey = task.dedupKey;
    const ext =
      dedupKey === undefined &&
      signal === undefined &&
      pendingTimeoutMs === Number.POSITIVE_INFINITY &&
      executionTimeoutMs === Number.POSITIVE_INFINITY
        ? null
        : new JobExtras(dedupKey, pendingTimeoutMs, executionTimeoutMs, signal ?? null);
    const job = new Job(entry, task, level, capturedResolve, capturedReject, ext, now());
    const tail = entry.tail;
    if (tail === null) entry.head = job;
    else {
      tail.next = job;
      job.prev = tail;
    }
    entry.tail = job;
    entry.pending++;
    this.pendingTotal++;
    if (ext !== null) {
      if (dedupKey !== undefined) (entry.dedup ??= new Map()).set(dedupKey, job);
      if (signal !== undefined) signal.addEventListener("abort", job);
    }

    if (entry.head === job) this.pump(entry);
    // Still waiting: keep the submitter's async context for run(). Only a queued task pays for
    // it; one that started inside pump() above already ran in this very context.
    if (job.state === PENDING) job.context = new AsyncResource("stratum.ChainTask");
    if (ext !== null && job.state === PENDING && pendingTimeoutMs !== Number.POSITIVE_INFINITY) {
      ext.timer = setTimeout(pendingTimeoutFired, pendingTimeoutMs, job);
    }
    return promise;
  }

  /** Coalesces a submission into a pending job with the same dedupKey. */
  private share(job: Job, signal: AbortSignal | undefined): Promise<unknown> {
    const ext = job.ext as JobExtras; // a job in the dedup index always has extras
    const promise = new Promise<unknown>(capture);
    const sharer = new Sharer(job, capturedResolve, capturedReject, signal ?? null);
    (ext.sharers ??= []).push(sharer);
    ext.live++;
    if (signal !== undefined) signal.addEventListener("abort", sharer);
    return promise;
  }

  /** Starts pending jobs from the head while slots allow. May run user code (task.run). */
  private pump(entry: Entry): void {
    let job = entry.head;
    while (job !== null && entry.running < job.level && entry.running < entry.minRunningLevel) {
      this.start(entry, job);
      job = entry.head; // re-read: run() may have submitted or cancelled on this entry
    }
  }

  private start(entry: Entry, job: Job): void {
    this.unlinkPending(entry, job);
    const tail = entry.runTail;
    if (tail === null) entry.runHead = job;
    else {
      tail.next = job;
      job.prev = tail;
    }
    entry.runTail = job;
    entry.running++;
    this.runningTotal++;
    if (job.level < entry.minRunningLevel) entry.minRunningLevel = job.level;
    job.state = RUNNING;
    job.startedAt = now();
    if (this.observer !== null) notifyStart(this.observer, entry.signature, job.name, job.startedAt - job.submittedAt);
    const ext = job.ext;
    const timed = ext !== null && ext.executionTimeoutMs !== Number.POSITIVE_INFINITY;
    if (timed) ext.timer = setTimeout(executionTimeoutFired, ext.executionTimeoutMs, job);
    // Completion always arrives through a promise reaction, i.e. asynchronously: finishing a job
    // never re-enters the pump that started it, so a chain of synchronously failing tasks cannot
    // grow the stack.
    const outcome = invoke(job);
    if (job.level === 1 && !timed) {
      // Fast path, no allocation per task: a syncLevel-1 job runs alone on its entry and can
      // only leave RUNNING through its own settlement (no execution timer), so when a
      // settlement arrives through the entry's handlers, the entry's running job is this one.
      outcome.then(entry.onFulfilled ?? this.bindHandlers(entry), entry.onRejected);
    } else {
      // Several jobs may run, or this one may time out and become a zombie: bind the job.
      outcome.then(
        (value) => this.settle(job, true, value),
        (error: unknown) => this.settle(job, false, error),
      );
    }
  }

  /** Creates an entry's completion handlers for syncLevel-1 jobs (once per busy period). */
  private bindHandlers(entry: Entry): (value: unknown) => void {
    const onFulfilled = (value: unknown): void => {
      const job = entry.runHead;
      if (job !== null) this.settle(job, true, value);
    };
    entry.onFulfilled = onFulfilled;
    entry.onRejected = (error: unknown): void => {
      const job = entry.runHead;
      if (job !== null) this.settle(job, false, error);
    };
    return onFulfilled;
  }

  /** Removes a job from its entry's pending list (any position) and from the dedup index. */
  private unlinkPending(entry: Entry, job: Job): void {
    const prev = job.prev;
    const next = job.next;
    if (prev === null) entry.head = next;
    else prev.next = next;
    if (next === null) entry.tail = prev;
    else next.prev = prev;
    job.prev = null;
    job.next = null;
    entry.pending--;
    this.pendingTotal--;
    const ext = job.ext;
    if (ext !== null) {
      const key = ext.dedupKey;
      if (key !== undefined && entry.dedup !== null && entry.dedup.get(key) === job) entry.dedup.delete(key);
      if (ext.timer !== undefined) {
        clearTimeout(ext.timer);
        ext.timer = undefined;
      }
    }
  }

  /** Frees a running job's slot. Called exactly once per started job. */
  private leaveRunning(entry: Entry, job: Job): void {
    const prev = job.prev;
    const next = job.next;
    if (prev === null) entry.runHead = next;
    else prev.next = next;
    if (next === null) entry.runTail = prev;
    else next.prev = prev;
    job.prev = null;
    job.next = null;
    job.state = DONE;
    entry.running--;
    this.runningTotal--;
    clearTimer(job);
    if (entry.running === 0) entry.minRunningLevel = Number.POSITIVE_INFINITY;
    else if (job.level === entry.minRunningLevel) {
      let min = Number.POSITIVE_INFINITY;
      for (let j = entry.runHead; j !== null; j = j.next) if (j.level < min) min = j.level;
      entry.minRunningLevel = min;
    }
  }

  /** After a slot was freed or a pending job removed: start what can start, forget an idle entry. */
  private afterChange(entry: Entry): void {
    if (entry.pending > 0) this.pump(entry);
    if (entry.pending === 0 && entry.running === 0 && this.entries.get(entry.signature) === entry) {
      this.entries.delete(entry.signature);
    }
    if (this.closed && this.runningTotal === 0) this.resolveDrain();
  }

  /** Called when run()'s outcome settled. Ignored if the job already timed out. */
  settle(job: Job, ok: boolean, value: unknown): void {
    if (job.state !== RUNNING) return;
    const entry = job.entry;
    this.leaveRunning(entry, job);
    if (this.observer !== null) this.ended(job, ok ? "ok" : "failed");
    deliver(job, ok, value);
    this.afterChange(entry);
  }

  pendingTimedOut(job: Job): void {
    const ext = job.ext;
    if (job.state !== PENDING || ext === null) return;
    ext.timer = undefined;
    const entry = job.entry;
    this.unlinkPending(entry, job);
    job.state = DONE;
    if (this.observer !== null) this.ended(job, "pending_timeout");
    deliver(job, false, pendingTimeoutError(job.signature, job.name, ext.pendingTimeoutMs));
    this.afterChange(entry);
  }

  executionTimedOut(job: Job): void {
    const ext = job.ext;
    if (job.state !== RUNNING || ext === null) return;
    ext.timer = undefined;
    const entry = job.entry;
    this.leaveRunning(entry, job);
    if (this.observer !== null) this.ended(job, "execution_timeout");
    const error = executionTimeoutError(job.signature, job.name, ext.executionTimeoutMs);
    // Tell the task first, so its abort handler runs before the next task of the signature starts.
    job.abort(error);
    deliver(job, false, error);
    this.afterChange(entry);
  }

  /** A submitter's AbortSignal fired. */
  waiterAborted(waiter: Waiter): void {
    const signal = waitSignalOf(waiter);
    if (signal === null || waiter.resolve === null) return; // already released
    const job = waiter instanceof Sharer ? waiter.job : waiter;
    const ext = job.ext as JobExtras; // a job with a signal-carrying waiter always has extras
    if (job.state === PENDING) {
      // Detach this submitter only; the job goes when its last submitter has gone.
      release(waiter, false, cancelledError(job.signature, job.name, signal.reason));
      if (--ext.live === 0) {
        const entry = job.entry;
        this.unlinkPending(entry, job);
        job.state = DONE;
        if (this.observer !== null) this.ended(job, "cancelled");
        deliver(job, false, undefined); // nobody is left; just drops references
        this.afterChange(entry);
      }
    } else if (job.state === RUNNING) {
      // Running work is shared: it is told to stop only when every live submitter asked.
      const holder = waiter instanceof Sharer ? waiter : ext;
      if (holder.voted) return;
      holder.voted = true;
      if (++ext.abortVotes === ext.live) job.abort(signal.reason);
    }
  }

  /** Tells the observer how a job ended; a job that never started waited until now. */
  private ended(job: Job, outcome: TaskOutcome): void {
    const t = now();
    const started = outcome === "ok" || outcome === "failed" || outcome === "execution_timeout";
    const waitedMs = started ? job.startedAt - job.submittedAt : t - job.submittedAt;
    notifyEnd(this.observer as ChainTaskObserver, job.entry.signature, job.name, outcome, Math.max(0, waitedMs), started ? Math.max(0, t - job.startedAt) : 0);
  }

  /** Tells the observer of a submission refused before it was queued. */
  private refused(signature: string, name: string, outcome: TaskOutcome): void {
    if (this.observer !== null) notifyEnd(this.observer, signature, name, outcome, 0, 0);
  }

  /** Rejects every pending job with CLOSED; resolves when no task runs any more. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const entry of this.entries.values()) {
        for (let job = entry.head; job !== null; job = entry.head) {
          this.unlinkPending(entry, job);
          job.state = DONE;
          if (this.observer !== null) this.ended(job, "closed");
          deliver(job, false, closedError(job.signature, job.name));
        }
        if (entry.running === 0) this.entries.delete(entry.signature);
      }
    }
    if (this.runningTotal === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.drainWaiters ??= []).push(resolve);
    });
  }

  private resolveDrain(): void {
    const waiters = this.drainWaiters;
    if (waiters === null) return;
    this.drainWaiters = null;
    for (const resolve of waiters) resolve();
  }

  pendingCount(signature: string): number {
    return this.entries.get(signature)?.pending ?? 0;
  }

  runningCount(signature: string): number {
    return this.entries.get(signature)?.running ?? 0;
  }

  inspect(): SignatureSnapshot[] {
    const t = now();
    const out: SignatureSnapshot[] = [];
    for (const entry of this.entries.values()) {
      const tasks: TaskSnapshot[] = [];
      for (let j = entry.runHead; j !== null; j = j.next) tasks.push(snapshot(j, "running", t));
      for (let j = entry.head; j !== null; j = j.next) tasks.push(snapshot(j, "pending", t));
      out.push({ signature: entry.signature, running: entry.running, pending: entry.pending, tasks });
    }
    return out;
  }
}

function canStart(entry: Entry, level: number): boolean {
  return entry.running < level && entry.running < entry.minRunningLevel;
}

function snapshot(job: Job, state: "running" | "pending", t: number): TaskSnapshot {
  return {
    name: job.name,
    state,
    ageMs: Math.max(0, Math.floor(t - job.submittedAt)),
    runningMs: state === "running" ? Math.max(0, Math.floor(t - job.startedAt)) : 0,
    syncLevel: job.level,
    waiters: job.ext === null ? 1 : job.ext.live,
  };
}
