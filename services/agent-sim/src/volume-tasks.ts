import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { isVolumeTaskFinished, type VolumeTaskInfo, type VolumeTaskState } from "@stratum/agent-protocol";

export type { VolumeTaskState };

/** A long-running agent-side task on a volume (a backup, a snapshot, a copy…): a chain task, as the protocol reports it. */
export type VolumeTask = VolumeTaskInfo;

/**
 * Which tasks a wait is about: those on any of `volumeUuids` or named in `taskUuids`, of any of
 * `kinds` (every kind when absent).
 */
export interface VolumeTaskFilter {
  volumeUuids?: readonly string[];
  taskUuids?: readonly string[];
  kinds?: readonly string[];
}

/** The answer of {@link VolumeTaskRunner.waitForTasks}, as `volume/task/wait` sends it. */
export interface VolumeTaskWaitResult {
  exited: boolean;
  running: VolumeTask[];
}

/** Events of a {@link VolumeTaskRunner}: in-process observers (tests, timelines) see exits as they happen. */
export interface VolumeTaskEvents {
  /** A task was started (its copy). */
  start: [task: VolumeTask];
  /** A task reached a finished state (its copy, as it is now). */
  exit: [task: VolumeTask];
  /** A wait found matching tasks running and now waits for their exit (tests use it as a barrier). */
  waiting: [filter: VolumeTaskFilter];
}

interface TaskWaiter {
  readonly volumeUuids: ReadonlySet<string>;
  readonly taskUuids: ReadonlySet<string>;
  readonly kinds: ReadonlySet<string> | undefined;
  readonly resolve: (result: VolumeTaskWaitResult) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface VolumeTaskRunnerOptions {
  /** Time a cancelled task takes to exit (stays `cancelling` meanwhile). Default 0: at once. */
  cancelDelayMs?: number;
  /** Finished tasks remembered for status queries. Default 1,000. */
  maxFinished?: number;
}

/** How a byte task moves its bytes: whole chunks, each ending at `nextChunkAt` (performance.now ms). */
interface ChunkPlan {
  readonly chunkBytes: number;
  readonly chunkMs: number;
  nextChunkAt: number;
  /** A cancel arrived: the task exits `cancelled` when the chunk in progress ends. */
  cancelRequested: boolean;
}

/** What makes a task a byte task: the bytes it moves and the host's chunk size. */
export interface ByteTaskSpec {
  bytesTotal: number;
  chunkBytes: number;
}

export function isFinished(state: VolumeTaskState): boolean {
  return isVolumeTaskFinished(state);
}

/**
 * Runs the simulated volume tasks of one host. A task runs for its duration then succeeds;
 * cancel moves it to `cancelling` and it exits `cancelDelayMs` later; tests can also finish a
 * task at once ({@link finish}) to drive exact orders. A byte task (started with
 * {@link ByteTaskSpec}) moves its bytes in whole chunks spread evenly over its duration, and a
 * cancel takes effect at the end of the chunk in progress, as a copy can only stop between
 * chunks; {@link endChunk} ends that chunk now, for tests. Exits are events, never polled: a wait
 * ({@link waitForTasks}, `volume/task/wait`) is settled from the exit itself, as a real agent
 * posts a task's end back to its management node, and in-process observers get {@link events}.
 */
export class VolumeTaskRunner {
  /** `exit` and `waiting` events (see {@link VolumeTaskEvents}). */
  readonly events = new EventEmitter<VolumeTaskEvents>();
  private readonly tasks = new Map<string, VolumeTask>();
  /** Unfinished tasks (running or cancelling) by volume: what a wait's answer is computed from. */
  private readonly unfinished = new Map<string, Set<VolumeTask>>();
  /** Pending waits by each volume they name, so an exit looks only at the waits it can settle. */
  private readonly waiters = new Map<string, Set<TaskWaiter>>();
  /** Pending waits by each task uuid they name. */
  private readonly taskWaiters = new Map<string, Set<TaskWaiter>>();
  private readonly chunks = new Map<string, ChunkPlan>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly exitWaiters = new Map<string, Array<(task: VolumeTask) => void>>();
  private readonly cancelDelayMs: number;
  private readonly maxFinished: number;

