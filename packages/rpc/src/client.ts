/**
 * Typed grpc-js clients for protobuf-es services: promises for unary calls, async iterables for
 * streams, StratumError for every failure, deadline and cancellation inherited from a parent
 * call, and retries of UNAVAILABLE on idempotent methods — and, with `retry: { mutating: true }`,
 * on methods whose request has a `client_request_id`, every attempt with the same id.
 *
 * A call on a closed client (or one whose retry finds it closed) fails with UNAVAILABLE
 * `CHANNEL_CLOSED`, never a thrown grpc-js error.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape, type Message } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { deserializer, serializer } from "./codec";
import { Code, currentWork, StratumError } from "@stratum/core";
import { REQUEST_ID_KEY, earliest, type CallParent } from "./context";
import { channelClosedError, isChannelShutDown } from "./channel-closed";
import { clientRequestIdField, createRetryInterceptor, type RetryInterceptorOptions } from "./retry";
import { errorFromServiceError } from "./status";

export interface CallOptions {
  /** Request metadata (headers). */
  metadata?: grpc.Metadata | Readonly<Record<string, string>>;
  /** Relative deadline. */
  timeoutMs?: number;
  /** Absolute deadline. The earliest of `deadline`, `timeoutMs`, the client default and the parent's wins. */
  deadline?: Date;
  /** Cancels the call (it fails with CANCELLED). */
  signal?: AbortSignal;
  /**
   * The call this one is made on behalf of, usually the handler's `ctx`: this call then ends no
   * later than the parent's deadline, is cancelled with it, and carries its request id.
   */
  parent?: CallParent;
}

