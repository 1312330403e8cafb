import type { ChainTaskObserver, TaskEndInfo, TaskOutcome, TaskStartInfo } from "./types";

// Calling the observer hooks. Internal: the engine calls these only when an observer is set, so a
// queue without one pays one null check per transition and allocates nothing.

/** A hook's bug must not break the queue (a slot left occupied, a submitter never told). */
function reportHookError(hook: string, error: unknown): void {
  process.emitWarning(`chain-task: observer ${hook} threw: ${error instanceof Error ? error.message : String(error)}`);
}

export function notifyStart(observer: ChainTaskObserver, signature: string, name: string, waitedMs: number): void {
  if (observer.onTaskStart === undefined) return;
  try {
    observer.onTaskStart({ signature, name, waitedMs });
  } catch (error) {
    reportHookError("onTaskStart", error);
  }
}

export function notifyEnd(observer: ChainTaskObserver, signature: string, name: string, outcome: TaskOutcome, waitedMs: number, ranMs: number): void {
  if (observer.onTaskEnd === undefined) return;
  try {
    observer.onTaskEnd({ signature, name, outcome, waitedMs, ranMs });
  } catch (error) {
    reportHookError("onTaskEnd", error);
  }
}

/** One observer that tells each of `observers` in turn (each hook guarded on its own). */
export function fanOut(observers: readonly ChainTaskObserver[]): ChainTaskObserver {
  return {
    onTaskStart(info: TaskStartInfo): void {
      for (const o of observers) notifyStart(o, info.signature, info.name, info.waitedMs);
    },
    onTaskEnd(info: TaskEndInfo): void {
      for (const o of observers) notifyEnd(o, info.signature, info.name, info.outcome, info.waitedMs, info.ranMs);
    },
  };
}

/** Throws a TypeError naming the field unless `value` is an observer object. */
export function checkObserver(value: unknown, field: string): asserts value is ChainTaskObserver {
  if (typeof value !== "object" || value === null) throw new TypeError(`chain-task: ${field} must be an object with onTaskStart and/or onTaskEnd`);
  for (const hook of ["onTaskStart", "onTaskEnd"] as const) {
    const fn = (value as Record<string, unknown>)[hook];
    if (fn !== undefined && typeof fn !== "function") throw new TypeError(`chain-task: ${field}.${hook} must be a function`);
  }
}
