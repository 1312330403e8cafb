import { ChainTaskError, type ChainTaskErrorCode } from "@stratum/chain-task";
import { Code, StratumError } from "@stratum/core";

const CODES: Record<ChainTaskErrorCode, { code: Code; reason: string }> = {
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
  const { code, reason } = CODES[e.code];
  return new StratumError(code, e.message, { reason, resources: { signature: e.signature }, cause: e });
}
