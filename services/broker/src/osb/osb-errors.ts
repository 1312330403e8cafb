import { Code, StratumError } from "@stratum/core";

/** An OSB error answer: the status, and the body the spec gives it (`error` is one of its codes, when it names one). */
export class OsbError extends Error {
  constructor(
    readonly status: number,
    readonly description: string,
    readonly error?: "AsyncRequired" | "ConcurrencyError" | "MaintenanceInfoConflict",
  ) {
    super(description);
  }

  body(): Record<string, string> {
    return { ...(this.error ? { error: this.error } : {}), description: this.description };
  }
}

/**
 * The OSB status of a domain error: the broker's domain speaks StratumError like every Stratum
 * service, and this is its one translation to the spec's codes.
 */
export function osbErrorOf(e: unknown): OsbError {
  if (e instanceof OsbError) return e;
  const err = StratumError.from(e);
  switch (err.code) {
    case Code.INVALID_ARGUMENT:
      return new OsbError(400, err.message);
    case Code.NOT_FOUND:
      return new OsbError(404, err.message);
    case Code.ALREADY_EXISTS:
      return new OsbError(409, err.message);
    case Code.FAILED_PRECONDITION:
      return err.reason === "INSTANCE_BUSY" ? new OsbError(422, err.message, "ConcurrencyError") : new OsbError(422, err.message);
    case Code.UNAUTHENTICATED:
      return new OsbError(401, err.message);
    case Code.UNAVAILABLE:
    case Code.RESOURCE_EXHAUSTED:
    case Code.DEADLINE_EXCEEDED:
      return new OsbError(503, err.message);
    default:
      return new OsbError(500, err.message);
  }
}
