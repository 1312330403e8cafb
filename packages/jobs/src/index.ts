export { JobExecutor, JOB_EXECUTION_TIMEOUT_MS } from "./executor";
export type { JobExecutorOptions } from "./executor";
export type { InterruptPolicy, JobContext, JobParameter, JobTypeDefinition } from "./job-type";
export { JobCanceledError, JobCancelFailedError, JobSupersededError } from "./errors";
export { isFinalJobState, jobTypeToProto } from "./job-types";
export { CheckpointBatcher } from "./checkpoints";
export type { CheckJobs, JobCheck } from "./checkpoints";
export { decodeReport, ensureReportStream, publishReport, ReportPublisher, reportSubject, REPORT_DEFAULTS } from "./report";
export type { FinalState, JobReport, ReportedError, ReportedProgress } from "./report";
