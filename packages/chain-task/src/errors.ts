/**
 * Why a chain task failed for a reason of the queue rather than of the task itself.
 *
 * - `PENDING_TIMEOUT`: it waited longer than its pending timeout and never ran.
 * - `EXECUTION_TIMEOUT`: it ran longer than its execution timeout; its slot was freed and its
 *   `ctx.signal` aborted, but the task's code may still be running (the queue cannot kill it).
 * - `QUEUE_FULL`: its signature already had `maxPending` tasks waiting; it was never queued.
 * - `CANCELLED`: the submitter's `AbortSignal` fired while the task was still pending.
 * - `CLOSED`: the queue was closed before the task started.
 */
export type ChainTaskErrorCode = "PENDING_TIMEOUT" | "EXECUTION_TIMEOUT" | "QUEUE_FULL" | "CANCELLED" | "CLOSED";

/** What a {@link ChainTaskError} is about, beyond its code. */
export interface ChainTaskErrorDetails {
  /** Sync signature of the task (`vm-<uuid>`, …). */
  readonly signature: string;
  /** Name of the task, as given in the task. */
  readonly taskName: string;
  /** The bound that was hit: milliseconds for timeouts, a task count for `QUEUE_FULL`. */
  readonly limit?: number;
  /** The underlying reason, e.g. the submitter's `signal.reason` for `CANCELLED`. */
  readonly cause?: unknown;
}

/**
 * The one error type the queue itself produces. Callers branch on {@link ChainTaskError.code}
 * (stable strings, safe to put on the wire) instead of parsing messages; the message still names
 * the task and signature because it is what ends up in logs.
 */
export class ChainTaskError extends Error {
  readonly code: ChainTaskErrorCode;
  readonly signature: string;
  readonly taskName: string;
  /** Milliseconds for timeouts, task count for `QUEUE_FULL`, undefined otherwise. */
  readonly limit: number | undefined;

  constructor(code: ChainTaskErrorCode, message: string, details: ChainTaskErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.signature = details.signature;
    this.taskName = details.taskName;
    this.limit = details.limit;
  }
}
// On the prototype rather than per instance: errors are rare, but there is no reason to pay twice.
Object.defineProperty(ChainTaskError.prototype, "name", { value: "ChainTaskError", writable: true, configurable: true });

/** True when `error` is a {@link ChainTaskError}, optionally with the given code. */
export function isChainTaskError(error: unknown, code?: ChainTaskErrorCode): error is ChainTaskError {
  return error instanceof ChainTaskError && (code === undefined || error.code === code);
}

/** @internal Builders keep the wording of messages in one place. */
export function pendingTimeoutError(signature: string, taskName: string, limitMs: number): ChainTaskError {
  return new ChainTaskError(
    "PENDING_TIMEOUT",
    `chain task "${taskName}" on "${signature}" waited ${limitMs} ms without starting (pending timeout)`,
    { signature, taskName, limit: limitMs },
  );
}

/** @internal */
export function executionTimeoutError(signature: string, taskName: string, limitMs: number): ChainTaskError {
  return new ChainTaskError(
    "EXECUTION_TIMEOUT",
    `chain task "${taskName}" on "${signature}" did not finish within ${limitMs} ms (execution timeout); ` +
      "its slot was freed and its signal aborted",
    { signature, taskName, limit: limitMs },
  );
}

/** @internal */
export function queueFullError(signature: string, taskName: string, maxPending: number): ChainTaskError {
  return new ChainTaskError(
    "QUEUE_FULL",
    `chain task "${taskName}" rejected: signature "${signature}" already has ${maxPending} pending task(s) ` +
      `(maxPending ${maxPending})`,
    { signature, taskName, limit: maxPending },
  );
}

/** @internal */
export function cancelledError(signature: string, taskName: string, cause: unknown): ChainTaskError {
  return new ChainTaskError(
    "CANCELLED",
    `chain task "${taskName}" on "${signature}" was cancelled before it started`,
    { signature, taskName, cause },
  );
}

/** @internal */
export function closedError(signature: string, taskName: string): ChainTaskError {
  return new ChainTaskError(
    "CLOSED",
    `chain task "${taskName}" on "${signature}" rejected: the chain-task queue is closed`,
    { signature, taskName },
  );
}
