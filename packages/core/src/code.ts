/**
 * gRPC status codes. Duplicated from grpc-js' `status` enum so that packages which only need to
 * raise or inspect errors (db, agent client, domain code) do not depend on a transport.
 * The numeric values are the wire values and must never change.
 */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** The canonical UPPER_SNAKE name of a code, as used in `google.rpc.Status` documentation. */
export function codeName(code: Code): string {
  return Code[code] ?? `CODE_${code}`;
}
