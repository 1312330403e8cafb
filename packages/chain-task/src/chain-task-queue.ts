import {
  DEFAULT_EXECUTION_TIMEOUT_MS,
  DEFAULT_MAX_PENDING,
  DEFAULT_PENDING_TIMEOUT_MS,
  DEFAULT_SYNC_LEVEL,
} from "./defaults";
import { Engine } from "./engine";
import { checkObserver, fanOut } from "./observer";
import type { ChainTask, ChainTaskObserver, ChainTaskQueueOptions, SignatureSnapshot, SubmitOptions } from "./types";
import {
  checkBound,
  checkFunction,
  checkNonEmptyString,
  checkPositiveInteger,
  checkSignal,
  checkTimeout,
} from "./validate";

/**
 * Per-resource serialization: ZStack's `chainSubmit`, made safe.
 *
 * Every mutating operation on a resource is submitted with the resource's sync signature
 * (`vm-<uuid>`, …). Tasks of one signature run in submission order, `syncLevel` at a time (1 by
 * default), so two operations on the same VM never interleave; tasks of different signatures
 * never wait for each other. Unlike ZStack's chain, where a task that forgets `chain.next()`
 * blocks its signature forever, here the slot is freed by the queue itself when the task's
 * promise settles, throws, times out or is cancelled, and the submitter always gets an outcome.
 *
 * Bad input (empty signature, non-integer syncLevel, non-function run, …) throws a TypeError or
 * RangeError synchronously and changes nothing. Runtime refusals (queue full, closed, cancelled,
 * timeouts) reject the returned promise with a {@link ChainTaskError}.
 */
export class ChainTaskQueue {
  readonly #engine = new Engine();
  readonly #pendingTimeoutMs: number;
  readonly #executionTimeoutMs: number;
  readonly #maxPending: number;
  readonly #observers: ChainTaskObserver[] = [];

