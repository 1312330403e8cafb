export { Code, codeName } from "./code";
export { StratumError, ERROR_DOMAIN } from "./errors";
export type { FieldViolation, StratumErrorOptions } from "./errors";
