export { computeModule, COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./module";
export type { ComputeOptions } from "./module";
export { uuidForRequest } from "./domain/ids";
