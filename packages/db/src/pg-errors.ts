import { Code, codeName, StratumError, type FieldViolation } from "@stratum/core";

/** What a constraint means in the domain: `eip_vip_uq` → `EIP_VIP_IN_USE`. */
export interface ConstraintRule {
  /** Stable UPPER_SNAKE reason clients switch on. */
  reason: string;
  /** Client-facing message; must not contain SQL. Defaults to the generic one of the SQLSTATE. */
  message?: string;
  /** Overrides the code of the SQLSTATE, e.g. a foreign key on create meaning `NOT_FOUND`. */
  code?: Code;
  /** The request field at fault: sent as a `BadRequest` violation when the code is INVALID_ARGUMENT. */
  field?: string;
}

export interface PgErrorContext {
  /** What was being done, prefixed to the message: `create vm` → `create vm: already exists`. */
  operation?: string;
  /** Ids of the resources involved, sent as `ErrorInfo.metadata`. */
  resources?: Record<string, string>;
  /** Constraint name → its meaning, for unique/foreign key/check/exclusion violations. */
  constraints?: Record<string, ConstraintRule>;
}

/** The fields of a postgres-js `PostgresError` that mapping reads. */
export interface PgErrorFields {
  readonly code: string;
  readonly message: string;
  readonly constraint_name?: string;
  readonly column_name?: string;
  readonly table_name?: string;
  readonly schema_name?: string;
}

interface Mapping {
  code: Code;
  reason: string;
  message: string;
}

/** The UNAVAILABLE reason for a database that cannot be reached or is shutting down. */
export const POSTGRES_UNAVAILABLE = "POSTGRES_UNAVAILABLE";

const UNAVAILABLE: Mapping = { code: Code.UNAVAILABLE, reason: POSTGRES_UNAVAILABLE, message: "the database is unavailable" };

const BY_SQLSTATE: Readonly<Record<string, Mapping>> = {
  "23505": { code: Code.ALREADY_EXISTS, reason: "ALREADY_EXISTS", message: "already exists" },
  "23503": {
    code: Code.FAILED_PRECONDITION,
    reason: "FAILED_PRECONDITION",
    message: "a referenced resource does not exist, or the resource is still in use",
  },
  "23P01": { code: Code.FAILED_PRECONDITION, reason: "FAILED_PRECONDITION", message: "conflicts with an existing resource" },
  "23514": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a value is outside its allowed range" },
  "23502": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a required value is missing" },
  "22P02": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a value has an invalid format" },
  "22003": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a number is out of range" },
  "22001": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a value is too long" },
  "22007": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a date or time has an invalid format" },
  "22008": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a date or time is out of range" },
  "22021": { code: Code.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT", message: "a value contains invalid characters" },
  "40001": {
    code: Code.ABORTED,
    reason: "SERIALIZATION_FAILURE",
    message: "the operation conflicted with a concurrent one; retry it",
  },
  "40P01": { code: Code.ABORTED, reason: "DEADLOCK_DETECTED", message: "the operation conflicted with a concurrent one; retry it" },
  "55P03": { code: Code.ABORTED, reason: "LOCK_NOT_AVAILABLE", message: "the resource is locked by a concurrent operation; retry it" },
  "57014": { code: Code.DEADLINE_EXCEEDED, reason: "STATEMENT_TIMEOUT", message: "the database operation timed out" },
  // The server is shutting down, crashed, is starting, or is a read-only standby after failover.
  "57P01": UNAVAILABLE,
  "57P02": UNAVAILABLE,
  "57P03": UNAVAILABLE,
  "25006": UNAVAILABLE,
};

/** Node socket errors and postgres-js connection errors: the database is not reachable. */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** How many errors {@link causeChain} looks at: enough for any real wrapping, bounded for cycles. */
const MAX_CHAIN = 16;

/**
 * `e`, then what it wraps, depth first: `cause` links (drizzle wraps the driver's error in a
 * `DrizzleQueryError` whose message is the SQL and its parameters, with the `PostgresError` as
 * `cause`; a flow or a StratumError may wrap that again) and the members of an `AggregateError`
 * (Node's happy-eyeballs connect to `localhost` fails with one error per address tried).
 */
function* causeChain(e: unknown): Generator<unknown> {
  const seen = new Set<unknown>();
  const stack: unknown[] = [e];
  while (stack.length > 0 && seen.size < MAX_CHAIN) {
    const current = stack.pop();
    if (current === undefined || current === null || seen.has(current)) continue;
    seen.add(current);
    yield current;
    if (typeof current !== "object") continue;
    const cause = (current as { cause?: unknown }).cause;
    if (cause !== undefined) stack.push(cause);
    if (current instanceof AggregateError && Array.isArray(current.errors)) stack.push(...[...current.errors].reverse());
  }
}

/**
 * The Postgres server error in `e` or its causes, recognised by shape (a 5-character SQLSTATE and
 * a severity) rather than `instanceof`, so two copies of the driver in node_modules still match.
 */
export function findPgError(e: unknown): PgErrorFields | undefined {
  for (const err of causeChain(e)) {
    const code = codeOf(err);
    if (code && /^[0-9A-Z]{5}$/.test(code) && ("severity" in (err as object) || (err as Error).name === "PostgresError")) {
      return err as PgErrorFields;
    }
  }
  return undefined;
}

/** The SQLSTATE of `e` (looking through wrappers), e.g. `23505`. */
export function pgErrorCode(e: unknown): string | undefined {
  return findPgError(e)?.code;
}

/**
 * True when `e` means the database could not be reached or dropped the connection: socket
 * errors, postgres-js `CONNECTION_*`, SQLSTATE class 08, shutdown/startup (57P0x), too many
 * connections (53300).
 */
export function isConnectionError(e: unknown): boolean {
  for (const err of causeChain(e)) {
    const code = codeOf(err);
    if (!code) continue;
    if (CONNECTION_ERROR_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith("08") || code === "53300" || code === "57P01" || code === "57P02" || code === "57P03")) {
      return true;
    }
  }
  return false;
}

