export { computeModule } from "./module";
export type { ComputeOptions } from "./module";
export { uuidForRequest } from "./domain/ids";