  constructor(options: ChainTaskQueueOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("chain-task: options must be an object");
    }
    const { pendingTimeoutMs, executionTimeoutMs, maxPending, observer } = options;
    if (observer !== undefined) checkObserver(observer, "options.observer");
    if (pendingTimeoutMs !== undefined) checkTimeout(pendingTimeoutMs, "options.pendingTimeoutMs");
    if (executionTimeoutMs !== undefined) checkTimeout(executionTimeoutMs, "options.executionTimeoutMs");
    if (maxPending !== undefined) checkBound(maxPending, "options.maxPending");
    this.#pendingTimeoutMs = pendingTimeoutMs ?? DEFAULT_PENDING_TIMEOUT_MS;
    this.#executionTimeoutMs = executionTimeoutMs ?? DEFAULT_EXECUTION_TIMEOUT_MS;
    this.#maxPending = maxPending ?? DEFAULT_MAX_PENDING;
    if (observer !== undefined) this.observe(observer);
  }

  /**
   * Adds an observer told of every task's start and end (see {@link ChainTaskObserver}), so a
   * metrics layer can attach to a queue it did not create. Returns the function that removes it.
   *
   * @throws TypeError if `observer` is not an object of hook functions.
   */
  observe(observer: ChainTaskObserver): () => void {
    checkObserver(observer, "observer");
    this.#observers.push(observer);
    this.#rewireObservers();
    return () => {
      const at = this.#observers.indexOf(observer);
      if (at < 0) return;
      this.#observers.splice(at, 1);
      this.#rewireObservers();
    };
  }

  /** One observer is called directly; several go through a fan-out; none costs nothing. */
  #rewireObservers(): void {
    const list = this.#observers;
    this.#engine.observer = list.length === 0 ? null : list.length === 1 ? (list[0] as ChainTaskObserver) : fanOut([...list]);
  }

  /**
   * Queues `task` behind the other tasks of its signature and resolves or rejects with its
   * outcome. If a slot is free, `task.run` is called before `submit` returns.
   *
   * Rejects with a {@link ChainTaskError}: `QUEUE_FULL` (never queued), `CLOSED`, `CANCELLED`
   * (`options.signal` fired while pending), `PENDING_TIMEOUT`, `EXECUTION_TIMEOUT`; otherwise with
   * whatever `run` threw or rejected with.
   *
   * @throws TypeError | RangeError on malformed input, before anything is queued.
   */
  submit<T>(task: ChainTask<T>, options?: SubmitOptions): Promise<T> {
    if (typeof task !== "object" || task === null) {
      throw new TypeError("chain-task: task must be an object with signature, name and run");
    }
    checkNonEmptyString(task.signature, "task.signature");
    checkNonEmptyString(task.name, "task.name");
    checkFunction(task.run, "task.run");
    let level = task.syncLevel;
    if (level === undefined) level = DEFAULT_SYNC_LEVEL;
    else checkPositiveInteger(level, "task.syncLevel");
    if (task.dedupKey !== undefined) checkNonEmptyString(task.dedupKey, "task.dedupKey");
    let pendingTimeoutMs = task.pendingTimeoutMs;
    if (pendingTimeoutMs === undefined) pendingTimeoutMs = this.#pendingTimeoutMs;
    else checkTimeout(pendingTimeoutMs, "task.pendingTimeoutMs");
    let executionTimeoutMs = task.executionTimeoutMs;
    if (executionTimeoutMs === undefined) executionTimeoutMs = this.#executionTimeoutMs;
    else checkTimeout(executionTimeoutMs, "task.executionTimeoutMs");
    let maxPending = task.maxPending;
    if (maxPending === undefined) maxPending = this.#maxPending;
    else checkBound(maxPending, "task.maxPending");
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      if (typeof options !== "object" || options === null) {
        throw new TypeError("chain-task: submit options must be an object");
      }
      signal = options.signal;
      if (signal !== undefined) checkSignal(signal, "options.signal");
    }
    return this.#engine.submit(
      task as ChainTask<unknown>,
      level,
      pendingTimeoutMs,
      executionTimeoutMs,
      maxPending,
      signal,
    ) as Promise<T>;
  }

  /**
   * Snapshot of every busy signature: its running tasks (start order) then its pending tasks
   * (queue order), each with name, state and age. Idle signatures do not appear. Cost is
   * proportional to the number of queued tasks; meant for admin RPCs, not hot paths.
   */
  inspect(): SignatureSnapshot[] {
    return this.#engine.inspect();
  }

  /** Tasks submitted and not yet settled (pending + running) across all signatures. O(1). */
  get size(): number {
    return this.#engine.pendingTotal + this.#engine.runningTotal;
  }

  /** Pending tasks across all signatures. O(1). */
  get pendingSize(): number {
    return this.#engine.pendingTotal;
  }

  /**
   * Running tasks (occupied slots) across all signatures. O(1). A task whose execution timed
   * out no longer counts, even if its code is still running.
   */
  get runningSize(): number {
    return this.#engine.runningTotal;
  }

  /** Number of signatures with pending or running tasks. Idle signatures are forgotten. O(1). */
  get signatureCount(): number {
    return this.#engine.entries.size;
  }

  /** Pending tasks of one signature (0 when idle). O(1). */
  pendingCount(signature: string): number {
    return this.#engine.pendingCount(signature);
  }

  /** Running tasks of one signature (0 when idle). O(1). */
  runningCount(signature: string): number {
    return this.#engine.runningCount(signature);
  }

  /** True once {@link close} was called; every later submission rejects with `CLOSED`. */
  get closed(): boolean {
    return this.#engine.closed;
  }

  /**
   * For shutdown: rejects every pending task with `CLOSED`, refuses new submissions, and resolves
   * once no task runs any more. Running tasks are not aborted (use execution timeouts to bound
   * the wait). Idempotent: later calls resolve at the same moment as the first.
   */
  close(): Promise<void> {
    return this.#engine.close();
  }
}
