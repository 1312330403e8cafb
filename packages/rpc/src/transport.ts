/**
 * Telling "the server could not be reached" from "the server answered UNAVAILABLE". Both are
 * UNAVAILABLE, but only a server's answer carries its `google.rpc.Status` (every Stratum server
 * sends one); grpc-js's own failures (connection refused, reset, GOAWAY, a closed channel)
 * do not. A replica forwarding a call needs the difference: its own callers must hear that the
 * owner is unreachable, not a transport message naming the owner's address.
 */
import { Code, StratumError } from "@stratum/core";
import { CHANNEL_CLOSED } from "./channel-closed";
import { STATUS_DETAILS_KEY } from "./status";

/** True when `err` is an UNAVAILABLE that no server sent: the peer was not reached (or lost). */
export function isTransportUnavailable(err: unknown): boolean {
  if (!(err instanceof StratumError) || err.code !== Code.UNAVAILABLE) return false;
  if (err.reason === CHANNEL_CLOSED) return true;
  const cause = err.cause as { code?: unknown; metadata?: { get(key: string): unknown[] } } | undefined;
  if (typeof cause?.code !== "number") return false;
  return (cause.metadata?.get(STATUS_DETAILS_KEY).length ?? 0) === 0;
}
