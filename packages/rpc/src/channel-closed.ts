/**
 * A call on a client whose channel is closed. grpc-js throws a plain `Error("Channel has been
 * shut down")` from wherever a call is started on it — a caller's stack, or a retry timer, where
 * nothing can catch it and the process dies. Stratum turns it into an answer for that one call.
 */
import { Code, StratumError } from "@stratum/core";

/** Reason of the UNAVAILABLE error of a call made (or retried) on a closed client. */
export const CHANNEL_CLOSED = "CHANNEL_CLOSED";

/** What grpc-js throws when a call is started on a closed channel. */
export function isChannelShutDown(err: unknown): boolean {
  return err instanceof Error && err.message === "Channel has been shut down";
}

/**
 * The error a call on a closed client fails with. UNAVAILABLE because nothing was sent: a caller
 * that re-resolves its target (a router picking the resource's new owner) may try again.
 */
export function channelClosedError(method: string, cause?: unknown): StratumError {
  return new StratumError(Code.UNAVAILABLE, `call ${method} on a closed client`, { reason: CHANNEL_CLOSED, ...(cause === undefined ? {} : { cause }) });
}
