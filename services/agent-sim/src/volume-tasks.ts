import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { VolumeTaskInfo, VolumeTaskState } from "@stratum/agent-protocol";

export type { VolumeTaskState };

/** A long-running agent-side task on a volume (a backup, a snapshot, a copy…): a chain task, as the protocol reports it. */
export type VolumeTask = VolumeTaskInfo;

/** Which tasks a wait is about: those on any of `volumeUuids`, of any of `kinds` (every kind when absent). */
export interface VolumeTaskFilter {
  volumeUuids: readonly string[];
  kinds?: readonly string[];
}

/** The answer of {@link VolumeTaskRunner.waitForTasks}, as `volume/task/wait` sends it. */
export interface VolumeTaskWaitResult {
  exited: boolean;
  running: VolumeTask[];
}

/** Events of a {@link VolumeTaskRunner}: in-process observers (tests, timelines) see exits as they happen. */
export interface VolumeTaskEvents {
  /** A task reached a finished state (its copy, as it is now). */
  exit: [task: VolumeTask];
  /** A wait found matching tasks running and now waits for their exit (tests use it as a barrier). */
  waiting: [filter: VolumeTaskFilter];
}

interface TaskWaiter {
  readonly volumeUuids: ReadonlySet<string>;
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

const FINISHED: ReadonlySet<VolumeTaskState> = new Set(["succeeded", "cancelled", "failed"]);

export function isFinished(state: VolumeTaskState): boolean {
  return FINISHED.has(state);
}

/**
 * Runs the simulated volume tasks of one host. A task runs for its duration then succeeds;
 * cancel moves it to `cancelling` and it exits `cancelDelayMs` later; tests can also finish a
 * task at once ({@link finish}) to drive exact orders. Exits are events, never polled: a wait
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
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly exitWaiters = new Map<string, Array<(task: VolumeTask) => void>>();
  private readonly cancelDelayMs: number;
  private readonly maxFinished: number;

  constructor(options: VolumeTaskRunnerOptions = {}) {
    this.cancelDelayMs = options.cancelDelayMs ?? 0;
    this.maxFinished = options.maxFinished ?? 1000;
  }

  start(input: { taskUuid?: string; volumeUuid: string; kind: string; durationMs: number; args: Record<string, unknown> }): VolumeTask {
    const task: VolumeTask = {
      taskUuid: input.taskUuid ?? randomUUID(),
      volumeUuid: input.volumeUuid,
      kind: input.kind,
      state: "running",
      durationMs: input.durationMs,
      startedAt: new Date().toISOString(),
      args: input.args,
    };
    this.tasks.set(task.taskUuid, task);
    const onVolume = this.unfinished.get(task.volumeUuid) ?? new Set<VolumeTask>();
    onVolume.add(task);
    this.unfinished.set(task.volumeUuid, onVolume);
    this.schedule(task.taskUuid, input.durationMs, "succeeded");
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
      if (this.cancelDelayMs > 0) {
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
    const volumeUuids = new Set(filter.volumeUuids);
    const kinds = filter.kinds === undefined ? undefined : new Set(filter.kinds);
    const running = this.runningOf(volumeUuids, kinds);
    if (running.length === 0) return Promise.resolve({ exited: true, running: [] });
    if (timeoutMs <= 0) return Promise.resolve({ exited: false, running: running.map((t) => ({ ...t })) });
    return new Promise((resolve) => {
      const waiter: TaskWaiter = { volumeUuids, kinds, resolve, timer: undefined };
      waiter.timer = setTimeout(() => this.settle(waiter), timeoutMs);
      waiter.timer.unref();
      for (const volumeUuid of volumeUuids) {
        const list = this.waiters.get(volumeUuid) ?? new Set<TaskWaiter>();
        list.add(waiter);
        this.waiters.set(volumeUuid, list);
      }
      this.events.emit("waiting", { volumeUuids: [...volumeUuids], ...(kinds ? { kinds: [...kinds] } : {}) });
    });
  }

  /** Waits not yet answered (inspection, and a test's proof that a wait is still pending). */
  get pendingWaits(): number {
    const all = new Set<TaskWaiter>();
    for (const list of this.waiters.values()) for (const w of list) all.add(w);
    return all.size;
  }

  /** The agent died: every unfinished task fails (waiters are told) and no timer is left. */
  stop(): void {
    for (const task of [...this.tasks.values()]) if (!isFinished(task.state)) this.exit(task, "failed");
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
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
    task.state = state;
    task.finishedAt = new Date().toISOString();
    const onVolume = this.unfinished.get(task.volumeUuid);
    onVolume?.delete(task);
    if (onVolume?.size === 0) this.unfinished.delete(task.volumeUuid);
    const waiters = this.exitWaiters.get(task.taskUuid) ?? [];
    this.exitWaiters.delete(task.taskUuid);
    for (const w of waiters) w({ ...task });
    for (const waiter of [...(this.waiters.get(task.volumeUuid) ?? [])]) {
      if (this.runningOf(waiter.volumeUuids, waiter.kinds).length === 0) this.settle(waiter);
    }
    this.events.emit("exit", { ...task });
    this.trimFinished();
  }

  /** The unfinished tasks on `volumeUuids` of `kinds` (every kind when undefined), in start order per volume. */
  private runningOf(volumeUuids: ReadonlySet<string>, kinds: ReadonlySet<string> | undefined): VolumeTask[] {
    const out: VolumeTask[] = [];
    for (const volumeUuid of volumeUuids) {
      for (const task of this.unfinished.get(volumeUuid) ?? []) if (kinds === undefined || kinds.has(task.kind)) out.push(task);
    }
    return out;
  }

  /** Answers a wait with the tasks running now (none when an exit settled it) and forgets it. */
  private settle(waiter: TaskWaiter): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    waiter.timer = undefined;
    for (const volumeUuid of waiter.volumeUuids) {
      const list = this.waiters.get(volumeUuid);
      list?.delete(waiter);
      if (list?.size === 0) this.waiters.delete(volumeUuid);
    }
    const running = this.runningOf(waiter.volumeUuids, waiter.kinds).map((t) => ({ ...t }));
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
