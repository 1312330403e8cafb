import { closeClient, createClient, type Client } from "@stratum/rpc";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { startTestService, type TestService, type TestServiceOptions } from "@stratum/runtime/testing";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { longjobModule } from "../src/module";
import type { tables } from "../src/store/schema";
import type { LONGJOB_ENV } from "../src/config";

export interface LongjobStack {
  service: TestService<typeof tables>;
  jobs: Client<typeof LongJobService>;
  /** A client of replica `i` (no routing of its own: the kit forwards). */
  at(i: number): Client<typeof LongJobService>;
  /** Watches a job to its end; every message seen. */
  watch(uuid: string, replica?: number): Promise<Job[]>;
  stop(): Promise<void>;
}

export const FINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

export async function startLongjob(options: TestServiceOptions<typeof LONGJOB_ENV> = {}): Promise<LongjobStack> {
  const service = await startTestService(longjobModule(), options);
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
    if (types.some((t) => t.name === "longjob.sleep")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    service,
    jobs,
    at,
    async watch(uuid, replica = 0) {
      const seen: Job[] = [];
      for await (const m of at(replica).watchJob({ uuid }, { timeoutMs: 30_000 })) seen.push(m.job!);
      return seen;
    },
    async stop() {
      for (const c of clients.values()) closeClient(c);
      await service.stop();
    },
  };
}