export interface ClientOptions {
  /** Default: insecure (plain-text HTTP/2). Ignored when a Channel is given. */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options (`grpc.max_receive_message_length`, keepalive…). Ignored when a Channel is given. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Retry policy for UNAVAILABLE on idempotent methods, or `false` for none. Default:
   * `DEFAULT_RETRY_POLICY`. With `mutating: true`, methods whose request has a
   * `client_request_id` are retried too, and a request that leaves it empty gets a fresh UUID
   * once, before its first attempt, so every attempt (and the server's deduplication) sees the
   * same id. Meant for clients outside the service (the CLI, SDKs) that call compute's mutating
   * RPCs and must survive a replica dying under them.
   */
  retry?: RetryInterceptorOptions | false;
  /** More grpc-js interceptors, run outside the retry interceptor (once per logical call). */
  interceptors?: grpc.Interceptor[];
  /** Deadline for unary and client-streaming calls that set none. Streams are often long-lived, so they get none. */
  defaultTimeoutMs?: number;
}

export type ClientMethod<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : M extends { methodKind: "client_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => Promise<MessageShape<O>>
      : M extends { methodKind: "bidi_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
        ? (requests: AsyncIterable<MessageInitShape<I>>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
        : never;

/** One method per RPC of `S`, keyed by local (lowerCamel) name. */
export type Client<S extends DescService> = { readonly [K in keyof S["method"]]: ClientMethod<S["method"][K]> };

interface Prepared {
  metadata: grpc.Metadata;
  options: grpc.CallOptions;
  signals: AbortSignal[];
}

function prepare(opts: CallOptions, defaultTimeoutMs: number | undefined): Prepared {
  const metadata = opts.metadata instanceof grpc.Metadata ? opts.metadata.clone() : new grpc.Metadata();
  if (opts.metadata && !(opts.metadata instanceof grpc.Metadata)) {
    for (const [key, value] of Object.entries(opts.metadata)) metadata.set(key, value);
  }
  const parent = opts.parent;
  // The request this call serves: its parent's, else the current work's (a call made from a
  // queued task or a job carries the id of the request that caused it).
  const requestId = parent?.requestId ?? currentWork()?.requestId;
  if (requestId && metadata.get(REQUEST_ID_KEY).length === 0) metadata.set(REQUEST_ID_KEY, requestId);
  const now = Date.now();
  // NaN would silently mean "no deadline" (it loses every comparison): refuse it instead.
  if (opts.timeoutMs !== undefined && !(opts.timeoutMs >= 0)) throw new RangeError(`timeoutMs must be a number >= 0, got ${opts.timeoutMs}`);
  if (opts.deadline !== undefined && Number.isNaN(opts.deadline.getTime())) throw new RangeError("deadline must be a valid Date");
  const timeout = opts.timeoutMs ?? (opts.deadline || parent?.deadline ? undefined : defaultTimeoutMs);
  const deadline = earliest(opts.deadline, timeout === undefined ? undefined : now + timeout, parent?.deadline);
  const signals = [opts.signal, parent?.signal].filter((s): s is AbortSignal => s !== undefined);
  return { metadata, options: deadline ? { deadline } : {}, signals };
}

/** Calls `cancel` when any signal aborts; returns the function that stops listening. */
function onAbort(signals: readonly AbortSignal[], cancel: () => void): () => void {
  for (const s of signals) s.addEventListener("abort", cancel, { once: true });
  return () => {
    for (const s of signals) s.removeEventListener("abort", cancel);
  };
}

/** The error for a call whose signal was already aborted: the abort reason if it is a StratumError (e.g. the parent's DEADLINE_EXCEEDED). */
function abortedBeforeStart(signals: readonly AbortSignal[]): StratumError | undefined {
  const signal = signals.find((s) => s.aborted);
  if (!signal) return undefined;
  if (signal.reason instanceof StratumError) return signal.reason;
  return new StratumError(Code.CANCELLED, "call cancelled before it started", { cause: signal.reason });
}

function waitForDrain(stream: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** Streams `requests` into a client-streaming or bidi call, with backpressure, then half-closes. */
async function pump(call: grpc.ClientWritableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, input: DescMessage, requests: AsyncIterable<unknown>): Promise<void> {
  try {
    for await (const request of requests) {
      if (call.destroyed || call.writableEnded) return;
      if (!call.write(create(input, request as never))) await waitForDrain(call);
    }
    call.end();
  } catch (err) {
    // The request source failed: abandon the call rather than send a truncated stream as complete.
    call.cancel();
    throw err;
  }
}

/** Iterates a call's responses, mapping its failure to StratumError and cancelling it if the consumer stops early. */
async function* responses<T>(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, detach: () => void): AsyncGenerator<T> {
  // The iterator reports errors; this listener only keeps a late 'error' from being unhandled.
  call.on("error", () => {});
  let finished = false;
  try {
    for await (const message of call) yield message as T;
    finished = true;
  } catch (err) {
    finished = true;
    throw errorFromServiceError(err);
  } finally {
    detach();
    if (!finished) call.cancel();
  }
}

/** Per stub: its grpc-js client, whether it made its channel, and whether `closeClient` closed it. */
interface Owner {
  client: grpc.Client;
  ownsChannel: boolean;
  closed: boolean;
}

const owners = new WeakMap<object, Owner>();

/**
 * A typed client for `service` at `target` (`host:port`, or any grpc-js target such as
 * `dns:///compute:7000`), or over an existing Channel shared by several clients.
 */
export function createClient<S extends DescService>(service: S, target: string | grpc.Channel, options: ClientOptions = {}): Client<S> {
  const interceptors = [...(options.interceptors ?? [])];
  if (options.retry !== false) interceptors.push(createRetryInterceptor(service, options.retry ?? {}));
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  const client =
    typeof target === "string"
      ? new grpc.Client(target, credentials, { ...options.channelOptions, interceptors })
      : new grpc.Client("unused", credentials, { channelOverride: target, interceptors });

  const owner: Owner = { client, ownsChannel: typeof target === "string", closed: false };
  const fillRequestId = options.retry !== false && options.retry?.mutating === true;
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) methods[method.localName] = clientMethod(owner, service, method, options.defaultTimeoutMs, fillRequestId);
  const stub = Object.freeze(methods) as Client<S>;
  owners.set(stub, owner);
  return stub;
}

/** Closes the channel a client created for itself (a Channel passed in stays open: its owner closes it). */
export function closeClient(client: object): void {
  const owner = owners.get(client);
  if (!owner?.ownsChannel) return;
  owner.closed = true;
  owner.client.close();
}

/**
 * Starts a grpc-js call, or the CHANNEL_CLOSED error if its channel is closed (by `closeClient`,
 * or by the owner of a shared Channel). Other errors are thrown as they are.
 */
function startCall<T>(owner: Owner, path: string, start: () => T): T {
  if (owner.closed) throw channelClosedError(path);
  try {
    return start();
  } catch (err) {
    if (isChannelShutDown(err)) throw channelClosedError(path, err);
    throw err;
  }
}

/**
 * The request message to send: with mutating retries, an empty `client_request_id` is filled
 * with a fresh UUID here, once, so that every attempt of this call carries the same id.
 */
function requestMessage(method: DescMethod, request: unknown, fillRequestId: boolean): Message {
  const message = create(method.input, request as never) as Message & Record<string, unknown>;
  const field = fillRequestId ? clientRequestIdField(method) : undefined;
  if (field && message[field.localName] === "") message[field.localName] = randomUUID();
  return message;
}

function clientMethod(owner: Owner, service: DescService, method: DescMethod, defaultTimeoutMs: number | undefined, fillRequestId: boolean): unknown {
  const { client } = owner;
  const path = `/${service.typeName}/${method.name}`;
  const serialize = serializer(method.input) as (value: unknown) => Buffer;
  const deserialize = deserializer(method.output);
  switch (method.methodKind) {
    case "unary":
      // async: a bad request or option rejects the promise rather than throwing at the call site.
      return async (request: unknown, opts: CallOptions = {}): Promise<Message> => {
        const message = requestMessage(method, request, fillRequestId);
        const { metadata, options, signals } = prepare(opts, defaultTimeoutMs);
        const early = abortedBeforeStart(signals);
        if (early) return Promise.reject(early);
        return new Promise((resolve, reject) => {
          const call = startCall(owner, path, () =>
            client.makeUnaryRequest(path, serialize, deserialize, message, metadata, options, (err, response) => {
              detach();
              if (err) reject(errorFromServiceError(err));
              else resolve(response as Message);
            }),
          );
          const detach = onAbort(signals, () => call.cancel());
        });
      };
    case "server_streaming":
      return (request: unknown, opts: CallOptions = {}): AsyncIterable<Message> =>
        (async function* () {
          const message = requestMessage(method, request, fillRequestId);
          const { metadata, options, signals } = prepare(opts, undefined);
          const early = abortedBeforeStart(signals);
          if (early) throw early;
          const call = startCall(owner, path, () => client.makeServerStreamRequest(path, serialize, deserialize, message, metadata, options));
          yield* responses<Message>(call, onAbort(signals, () => call.cancel()));
        })();
    case "client_streaming":
      return async (requests: AsyncIterable<unknown>, opts: CallOptions = {}): Promise<Message> => {
        const { metadata, options, signals } = prepare(opts, defaultTimeoutMs);
        const early = abortedBeforeStart(signals);
        if (early) return Promise.reject(early);
        return new Promise((resolve, reject) => {
          const call = startCall(owner, path, () =>
            client.makeClientStreamRequest(path, serialize, deserialize, metadata, options, (err, response) => {
              detach();
              if (err) reject(errorFromServiceError(err));
              else resolve(response as Message);
            }),
          );
          const detach = onAbort(signals, () => call.cancel());
          pump(call, method.input, requests).catch((err: unknown) => {
            detach();
            reject(err);
          });
        });
      };
    case "bidi_streaming":
      return (requests: AsyncIterable<unknown>, opts: CallOptions = {}): AsyncIterable<Message> =>
        (async function* () {
          const { metadata, options, signals } = prepare(opts, undefined);
          const early = abortedBeforeStart(signals);
          if (early) throw early;
          const call = startCall(owner, path, () => client.makeBidiStreamRequest(path, serialize, deserialize, metadata, options));
          // A failing request source cancels the call; the response iterator then reports CANCELLED.
          pump(call, method.input, requests).catch(() => {});
          yield* responses<Message>(call, onAbort(signals, () => call.cancel()));
        })();
  }
}
