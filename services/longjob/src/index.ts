export { longjobModule } from "./module";
export { LONGJOB_ENV, DEFAULT_JOB_RETENTION_MS } from "./config";
export { JOB_TRANSITIONS, FINAL_STATES, ACTIVE_STATES } from "./domain/job-state";
export { noopJob, sleepJob } from "./domain/builtin-types";
