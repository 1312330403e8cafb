import { ChainTaskError, type ChainTaskErrorCode } from "@stratum/chain-task";
import { Code, StratumError } from "@stratum/core";
import { postgresErrorToStratum } from "@stratum/db";
import { FlowError } from "@stratum/flow";

const QUEUE_CODES: Record<ChainTaskErrorCode, { code: Code; reason: string }> = {
  // The replica is stopping: the caller should retry, and will reach the new owner.
  CLOSED: { code: Code.UNAVAILABLE, reason: "REPLICA_STOPPING" },
  QUEUE_FULL: { code: Code.RESOURCE_EXHAUSTED, reason: "TOO_MANY_PENDING_OPERATIONS" },
  PENDING_TIMEOUT: { code: Code.UNAVAILABLE, reason: "OPERATION_QUEUE_TIMEOUT" },
  EXECUTION_TIMEOUT: { code: Code.DEADLINE_EXCEEDED, reason: "OPERATION_TIMEOUT" },
  CANCELLED: { code: Code.CANCELLED, reason: "CANCELLED" },
};

/**
 * Turns a chain-task queue refusal into the StratumError a client can act on (otherwise it would
 * reach the client as a bare INTERNAL), naming the resource's signature; anything else passes.
 */
export function fromQueueError(e: unknown): unknown {
  if (!(e instanceof ChainTaskError)) return e;
  const { code, reason } = QUEUE_CODES[e.code];
  return new StratumError(code, e.message, { reason, resources: { signature: e.signature }, cause: e });
}

/**
 * The one place where the kit's own error types become what a client sees, applied to every
 * error a handler throws (the serving chain's outermost domain step), so no handler or domain
 * flow converts them by hand:
 * - a StratumError passes unchanged;
 * - a chain-task refusal gets its code and reason (see {@link fromQueueError});
 * - a failed flow is the error of the step that failed (its message names it), converted in turn;
 * - a Postgres error is mapped by `@stratum/db` (a lost connection is UNAVAILABLE
 *   `POSTGRES_UNAVAILABLE`, a constraint its reason), never INTERNAL with SQL in it;
 * - anything else is left for the transport, which answers INTERNAL and logs the cause.
 */
export function toStratumError(e: unknown): unknown {
  // First: a Postgres error may hide inside an INTERNAL StratumError a domain wrapped it in.
  const pg = postgresErrorToStratum(e);
  if (pg) return pg;
  if (e instanceof StratumError) return e;
  if (e instanceof ChainTaskError) return fromQueueError(e);
  if (e instanceof FlowError) {
    const inner = toStratumError(e.cause);
    return inner instanceof StratumError ? inner : e;
  }
  return e;
}
