/**
 * What a running task gets. The queue's only way to talk to code it cannot kill is `signal`:
 * it aborts when the execution timeout fires or when every submitter waiting for the task has
 * cancelled. Long steps (agent HTTP calls, DB waits) should pass it on.
 */
export interface TaskContext {
  /**
   * Aborted on execution timeout (reason: the `EXECUTION_TIMEOUT` {@link ChainTaskError}) or when
   * all submitters of a running task cancelled (reason: the last submitter's `signal.reason`).
   * Created on first read, so tasks that never look at it cost no `AbortController`; reading it
   * after the abort happened returns an already-aborted signal.
   */
  readonly signal: AbortSignal;
  /** The task's name, for logs. */
  readonly name: string;
  /** The task's sync signature, for logs. */
  readonly signature: string;
}

/**
 * One mutating operation on one resource. Tasks with the same `signature` run in submission
 * order, at most `syncLevel` at a time; tasks with different signatures never wait for each other.
 *
 * Do not mutate a task object after submitting it.
 */
export interface ChainTask<T> {
  /** Sync signature: which queue the task runs in, e.g. `vm-<uuid>`. Non-empty. */
  readonly signature: string;
  /** Human-readable name, used in errors and {@link ChainTaskQueue.inspect}. Non-empty. */
  readonly name: string;
  /**
   * The work. Its result or failure (also a synchronous throw) is what the submitter gets.
   * It is called with `this` = the task object. It may be called synchronously inside `submit()`
   * when a slot is free, like p-queue does: do not rely on `submit()` having returned.
   */
  readonly run: (ctx: TaskContext) => T | PromiseLike<T>;
  /**
   * Parallel slots, default 1 (strict serialization). A task starts only when fewer than its own
   * `syncLevel` tasks of its signature run AND fewer than the `syncLevel` of every running task of
   * that signature: so a `syncLevel: 1` task always runs alone, whatever its neighbours ask for.
   * Positive integer.
   */
  readonly syncLevel?: number;
  /**
   * Coalescing key. If a task with the same key on the same signature is still pending (not yet
   * running), this submission does not queue anything: it gets that task's result. The task that
   * runs is the first one; the later task's `run`, name, timeouts are ignored. A running task is
   * never joined, since it may already have read the state the new request wants applied.
   */
  readonly dedupKey?: string;
  /** Overrides the queue's `pendingTimeoutMs` for this task; `Infinity` disables it. */
  readonly pendingTimeoutMs?: number;
  /** Overrides the queue's `executionTimeoutMs` for this task; `Infinity` disables it. */
  readonly executionTimeoutMs?: number;
  /** Overrides the queue's `maxPending` for this submission; `Infinity` disables the bound. */
  readonly maxPending?: number;
}

/** Per-submission options, kept apart from the task because they belong to the caller. */
export interface SubmitOptions {
  /**
   * Cancels this submission. While the task is pending, aborting rejects the promise at once with
   * `CANCELLED` (cause: `signal.reason`) and the task is removed, unless other dedup sharers still
   * wait for it. Once the task runs, aborting does not detach the caller: the abort is forwarded to
   * `ctx.signal` (when every submitter sharing the task aborted) and the promise settles with
   * whatever the task does.
   */
  readonly signal?: AbortSignal;
}

/** Queue-wide defaults; each can be overridden per task. */
export interface ChainTaskQueueOptions {
  /** How long a task may wait for a slot before failing with `PENDING_TIMEOUT`. Default: `Infinity` (no limit). */
  readonly pendingTimeoutMs?: number;
  /**
   * How long a task may run before its slot is freed and it fails with `EXECUTION_TIMEOUT`.
   * Default: `Infinity` (no limit). Services should set one: a task that never settles would
   * otherwise block its signature forever (ZStack's classic "chain.next() never called").
   */
  readonly executionTimeoutMs?: number;
  /**
   * How many tasks may wait (not running) per signature before submissions fail with `QUEUE_FULL`.
   * A submission that can start at once is never rejected. Default: {@link DEFAULT_MAX_PENDING}.
   */
  readonly maxPending?: number;
  /**
   * Told when a task starts and when it ends, for metrics (wait time, run time, outcomes) without
   * polling. More observers can be added with {@link ChainTaskQueue.observe}.
   */
  readonly observer?: ChainTaskObserver;
}

/**
 * How a task left the queue. `ok`/`failed` are run()'s outcome; `execution_timeout` freed the slot
 * while run() may still be going; the others never ran: `pending_timeout`, `cancelled` (every
 * submitter aborted while it waited), `closed` (the queue shut down), `queue_full` (refused at
 * submission, never queued).
 */
export type TaskOutcome = "ok" | "failed" | "execution_timeout" | "pending_timeout" | "cancelled" | "closed" | "queue_full";

/** What {@link ChainTaskObserver.onTaskStart} is told. */
export interface TaskStartInfo {
  readonly signature: string;
  readonly name: string;
  /** Whole milliseconds from submission to start (0 when a slot was free). */
  readonly waitedMs: number;
}

/** What {@link ChainTaskObserver.onTaskEnd} is told; once per submitted task (not per dedup sharer). */
export interface TaskEndInfo {
  readonly signature: string;
  readonly name: string;
  readonly outcome: TaskOutcome;
  /** Whole milliseconds from submission to start, or to the end for a task that never ran. */
  readonly waitedMs: number;
  /** Whole milliseconds from start to end; 0 for a task that never ran. */
  readonly ranMs: number;
}

/**
 * Metrics hooks. Called synchronously on the queue's path, so they must be cheap and must not
 * submit to or close the queue; a hook that throws is reported with `process.emitWarning` and
 * does not disturb the queue. Without an observer the queue allocates nothing for them.
 */
export interface ChainTaskObserver {
  onTaskStart?(info: TaskStartInfo): void;
  onTaskEnd?(info: TaskEndInfo): void;
}

/** State of a task as seen by {@link ChainTaskQueue.inspect}. */
export type TaskState = "running" | "pending";

/** One task in an {@link ChainTaskQueue.inspect} snapshot. */
export interface TaskSnapshot {
  readonly name: string;
  readonly state: TaskState;
  /** Milliseconds since the task was submitted (whole ms, rounded down). */
  readonly ageMs: number;
  /** Milliseconds since it started running; 0 while pending. */
  readonly runningMs: number;
  readonly syncLevel: number;
  /** How many submitters still wait for this task (more than 1 with dedup). */
  readonly waiters: number;
}

/** One busy signature in an {@link ChainTaskQueue.inspect} snapshot. */
export interface SignatureSnapshot {
  readonly signature: string;
  readonly running: number;
  readonly pending: number;
  /** Running tasks first (in start order), then pending tasks in queue order. */
  readonly tasks: readonly TaskSnapshot[];
}
