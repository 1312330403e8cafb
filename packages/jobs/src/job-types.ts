import { create } from "@bufbuild/protobuf";
import { InterruptPolicy, JobState, JobTypeSchema, ParameterKind, type JobType } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { JobParameter, JobTypeDefinition } from "./job-type";

const KIND: Record<JobParameter["kind"], ParameterKind> = {
  number: ParameterKind.NUMBER,
  string: ParameterKind.STRING,
  bool: ParameterKind.BOOL,
  stringList: ParameterKind.STRING_LIST,
};

const POLICY = { resume: InterruptPolicy.RESUME, fail: InterruptPolicy.FAIL, suspend: InterruptPolicy.SUSPEND } as const;

/** The registration of a type, as longjob records it (`RegisterJobTypes`). */
export function jobTypeToProto(service: string, t: JobTypeDefinition<any, any>): JobType {
  return create(JobTypeSchema, {
    name: t.name,
    service,
    stages: [...t.stages],
    parameters: t.parameters.map((p) => ({ name: p.name, kind: KIND[p.kind], required: p.required ?? false, min: p.min ?? 0, max: p.max ?? 0, description: p.description ?? "" })),
    onInterrupt: POLICY[t.onInterrupt],
    description: t.description,
    targetRequired: t.targetRequired ?? false,
  });
}

const FINAL_STATES: ReadonlySet<JobState> = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

/** Whether a job has ended for good (Succeeded, Failed or Canceled): nothing of it runs any more. */
export function isFinalJobState(state: JobState): boolean {
  return FINAL_STATES.has(state);
}
