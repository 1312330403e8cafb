import { closeClient, createClient, type Client } from "@stratum/rpc";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { startTestService, type TestService, type TestServiceOptions } from "@stratum/runtime/testing";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { longjobModule } from "../src/module";
import type { tables } from "../src/store/schema";
import type { LONGJOB_ENV } from "../src/config";
import { GateBoard, workerModule } from "./worker/worker-module";

/** Resolves at the first message of the job's watch that `pick` accepts (the watch goes on elsewhere). */
export async function untilJob(jobs: Client<typeof LongJobService>, uuid: string, pick: (j: Job) => boolean, what: string): Promise<Job> {
  for await (const m of jobs.watchJob({ uuid }, { timeoutMs: 30_000 })) if (pick(m.job!)) return m.job!;
  throw new Error(`job ${uuid} ended without ${what}`);
}

export interface LongjobStack {
  service: TestService<typeof tables>;
  /** The worker service (test job types `worker.gate`, `worker.once`, `worker.pausable`), when asked for. */
  worker?: TestService<Record<string, unknown>>;
  board: GateBoard;
  jobs: Client<typeof LongJobService>;
  /** A client of replica `i` (no routing of its own: the kit forwards). */
  at(i: number): Client<typeof LongJobService>;
  /** Watches a job to its end; every message seen. */
  watch(uuid: string, replica?: number): Promise<Job[]>;
  stop(): Promise<void>;
}

export const FINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

export async function startLongjob(options: TestServiceOptions<typeof LONGJOB_ENV> & { worker?: boolean } = {}): Promise<LongjobStack> {
  const service = await startTestService(longjobModule(), options);
  const board = new GateBoard();
  const worker = options.worker
    ? await startTestService(workerModule(board), { databaseUrl: service.databaseUrl, natsUrl: service.natsUrl, busPrefix: service.busPrefix })
    : undefined;
  const clients = new Map<number, Client<typeof LongJobService>>();
  const at = (i: number) => {
    let c = clients.get(i);
    if (!c) clients.set(i, (c = createClient(LongJobService, service.replicas[i]!.address)));
    return c;
  };
  const jobs = at(0);
  // The built-in types register at start, in the background: wait until they are there.
  for (let i = 0; i < 200; i++) {
    const { types } = await jobs.listJobTypes({});
    if (types.some((t) => t.name === "longjob.sleep") && (!worker || types.some((t) => t.name === "worker.gate"))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    service,
    worker,
    board,
    jobs,
    at,
    async watch(uuid, replica = 0) {
      const seen: Job[] = [];
      for await (const m of at(replica).watchJob({ uuid }, { timeoutMs: 30_000 })) seen.push(m.job!);
      return seen;
    },
    async stop() {
      for (const c of clients.values()) closeClient(c);
      await worker?.stop();
      await service.stop();
    },
  };
}
