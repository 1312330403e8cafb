import { randomUUID } from "node:crypto";
import type { VolumeTaskInfo, VolumeTaskState } from "@stratum/agent-protocol";

export type { VolumeTaskState };

/** A long-running agent-side task on a volume (a backup, a snapshot, a copy…): a chain task, as the protocol reports it. */
export type VolumeTask = VolumeTaskInfo;

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
 * task at once ({@link finish}) to drive exact orders. Exit is observable by polling status or,
 * in-process, by {@link waitForExit}.
 */
export class VolumeTaskRunner {
  private readonly tasks = new Map<string, VolumeTask>();
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
    const waiters = this.exitWaiters.get(task.taskUuid) ?? [];
    this.exitWaiters.delete(task.taskUuid);
    for (const w of waiters) w({ ...task });
    this.trimFinished();
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
