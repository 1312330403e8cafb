import { JobControlService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import type { TypeRegistry } from "../domain/type-registry";
import type { JobStore } from "../store/job-store";
import { JOB_STATE_TO_PROTO } from "./convert";

/**
 * JobControlService, longjob's side of the executor protocol: registration, and the checkpoint —
 * the authoritative state of running jobs, read from Postgres by whichever replica is asked.
 */
export function jobControlApi(store: JobStore, types: TypeRegistry): ServiceApi {
  return serviceApi(
    JobControlService,
    {
      async registerJobTypes(req) {
        await types.register(req.types);
        return {};
      },
      async checkJobs(req) {
        return { jobs: await checkJobs(store, req.jobs.map((j) => j.uuid)) };
      },
    },
    {},
  );
}

/** The checkpoint answer for each job asked about, in order (UNSPECIFIED: no such job). */
export async function checkJobs(store: JobStore, uuids: string[]) {
  const rows = new Map((await store.getMany(uuids)).map((r) => [r.uuid, r]));
  return uuids.map((uuid) => {
    const r = rows.get(uuid);
    return { uuid, state: r ? JOB_STATE_TO_PROTO[r.state] : JobState.UNSPECIFIED, attempt: r?.attempt ?? 0 };
  });
}
