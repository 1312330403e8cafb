export { configFromEnv, ENV } from "./config";
export type { ServiceConfig } from "./config";
export { startService } from "./service";
export type { RunningService, ServiceContext, ServiceModule, ServiceParts } from "./service";
export { runMain } from "./main";
export { fromQueueError } from "./queue-errors";
