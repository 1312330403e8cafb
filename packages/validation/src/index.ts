/**
 * @stratum/validation: what every Stratum service validates its requests with.
 *
 * - The limits of a request are declared once, in its proto, as standard protovalidate rules
 *   (`buf.validate` annotations); `validateMessage` / `validationInterceptor` enforce them and
 *   report `FieldViolation`s worded like the hand-written checks.
 * - Hand-written checks for what a rule cannot say well (see README), worded the same way.
 * - Idempotency UUIDs derived from client request ids, and page tokens bound to their filters.
 */
export { PATTERN_DESCRIPTIONS, assertValid, formatPath, precompileRules, requestValidator, sharedValidator, validateMessage } from "./protovalidate";
export type { RequestValidator, RequestValidatorOptions } from "./protovalidate";
export { validationInterceptor } from "./interceptor";
export { MAX_NAME, MAX_REQUEST_ID, MIB, REQUEST_ID_PATTERN, enumField, nameField, pageSizeField, requestIdField, uuidField } from "./fields";
export { UUID_PATTERN, resourceUuid, uuidForRequest } from "./ids";
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, canonicalJson, decodePageToken, encodePageToken, pageSize, pageTokenField } from "./page-token";
export type { FilterValue, PageFilters } from "./page-token";
