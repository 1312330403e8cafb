export { computeModule } from "./module";
export { COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./config";
