import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobSchema, JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { JobRow, JobStateValue } from "../store/schema";

/** Database enum ↔ proto enum: one table each way, so a new state cannot be half-mapped. */
export const JOB_STATE_TO_PROTO: Record<JobStateValue, JobState> = {
  Waiting: JobState.WAITING,
  Running: JobState.RUNNING,
  Canceling: JobState.CANCELING,
  Canceled: JobState.CANCELED,
  Succeeded: JobState.SUCCEEDED,
  Failed: JobState.FAILED,
  Suspended: JobState.SUSPENDED,
};
export const JOB_STATE_FROM_PROTO = new Map(Object.entries(JOB_STATE_TO_PROTO).map(([k, v]) => [v, k as JobStateValue]));

export function jobToProto(j: JobRow): MessageInitShape<typeof JobSchema> {
  return {
    uuid: j.uuid,
    type: j.type,
    target: { service: j.targetService, uuid: j.targetUuid },
    parameters: (j.parameters ?? {}) as JsonObject,
    state: JOB_STATE_TO_PROTO[j.state],
    progress: { percent: j.percent, stage: j.stage, bytesDone: BigInt(j.bytesDone), bytesTotal: BigInt(j.bytesTotal), message: j.message },
    ...(j.result ? { result: j.result as JsonObject } : {}),
    ...(j.error ? { error: j.error } : {}),
    executor: j.executor.split("@")[0] ?? "",
    clientRequestId: j.clientRequestId ?? "",
    rerunOf: j.rerunOf ?? "",
    attempt: j.attempt,
    revision: BigInt(j.revision),
    createTime: timestampFromDate(j.createdAt),
    ...(j.startedAt ? { startTime: timestampFromDate(j.startedAt) } : {}),
    updateTime: timestampFromDate(j.updatedAt),
    ...(j.finishedAt ? { finishTime: timestampFromDate(j.finishedAt) } : {}),
  };
}
