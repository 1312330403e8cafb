/**
 * What a handler knows about the call it serves, and what a downstream call inherits from it.
 */
import { randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { Metadata } from "@grpc/grpc-js";
import type { Logger } from "@stratum/core";

/** Metadata key of the request id that ties together the log lines of one request across services. */
export const REQUEST_ID_KEY = "x-request-id";

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The caller's request id if it is a sane token, else a fresh one. Ids from the wire go into every
 * log line, so anything long or with odd characters is replaced rather than trusted.
 */
export function requestIdFrom(metadata: Metadata | undefined): string {
  const value = metadata?.get(REQUEST_ID_KEY)[0];
  return typeof value === "string" && REQUEST_ID_PATTERN.test(value) ? value : randomUUID();
}

/**
 * The part of a call that a downstream call inherits: its deadline (so a chain of calls never
 * outlives the original caller's patience), its cancellation, and its request id (so the logs of
 * every hop can be joined). A `HandlerContext` is one; a long job can build its own.
 */
export interface CallParent {
  readonly deadline?: Date | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly requestId?: string | undefined;
}

/** Passed to every handler. Pass it on as `{ parent: ctx }` to the clients a handler calls. */
export interface HandlerContext extends CallParent {
  readonly service: DescService;
  readonly method: DescMethod;
  /** From `x-request-id` metadata, or generated; in every log line of `log` and sent back in trailers. */
  readonly requestId: string;
  /** Request metadata (headers), minus the transport's own (`grpc-timeout`, `content-type`…). */
  readonly metadata: Metadata;
  /** Absolute deadline of the call; undefined when the client set none. */
  readonly deadline: Date | undefined;
  /**
   * Aborted when the client cancels, the deadline passes or the server is force-stopped; the
   * reason is a StratumError (CANCELLED or DEADLINE_EXCEEDED). Pass it to anything that waits.
   */
  readonly signal: AbortSignal;
  /** The client's address, e.g. `ipv4:127.0.0.1:53412`. */
  readonly peer: string;
  /** Logger that already names service, method and request id. */
  readonly log: Logger;
  /** Trailing metadata sent with the response (success or error). */
  readonly trailers: Metadata;
  /** Milliseconds left before the deadline (may be negative); undefined without a deadline. */
  timeRemaining(): number | undefined;
}

/** The earliest of several optional deadlines. */
export function earliest(...deadlines: (Date | number | undefined)[]): Date | undefined {
  let min = Infinity;
  for (const d of deadlines) {
    if (d === undefined) continue;
    const ms = d instanceof Date ? d.getTime() : d;
    if (ms < min) min = ms;
  }
  return Number.isFinite(min) ? new Date(min) : undefined;
}
