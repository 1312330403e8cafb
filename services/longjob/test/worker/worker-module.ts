import { fileURLToPath } from "node:url";
import { JobExecutor, type JobContext, type JobTypeDefinition } from "@stratum/jobs";
import { JobControlService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { ServiceModule } from "@stratum/runtime";

/** A step of a `worker.gate` job the test lets go: the job runs until the test releases it. */
export interface Gate {
  ctx: JobContext;
  /** Lets the job's run return (its result), or throw. */
  release(outcome?: { result?: Record<string, unknown>; error?: Error }): void;
}

/** What the test sees of the worker's jobs. */
export class GateBoard {
  readonly #waiting: Array<(g: Gate) => void> = [];
  readonly #arrived: Gate[] = [];
  readonly cancelled: string[] = [];

  arrive(g: Gate): void {
    const w = this.#waiting.shift();
    if (w) w(g);
    else this.#arrived.push(g);
  }

  /** The next job that reached its gate. */
  next(timeoutMs = 10_000): Promise<Gate> {
    const g = this.#arrived.shift();
    if (g) return Promise.resolve(g);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no worker.gate job reached its gate")), timeoutMs);
      this.#waiting.push((gate) => {
        clearTimeout(timer);
        resolve(gate);
      });
    });
  }
}

/**
 * `worker.gate`: checkpoints, reports progress, then waits at a gate the test opens — or until a
 * cancel wakes it (its signal); its cancel hook records the cancel, as a type reaching an agent
 * task would. `worker.once` is the same with the `fail` interrupt policy.
 */
function gateType(board: GateBoard, name: string, onInterrupt: "resume" | "fail" | "suspend"): JobTypeDefinition {
  return {
    name,
    description: "waits at a gate the test opens",
    stages: ["prepare", "gate"],
    parameters: [
      { name: "label", kind: "string" },
      { name: "stubborn", kind: "bool", description: "does not listen to its cancel signal: its work outruns a cancel" },
      { name: "doneOnResume", kind: "bool", description: "a resumed attempt finds the work done (as a migration whose copy completed)" },
    ],
    onInterrupt,
    async run(ctx) {
      if (ctx.resumed && ctx.params.doneOnResume) return { doneBy: "an earlier attempt", signalAborted: ctx.signal.aborted };
      ctx.progress({ stage: "prepare", percent: 10 });
      await ctx.checkpoint();
      ctx.progress({ stage: "gate", percent: 50 });
      const outcome = await new Promise<{ result?: Record<string, unknown>; error?: Error }>((resolve, reject) => {
        board.arrive({ ctx, release: (o = {}) => resolve(o) });
        if (!ctx.params.stubborn) ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
      if (outcome.error) throw outcome.error;
      return outcome.result ?? { ok: true };
    },
    async cancel(ctx) {
      board.cancelled.push(ctx.jobUuid);
    },
  };
}

/** A service of its own ("worker", no tables) implementing job types through the kit's executor. */
export function workerModule(board: GateBoard): ServiceModule {
  return {
    name: "worker",
    migrationsFolder: fileURLToPath(new URL("./drizzle", import.meta.url)),
    setup(ctx) {
      const executor = new JobExecutor({
        service: "worker",
        types: [gateType(board, "worker.gate", "resume"), gateType(board, "worker.once", "fail"), gateType(board, "worker.pausable", "suspend")],
        bus: ctx.bus,
        queue: ctx.queue,
        log: ctx.log,
        incarnation: ctx.ownership.incarnation,
        longjob: ctx.peers("longjob").for(JobControlService),
      });
      return {
        services: [executor.api],
        start: () => executor.start(),
        drain: () => executor.drain(),
        stop: () => executor.stop(),
      };
    },
  };
}
