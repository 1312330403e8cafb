import { Code, codeName } from "./code";

/** One invalid field of a request, sent to clients as a `google.rpc.BadRequest.FieldViolation`. */
export interface FieldViolation {
  /** Path of the field in the request, e.g. `spec.memory_bytes` or `nics[0].l3_network_uuid`. */
  readonly field: string;
  readonly description: string;
}

export interface StratumErrorOptions {
  /** Stable machine-readable reason in UPPER_SNAKE, e.g. `VM_NOT_FOUND`; clients switch on it. */
  reason?: string;
  /** Ids of the resources involved, e.g. `{ vmUuid, hostUuid }`: sent as `ErrorInfo.metadata`. */
  resources?: Record<string, string>;
  /** Invalid input fields: sent as `google.rpc.BadRequest`. */
  violations?: readonly FieldViolation[];
  /** The underlying error. Kept for logs; never sent to clients. */
  cause?: unknown;
}

/** `ErrorInfo.domain` of every error Stratum raises. */
export const ERROR_DOMAIN = "stratum.io";

const REASON_PATTERN = /^[A-Z][A-Z0-9_]*$/;

/**
 * The one error type of Stratum. Every layer (domain, store, agent client, bus) raises it, the
 * gRPC adapter sends it as `google.rpc.Status` with `ErrorInfo` (+ `BadRequest`), and clients
 * turn the status back into a `StratumError`, so a caller two services away can still switch on
 * `code` and `reason` and read the resource ids. The message and the ids go to clients; the
 * `cause` (which may hold SQL or a stack) stays in the process for logs.
 */
export class StratumError extends Error {
  override readonly name = "StratumError";
  readonly code: Code;
  readonly reason: string;
  readonly resources: Readonly<Record<string, string>>;
  readonly violations: readonly FieldViolation[];

  constructor(code: Code, message: string, options: StratumErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    const reason = options.reason ?? codeName(code);
    this.reason = REASON_PATTERN.test(reason) ? reason : codeName(code);
    this.resources = Object.freeze({ ...options.resources });
    this.violations = Object.freeze([...(options.violations ?? [])]);
  }

  /**
   * Turns anything thrown into a StratumError. A StratumError passes through unchanged; an
   * AbortError becomes CANCELLED; everything else becomes INTERNAL with a generic message, so
   * internals (SQL, stack traces, hostnames) never reach a client — the original is the `cause`.
   */
  static from(reason: unknown, fallback: Code = Code.INTERNAL): StratumError {
    if (reason instanceof StratumError) return reason;
    if (reason instanceof Error && (reason.name === "AbortError" || reason.name === "TimeoutError")) {
      const code = reason.name === "TimeoutError" ? Code.DEADLINE_EXCEEDED : Code.CANCELLED;
      return new StratumError(code, reason.message || codeName(code), { cause: reason });
    }
    return new StratumError(fallback, "internal error", { reason: codeName(fallback), cause: reason });
  }

  /** Bad input: `INVALID_ARGUMENT` with one violation per field, named in the message too. */
  static invalidArgument(violations: readonly FieldViolation[], resources?: Record<string, string>): StratumError {
    const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
    return new StratumError(Code.INVALID_ARGUMENT, `invalid argument: ${summary}`, {
      reason: "INVALID_ARGUMENT",
      violations,
      ...(resources ? { resources } : {}),
    });
  }

  /** A resource that does not exist; `kind` is e.g. `vm`, giving reason `VM_NOT_FOUND`. */
  static notFound(kind: string, uuid: string): StratumError {
    return new StratumError(Code.NOT_FOUND, `${kind} ${uuid} not found`, {
      reason: `${kind.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_NOT_FOUND`,
      resources: { [`${kind}Uuid`]: uuid },
    });
  }
}

/** The message of anything thrown, for a log line or a `last_error` (never sent as an error). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
