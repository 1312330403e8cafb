import type { JobTypeDefinition } from "@stratum/jobs";

/** `longjob.noop`: does nothing and succeeds — the job framework's own cost, for tests and `bench:jobs`. */
export const noopJob: JobTypeDefinition = {
  name: "longjob.noop",
  description: "Does nothing and succeeds: measures the job framework itself.",
  stages: [],
  parameters: [],
  onInterrupt: "resume",
  async run() {
    return {};
  },
};

interface SleepParams {
  durationMs: number;
  steps?: number;
}

/**
 * `longjob.sleep`: sleeps `durationMs` in `steps`, reporting progress and checkpointing between
 * steps; a cancel wakes it mid-step. Resumes from its last progress after its executor's death,
 * so it exercises checkpoint, cancel and resume without any other service.
 */
export const sleepJob: JobTypeDefinition<SleepParams, { sleptMs: number }> = {
  name: "longjob.sleep",
  description: "Sleeps durationMs in steps, with progress; cancellable at every step; resumes from its progress.",
  stages: ["sleeping"],
  parameters: [
    { name: "durationMs", kind: "number", required: true, min: 0, max: 3_600_000, description: "how long to sleep in all" },
    { name: "steps", kind: "number", min: 1, max: 1_000, description: "progress reports (default 10)" },
  ],
  onInterrupt: "resume",
  async run(ctx) {
    const steps = Math.max(1, Math.floor(ctx.params.steps ?? 10));
    const step = ctx.params.durationMs / steps;
    const from = Math.floor(((ctx.resumeFrom?.percent ?? 0) / 100) * steps);
    for (let i = from; i < steps; i++) {
      await ctx.checkpoint();
      await sleep(step, ctx.signal);
      ctx.progress({ stage: "sleeping", percent: Math.floor(((i + 1) * 100) / steps), message: `step ${i + 1} of ${steps}` });
    }
    return { sleptMs: ctx.params.durationMs };
  },
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
