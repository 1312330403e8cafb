/**
 * Server interceptors: the one place where a concern that applies to every call (logging,
 * metrics, validation, routing to the owner, fencing, auth, tracing) is written, once, instead
 * of in every handler. The shape is connect-es': an interceptor takes the next step and returns
 * a step, so a chain is plain function composition and each interceptor sees the call before
 * and the outcome after the ones inside it.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { HandlerContext } from "./context";

/** One call, as the interceptors and finally the handler see it. */
export interface ServerCall {
  readonly service: DescService;
  readonly method: DescMethod;
  /**
   * The decoded, checked request message (unary and server-streaming calls) or the stream of
   * them (client-streaming and bidi). An interceptor may pass a *different* request on (a
   * normalized copy); it never mutates this one.
   */
  readonly request: unknown;
  readonly ctx: HandlerContext;
}

/**
 * Produces the call's outcome: the response (a message or its init shape) for unary and
 * client-streaming methods, an `AsyncIterable` of responses for server-streaming and bidi ones.
 * A failure is a thrown (or rejected) error, usually a StratumError.
 */
export type ServerNext = (call: ServerCall) => unknown;

/** Wraps the next step of the chain. */
export type ServerInterceptor = (next: ServerNext) => ServerNext;

/**
 * Composes interceptors around `last`. The first interceptor of the list is the outermost: it
 * sees the call first and the outcome last.
 */
export function chainInterceptors(interceptors: readonly ServerInterceptor[], last: ServerNext): ServerNext {
  let next = last;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}

/** True for methods whose outcome is a stream of responses. */
export function streamsResponses(method: DescMethod): boolean {
  return method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
}

/**
 * Runs `onEnd` once when the call's outcome is settled: at once for a unary outcome, when the
 * stream ends, fails or is abandoned for a streaming one. `onEnd` gets the error, or undefined
 * on success. The outcome itself passes through unchanged. For metrics and logging interceptors.
 */
export function observeOutcome(method: DescMethod, outcome: () => unknown, onEnd: (error: unknown) => void): unknown {
  if (!streamsResponses(method)) {
    let result: unknown;
    try {
      result = outcome();
    } catch (e) {
      onEnd(e);
      throw e;
    }
    return Promise.resolve(result).then(
      (value) => {
        onEnd(undefined);
        return value;
      },
      (e: unknown) => {
        onEnd(e);
        throw e;
      },
    );
  }
  return (async function* () {
    let error: unknown;
    try {
      yield* (await outcome()) as AsyncIterable<unknown>;
    } catch (e) {
      error = e;
      throw e;
    } finally {
      onEnd(error);
    }
  })();
}