  constructor(options: VolumeTaskRunnerOptions = {}) {
    this.cancelDelayMs = options.cancelDelayMs ?? 0;
    this.maxFinished = options.maxFinished ?? 1000;
  }

  start(input: { taskUuid?: string; volumeUuid: string; kind: string; durationMs: number; args: Record<string, unknown>; bytes?: ByteTaskSpec }): VolumeTask {
    const task: VolumeTask = {
      taskUuid: input.taskUuid ?? randomUUID(),
      volumeUuid: input.volumeUuid,
      kind: input.kind,
      state: "running",
      durationMs: input.durationMs,
      startedAt: new Date().toISOString(),
      args: input.args,
      ...(input.bytes ? { bytesDone: 0, bytesTotal: input.bytes.bytesTotal } : {}),
    };
    if (input.bytes) {
      const { bytesTotal, chunkBytes } = input.bytes;
      if (!Number.isSafeInteger(bytesTotal) || bytesTotal <= 0) throw new RangeError(`bytesTotal must be a positive integer, got ${bytesTotal}`);
      if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    }
    this.tasks.set(task.taskUuid, task);
    const onVolume = this.unfinished.get(task.volumeUuid) ?? new Set<VolumeTask>();
    onVolume.add(task);
    this.unfinished.set(task.volumeUuid, onVolume);
    this.events.emit("start", { ...task });
    if (input.bytes) {
      const { bytesTotal, chunkBytes } = input.bytes;
      const chunkMs = input.durationMs / Math.ceil(bytesTotal / chunkBytes);
      const plan: ChunkPlan = { chunkBytes, chunkMs, nextChunkAt: performance.now() + chunkMs, cancelRequested: false };
      this.chunks.set(task.taskUuid, plan);
      this.scheduleChunk(task.taskUuid, plan);
    } else {
      this.schedule(task.taskUuid, input.durationMs, "succeeded");
    }
    return { ...task };
  }

  get(taskUuid: string): VolumeTask | undefined {
    const task = this.tasks.get(taskUuid);
    return task ? { ...task } : undefined;
  }

  list(filter: { volumeUuid?: string; kind?: string; includeFinished?: boolean } = {}): VolumeTask[] {
    return [...this.tasks.values()]
      .filter((t) => (filter.volumeUuid === undefined || t.volumeUuid === filter.volumeUuid)
        && (filter.kind === undefined || t.kind === filter.kind)
        && (filter.includeFinished !== false || !isFinished(t.state)))
      .map((t) => ({ ...t }));
  }

  /** Requests cancellation; a finished task is left as it is (cancel is idempotent). */
  cancel(taskUuid: string): VolumeTask | undefined {
    const task = this.tasks.get(taskUuid);
    if (!task) return undefined;
    if (task.state === "running") {
      const plan = this.chunks.get(taskUuid);
      if (plan) {
        // The chunk in progress runs to its end (its timer is already set); then the task exits.
        task.state = "cancelling";
        plan.cancelRequested = true;
      } else if (this.cancelDelayMs > 0) {
        task.state = "cancelling";
        this.schedule(taskUuid, this.cancelDelayMs, "cancelled");
      } else {
        this.exit(task, "cancelled");
      }
    }
    return { ...task };
  }

  /** Ends a task now with the given state (tests use it to drive exact orders). */
  finish(taskUuid: string, state: "succeeded" | "failed" | "cancelled" = "succeeded"): VolumeTask | undefined {
    const task = this.tasks.get(taskUuid);
    if (!task) return undefined;
    if (!isFinished(task.state)) this.exit(task, state);
    return { ...task };
  }

  /**
   * Ends the chunk in progress of a byte task now (tests use it to drive exact orders): its bytes
   * count, a requested cancel takes effect, the last chunk succeeds the task; the next chunk
   * starts now. Undefined when there is no such task; a task that is no byte task or finished is
   * answered as it is.
   */
  endChunk(taskUuid: string): VolumeTask | undefined {
    const task = this.tasks.get(taskUuid);
    if (!task) return undefined;
    const plan = this.chunks.get(taskUuid);
    if (plan && !isFinished(task.state)) {
      this.completeChunk(task, plan);
      if (!isFinished(task.state)) {
        plan.nextChunkAt = performance.now() + plan.chunkMs;
        this.scheduleChunk(taskUuid, plan);
      }
    }
    return { ...task };
  }

