/**
 * One step of a flow. `run` does the work; `rollback` undoes it and is called only if `run`
 * completed and a later step failed, with that step's error (so an undo can record why it
 * happened). Steps share a mutable context object (the "data" of ZStack's FlowChain) to pass
 * what they produced to later steps and to their own rollback.
 */
export interface FlowStep<C> {
  readonly name: string;
  run(ctx: C, signal: AbortSignal): Promise<void> | void;
  rollback?(ctx: C, error: unknown): Promise<void> | void;
}

/** A failed flow: which step failed, with the step's error as `cause`, and any rollback failures. */
export class FlowError extends Error {
  override readonly name = "FlowError";
  constructor(
    readonly flow: string,
    readonly step: string,
    override readonly cause: unknown,
    /** Rollbacks that failed too, by step name. The flow still rolled back every other step. */
    readonly rollbackFailures: ReadonlyArray<{ step: string; error: unknown }>,
    /** The flow was cancelled before `step` started (it never ran), rather than failing in it. */
    readonly cancelled = false,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(cancelled ? `flow ${flow} cancelled before step ${step}: ${why}` : `flow ${flow} failed at step ${step}: ${why}`, { cause });
  }
}

/**
 * Runs the steps in order. When one fails (throws, or `signal` is aborted between steps) every
 * completed step is rolled back in reverse order — also past a rollback that fails, because the
 * remaining undo work is independent — and the flow rejects with a FlowError naming the step.
 * A flow has no retry: its steps decide what is safe to repeat.
 */
export async function runFlow<C>(name: string, steps: readonly FlowStep<C>[], ctx: C, signal?: AbortSignal): Promise<C> {
  const done: FlowStep<C>[] = [];
  const never = signal ?? new AbortController().signal;
  for (const step of steps) {
    let cancelled = false;
    try {
      cancelled = never.aborted;
      never.throwIfAborted();
      await step.run(ctx, never);
      done.push(step);
    } catch (error) {
      const rollbackFailures: { step: string; error: unknown }[] = [];
      for (const completed of done.reverse()) {
        try {
          await completed.rollback?.(ctx, error);
        } catch (rollbackError) {
          rollbackFailures.push({ step: completed.name, error: rollbackError });
        }
      }
      throw new FlowError(name, step.name, error, rollbackFailures, cancelled);
    }
  }
  return ctx;
}
