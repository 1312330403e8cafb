/**
 * Typed service implementations: the handler signatures derived from a protobuf-es service
 * descriptor, so a handler that returns the wrong message or forgets a method does not compile.
 */
import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "./context";

/** Unary: one request, one response. May return a message or a plain initializer object. */
export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/** Server streaming: yield responses (`async function*`); returning ends the stream with OK. */
export type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: HandlerContext,
) => AsyncIterable<MessageInitShape<O>>;

/** Client streaming: consume the requests, return one response. */
export type ClientStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext,
) => Promise<MessageInitShape<O>>;

/** Bidirectional streaming: consume requests and yield responses, at any pace. */
export type BidiStreamingImpl<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: HandlerContext,
) => AsyncIterable<MessageInitShape<O>>;

/** The handler type for one method of a generated service. */
export type MethodImpl<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? UnaryImpl<I, O>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreamingImpl<I, O>
    : M extends { methodKind: "client_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? ClientStreamingImpl<I, O>
      : M extends { methodKind: "bidi_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
        ? BidiStreamingImpl<I, O>
        : never;

/** Handlers for every method of service `S`, keyed by the methods' local (lowerCamel) names. */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: MethodImpl<S["method"][K]> };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyImpl = (input: any, ctx: HandlerContext) => unknown;

/** A service descriptor paired with its handlers, ready for `createServer({ services })`. */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly impl: Readonly<Record<string, AnyImpl>>;
}

/**
 * Pairs a service with its implementation. A function (not an object literal) so that TypeScript
 * checks `impl` against `service`'s methods.
 */
export function implement<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  const handlers = impl as unknown as Record<string, AnyImpl>;
  for (const method of service.methods) {
    if (typeof handlers[method.localName] !== "function") {
      throw new TypeError(`${service.typeName}: no handler for method ${method.name} (expected impl.${method.localName})`);
    }
  }
  return { service, impl: handlers };
}