/**
 * `host:port` of the server a connection error was about, when the error says (Node socket
 * errors and postgres-js `CONNECTION_*` errors carry `address` and `port`; postgres-js gives
 * arrays for a multi-host URL, whose first entry is named). A server-sent error does not know.
 */
export function connectionTarget(e: unknown): string | undefined {
  for (const err of causeChain(e)) {
    const { address, port } = err as { address?: unknown; port?: unknown };
    const host = Array.isArray(address) ? address[0] : address;
    const p = Array.isArray(port) ? port[0] : port;
    if (typeof host === "string" && host !== "" && (typeof p === "number" || typeof p === "string")) {
      return `${host.includes(":") ? `[${host}]` : host}:${p}`;
    }
  }
  return undefined;
}

/** True for the errors a transaction can simply be run again after: 40001 and 40P01. */
export function isRetryableTransactionError(e: unknown): boolean {
  const code = pgErrorCode(e);
  return code === "40001" || code === "40P01";
}

/**
 * Turns a database error into the StratumError a client may see:
 * unique → ALREADY_EXISTS, foreign key → FAILED_PRECONDITION, check / bad text / out of range →
 * INVALID_ARGUMENT, serialization failure / deadlock → ABORTED (retryable), unreachable or
 * shutting down → UNAVAILABLE `POSTGRES_UNAVAILABLE`, anything else → INTERNAL.
 *
 * The message is built from the context and the SQLSTATE only: the driver's text and drizzle's
 * (which embeds the SQL and its parameters) never reach it. The Postgres error stays as `cause`
 * for logs. A StratumError passes through unchanged, so wrapping twice is harmless.
 */
export function mapPgError(e: unknown, context: PgErrorContext = {}): StratumError {
  if (e instanceof StratumError) return e;
  const pg = findPgError(e);
  let mapping: Mapping;
  let field: string | undefined;
  if (pg) {
    mapping = BY_SQLSTATE[pg.code] ??
      (pg.code.startsWith("08") || pg.code.startsWith("53") ? UNAVAILABLE : undefined) ?? {
        code: Code.INTERNAL,
        reason: codeName(Code.INTERNAL),
        message: "internal error",
      };
    const rule = pg.constraint_name ? context.constraints?.[pg.constraint_name] : undefined;
    if (rule) {
      mapping = { code: rule.code ?? mapping.code, reason: rule.reason, message: rule.message ?? mapping.message };
      field = rule.field;
    }
  } else if (isConnectionError(e)) {
    mapping = UNAVAILABLE;
  } else {
    const fallback = StratumError.from(e);
    mapping = { code: fallback.code, reason: fallback.reason, message: fallback.message };
  }
  if (mapping === UNAVAILABLE) mapping = { ...UNAVAILABLE, message: describeUnavailable(e) };
  const message = context.operation ? `${context.operation}: ${mapping.message}` : mapping.message;
  const violations: FieldViolation[] | undefined =
    field && mapping.code === Code.INVALID_ARGUMENT ? [{ field, description: mapping.message }] : undefined;
  return new StratumError(mapping.code, message, {
    reason: mapping.reason,
    cause: pg ?? connectionCause(e) ?? e,
    ...(context.resources ? { resources: context.resources } : {}),
    ...(violations ? { violations } : {}),
  });
}

/**
 * "the database at 127.0.0.1:5432 is unavailable (ECONNREFUSED)": where, when the error knows,
 * and the code an operator can search for; never the driver's text, which may hold SQL.
 */
function describeUnavailable(e: unknown): string {
  const target = connectionTarget(e);
  const code = findPgError(e)?.code ?? codeOf(connectionCause(e));
  return `the database${target ? ` at ${target}` : ""} is unavailable${code ? ` (${code})` : ""}`;
}

function connectionCause(e: unknown): unknown {
  for (const err of causeChain(e)) if (codeOf(err)) return err;
  return undefined;
}

/**
 * Runs `fn` and rethrows any failure as {@link mapPgError} would map it: the one line a
 * repository method needs so no driver error (or SQL text) escapes the store layer.
 */
export async function withPgErrors<T>(fn: () => Promise<T>, context: PgErrorContext = {}): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapPgError(e, context);
  }
}
