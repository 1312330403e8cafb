export { ChainTaskQueue } from "./chain-task-queue";
export { ChainTaskError, isChainTaskError } from "./errors";
export type { ChainTaskErrorCode, ChainTaskErrorDetails } from "./errors";
export {
  DEFAULT_EXECUTION_TIMEOUT_MS,
  DEFAULT_MAX_PENDING,
  DEFAULT_PENDING_TIMEOUT_MS,
  DEFAULT_SYNC_LEVEL,
} from "./defaults";
export type {
  ChainTask,
  ChainTaskObserver,
  ChainTaskQueueOptions,
  SignatureSnapshot,
  SubmitOptions,
  TaskContext,
  TaskEndInfo,
  TaskOutcome,
  TaskSnapshot,
  TaskStartInfo,
  TaskState,
} from "./types";