  /** Resolves when the task has exited (at once if it already has). */
  waitForExit(taskUuid: string): Promise<VolumeTask> {
    const task = this.tasks.get(taskUuid);
    if (!task) return Promise.reject(new Error(`volume task ${taskUuid} not found`));
    if (isFinished(task.state)) return Promise.resolve({ ...task });
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(taskUuid) ?? [];
      list.push(resolve);
      this.exitWaiters.set(taskUuid, list);
    });
  }

  /**
   * Resolves once no task matching `filter` is running (at once if none is), or after
   * `timeoutMs` with those still running. Woken by the exits themselves; the only timer is the
   * deadline. A task started while the wait is pending blocks it too: the answer is always about
   * the tasks running at the moment it is given.
   */
  waitForTasks(filter: VolumeTaskFilter, timeoutMs: number): Promise<VolumeTaskWaitResult> {
    const volumeUuids = new Set(filter.volumeUuids ?? []);
    const taskUuids = new Set(filter.taskUuids ?? []);
    const kinds = filter.kinds === undefined ? undefined : new Set(filter.kinds);
    const running = this.runningOf(volumeUuids, taskUuids, kinds);
    if (running.length === 0) return Promise.resolve({ exited: true, running: [] });
    if (timeoutMs <= 0) return Promise.resolve({ exited: false, running: running.map((t) => ({ ...t })) });
    return new Promise((resolve) => {
      const waiter: TaskWaiter = { volumeUuids, taskUuids, kinds, resolve, timer: undefined };
      waiter.timer = setTimeout(() => this.settle(waiter), timeoutMs);
      waiter.timer.unref();
      for (const volumeUuid of volumeUuids) addTo(this.waiters, volumeUuid, waiter);
      for (const taskUuid of taskUuids) addTo(this.taskWaiters, taskUuid, waiter);
      this.events.emit("waiting", {
        ...(volumeUuids.size > 0 ? { volumeUuids: [...volumeUuids] } : {}),
        ...(taskUuids.size > 0 ? { taskUuids: [...taskUuids] } : {}),
        ...(kinds ? { kinds: [...kinds] } : {}),
      });
    });
  }

  /** The unfinished tasks matching `filter` (copies), as a wait would report them. */
  running(filter: VolumeTaskFilter): VolumeTask[] {
    return this.runningOf(new Set(filter.volumeUuids ?? []), new Set(filter.taskUuids ?? []), filter.kinds ? new Set(filter.kinds) : undefined).map((t) => ({ ...t }));
  }

  /** Waits not yet answered (inspection, and a test's proof that a wait is still pending). */
  get pendingWaits(): number {
    const all = new Set<TaskWaiter>();
    for (const list of this.waiters.values()) for (const w of list) all.add(w);
    for (const list of this.taskWaiters.values()) for (const w of list) all.add(w);
    return all.size;
  }

  /** The agent died: every unfinished task fails (waiters are told) and no timer is left. */
  stop(): void {
    for (const task of [...this.tasks.values()]) if (!isFinished(task.state)) this.exit(task, "failed");
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.chunks.clear();
  }

  /** Arms the timer of the chunk in progress (a timer never fires early; a late one catches up). */
  private scheduleChunk(taskUuid: string, plan: ChunkPlan): void {
    const previous = this.timers.get(taskUuid);
    if (previous) clearTimeout(previous);
    const timer = setTimeout(() => this.tick(taskUuid), Math.max(0, Math.ceil(plan.nextChunkAt - performance.now())));
    timer.unref();
    this.timers.set(taskUuid, timer);
  }

  /**
   * Ends every chunk whose time has come — several when the timers lag behind tiny chunks, so a
   * task of thousands of chunks still takes its duration, not thousands of timer ticks.
   */
  private tick(taskUuid: string): void {
    this.timers.delete(taskUuid);
    const task = this.tasks.get(taskUuid);
    const plan = this.chunks.get(taskUuid);
    if (!task || !plan || isFinished(task.state)) return;
    const now = performance.now();
    do {
      this.completeChunk(task, plan);
      plan.nextChunkAt += plan.chunkMs;
    } while (!isFinished(task.state) && plan.nextChunkAt <= now);
    if (!isFinished(task.state)) this.scheduleChunk(taskUuid, plan);
  }

  private completeChunk(task: VolumeTask, plan: ChunkPlan): void {
    const total = task.bytesTotal ?? 0;
    task.bytesDone = Math.min(total, (task.bytesDone ?? 0) + plan.chunkBytes);
    if (plan.cancelRequested) this.exit(task, "cancelled");
    else if (task.bytesDone >= total) this.exit(task, "succeeded");
  }

  private schedule(taskUuid: string, delayMs: number, state: VolumeTaskState): void {
    const previous = this.timers.get(taskUuid);
    if (previous) clearTimeout(previous);
    const timer = setTimeout(() => {
      const task = this.tasks.get(taskUuid);
      if (task && !isFinished(task.state)) this.exit(task, state);
    }, delayMs);
    timer.unref();
    this.timers.set(taskUuid, timer);
  }

  private exit(task: VolumeTask, state: VolumeTaskState): void {
    const timer = this.timers.get(task.taskUuid);
    if (timer) clearTimeout(timer);
    this.timers.delete(task.taskUuid);
    this.chunks.delete(task.taskUuid);
    task.state = state;
    if (state === "succeeded" && task.bytesTotal !== undefined) task.bytesDone = task.bytesTotal;
    task.finishedAt = new Date().toISOString();
    const onVolume = this.unfinished.get(task.volumeUuid);
    onVolume?.delete(task);
    if (onVolume?.size === 0) this.unfinished.delete(task.volumeUuid);
    const waiters = this.exitWaiters.get(task.taskUuid) ?? [];
    this.exitWaiters.delete(task.taskUuid);
    for (const w of waiters) w({ ...task });
    const concerned = new Set([...(this.waiters.get(task.volumeUuid) ?? []), ...(this.taskWaiters.get(task.taskUuid) ?? [])]);
    for (const waiter of concerned) {
      if (this.runningOf(waiter.volumeUuids, waiter.taskUuids, waiter.kinds).length === 0) this.settle(waiter);
    }
    this.events.emit("exit", { ...task });
    this.trimFinished();
  }

  /**
   * The unfinished tasks on `volumeUuids` or named in `taskUuids`, of `kinds` (every kind when
   * undefined): those on the volumes in start order per volume, then the named ones not yet listed.
   */
  private runningOf(volumeUuids: ReadonlySet<string>, taskUuids: ReadonlySet<string>, kinds: ReadonlySet<string> | undefined): VolumeTask[] {
    const out = new Set<VolumeTask>();
    const matches = (task: VolumeTask): boolean => kinds === undefined || kinds.has(task.kind);
    for (const volumeUuid of volumeUuids) {
      for (const task of this.unfinished.get(volumeUuid) ?? []) if (matches(task)) out.add(task);
    }
    for (const taskUuid of taskUuids) {
      const task = this.tasks.get(taskUuid);
      if (task && !isFinished(task.state) && matches(task)) out.add(task);
    }
    return [...out];
  }

  /** Answers a wait with the tasks running now (none when an exit settled it) and forgets it. */
  private settle(waiter: TaskWaiter): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.timer = undefined;
    for (const volumeUuid of waiter.volumeUuids) removeFrom(this.waiters, volumeUuid, waiter);
    for (const taskUuid of waiter.taskUuids) removeFrom(this.taskWaiters, taskUuid, waiter);
    const running = this.runningOf(waiter.volumeUuids, waiter.taskUuids, waiter.kinds).map((t) => ({ ...t }));
    waiter.resolve({ exited: running.length === 0, running });
  }

  private trimFinished(): void {
    let finished = 0;
    for (const t of this.tasks.values()) if (isFinished(t.state)) finished += 1;
    for (const [id, t] of this.tasks) {
      if (finished <= this.maxFinished) break;
      if (isFinished(t.state)) {
        this.tasks.delete(id);
        finished -= 1;
      }
    }
  }
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key) ?? new Set<V>();
  set.add(value);
  index.set(key, set);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  set?.delete(value);
  if (set?.size === 0) index.delete(key);
}
