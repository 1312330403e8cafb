/**
 * A grpc-js server for protobuf-es services, with what every Stratum service needs and should
 * not re-implement: typed handlers, a per-call context (deadline, cancellation signal, request
 * id, logger), StratumError -> google.rpc.Status, input checks, health, reflection and a
 * graceful shutdown.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create, type DescMessage, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { MalformedMessage, deserializer, lenientDeserializer, nulStringViolations, serializer, unknownFieldViolations } from "./codec";
import { Code, codeName } from "@stratum/core";
import { REQUEST_ID_KEY, requestIdFrom, type HandlerContext } from "./context";
import { StratumError } from "@stratum/core";
import { HealthRegistry, ServingStatus, healthService } from "./health";
import { log as rootLog, type Logger } from "@stratum/core";
import { REFLECTION_SERVICES, reflectionServices } from "./reflection";
import { chainInterceptors, type ServerInterceptor, type ServerNext } from "./interceptor";
import type { ServiceRegistration } from "./service";
import { toGrpcStatus } from "./status";
import { Health } from "@stratum/proto/grpc/health/v1/health_pb";

/** grpc's own default; a bigger limit is a per-service decision (e.g. a service that takes images). */
export const DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 4 * 1024 * 1024;
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface ServerOptions {
  /** Interface to bind. Default `0.0.0.0` (all IPv4 interfaces), as a service in a pod must. */
  host?: string;
  /** Port to bind; 0 picks a free one (see `StratumServer.port`). Default 0. */
  port?: number;
  services: readonly ServiceRegistration[];
  /** Largest request accepted; larger ones get RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageLength?: number;
  /** Largest response sent; default unlimited (grpc default). */
  maxSendMessageLength?: number;
  /** Default: insecure (plain-text HTTP/2); TLS/mTLS is a deployment concern. */
  credentials?: grpc.ServerCredentials;
  logger?: Logger;
  /** How long `shutdown()` lets in-flight calls finish before cancelling them. Default 10 s. */
  shutdownGraceMs?: number;
  /**
   * Reject requests carrying fields this server's schema does not know (INVALID_ARGUMENT), so
   * nothing a newer client sends is silently dropped. Default true.
   */
  rejectUnknownFields?: boolean;
  /**
   * Health status of "" and every service once bound. Default SERVING; a replica that must first
   * migrate its database or join the ring starts NOT_SERVING and calls `health.set` when ready.
   */
  initialHealth?: ServingStatus;
  /**
   * Run around every call of `services` (not the built-in health and reflection), outermost
   * first, after the request is decoded and checked and before the handler.
   */
  interceptors?: readonly ServerInterceptor[];
  /** Extra grpc-js server options (keepalive, etc.). */
  grpcOptions?: grpc.ServerOptions;
}

export interface StratumServer {
  /** The bound port (the real one when `port: 0` was asked). */
  readonly port: number;
  /** A dialable `host:port` (loopback when bound to a wildcard address). */
  readonly address: string;
  /** Serving status as seen by `grpc.health.v1.Health`; every service and "" start at `initialHealth`. */
  readonly health: HealthRegistry;
  readonly grpcServer: grpc.Server;
  /**
   * Drains: marks every service NOT_SERVING, refuses new calls, waits up to `graceMs` for
   * in-flight calls, then cancels what is left (their handlers' signals abort). Idempotent.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** Codes that mean the server, not the caller, is at fault: logged at error level. */
const SERVER_FAULTS: ReadonlySet<Code> = new Set([Code.INTERNAL, Code.UNKNOWN, Code.DATA_LOSS]);

interface CallEnv {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly logger: Logger;
  readonly rejectUnknownFields: boolean;
  /** The server's open response streams, which a shutdown ends at once (see `createServer`). */
  readonly streams: Set<CallContext>;
}

/** Reason of the UNAVAILABLE that ends a response stream when its server shuts down. */
export const SERVER_SHUTTING_DOWN = "SERVER_SHUTTING_DOWN";

type AnyServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

class CallContext implements HandlerContext {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly requestId: string;
  readonly metadata: grpc.Metadata;
  readonly deadline: Date | undefined;
  readonly peer: string;
  readonly log: Logger;
  readonly trailers = new grpc.Metadata();
  readonly started = performance.now();
  private readonly controller = new AbortController();
  /** Set once the response is handed to grpc-js: later 'cancelled' events are the stream closing, not a cancel. */
  done = false;

  constructor(call: AnyServerCall, env: CallEnv) {
    this.service = env.service;
    this.method = env.method;
    this.metadata = call.metadata;
    this.requestId = requestIdFrom(call.metadata);
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    this.deadline = Number.isFinite(ms) ? new Date(ms) : undefined;
    this.peer = call.getPeer();
    this.log = env.logger.child({ service: env.service.typeName, method: env.method.name, requestId: this.requestId });
    this.trailers.set(REQUEST_ID_KEY, this.requestId);
    const onCancel = (): void => {
      if (this.done) return;
      const expired = this.deadline !== undefined && Date.now() >= this.deadline.getTime();
      this.controller.abort(
        expired
          ? new StratumError(Code.DEADLINE_EXCEEDED, "deadline exceeded", { reason: "DEADLINE_EXCEEDED" })
          : new StratumError(Code.CANCELLED, "call cancelled by the client", { reason: "CANCELLED" }),
      );
    };
    if (call.cancelled) onCancel();
    else (call as NodeJS.EventEmitter).once("cancelled", onCancel);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Set when the server ended the call (it is shutting down): the status the client gets. */
  stoppedBy: StratumError | undefined;

  /** Ends the call from the server's side: its handler's signal aborts and the client gets `reason`. */
  stop(reason: StratumError): void {
    if (this.done || this.signal.aborted) return;
    this.stoppedBy = reason;
    this.controller.abort(reason);
  }

  timeRemaining(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline.getTime() - Date.now();
  }

  /** Logs the outcome and returns the grpc-js status object for a failure. */
  fail(err: unknown): grpc.StatusObject {
    this.done = true;
    const error = StratumError.from(err);
    const fields = { code: codeName(error.code), reason: error.reason, durationMs: this.elapsed(), ...(Object.keys(error.resources).length ? { resources: error.resources } : {}) };
    if (this.signal.aborted && (error.code === Code.CANCELLED || error.code === Code.DEADLINE_EXCEEDED)) {
      // The client is gone and the handler stopped because of it: routine, not a failure.
      this.log.debug("rpc abandoned", fields);
    } else if (error !== err || SERVER_FAULTS.has(error.code)) {
      // The cause (SQL, stack, hostnames) is logged here and never sent.
      this.log.error("rpc failed", { ...fields, err });
    } else {
      this.log.info("rpc failed", fields);
    }
    return toGrpcStatus(error, this.requestId, this.trailers);
  }

  succeed(): void {
    this.done = true;
    this.log.debug(this.signal.aborted ? "rpc abandoned" : "rpc ok", { durationMs: this.elapsed() });
  }

  private elapsed(): number {
    return Math.round((performance.now() - this.started) * 10) / 10;
  }
}

/** The request as the handler must see it, or the StratumError that rejects it. */
function checkRequest(request: unknown, env: CallEnv): Message {
  if (request instanceof MalformedMessage) throw request.toError();
  const message = request as Message;
  const violations = env.rejectUnknownFields ? unknownFieldViolations(env.method.input, message) : [];
  violations.push(...nulStringViolations(env.method.input, message));
  if (violations.length > 0) throw StratumError.invalidArgument(violations);
  return message;
}

/**
 * Requests of a streaming call, checked one by one. Throws the signal's reason when the call is
 * cancelled: grpc-js neither ends nor errors the request stream then, so a handler waiting for
 * the next request would hang forever. The stream is not destroyed if the handler stops reading
 * early (that would also kill the response side of a bidi call).
 */
async function* checkedRequests(call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, env: CallEnv, signal: AbortSignal): AsyncGenerator<Message> {
  const iterator = call.iterator({ destroyOnReturn: false });
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => {}); // observed by the race below; never unhandled
  let finished = false;
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) {
        // grpc-js reports a client's RST_STREAM as end-of-stream first and as a cancellation a
        // few ticks later: without this turn of the event loop, a cancelled upload would look
        // complete to the handler.
        await new Promise((resolve) => setImmediate(resolve));
        if (signal.aborted) throw signal.reason;
        finished = true;
        return;
      }
      yield checkRequest(next.value, env);
    }
  } catch (err) {
    finished = true; // a read is still pending on the dead call: do not queue return() behind it
    throw err;
  } finally {
    if (!finished) await iterator.return?.();
  }
}

function waitForDrain(stream: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.off("drain", done);
      signal.removeEventListener("abort", abort);
      resolve();
    };
    const abort = (): void => {
      stream.off("drain", done);
      reject(signal.reason);
    };
    stream.on("drain", done);
    signal.addEventListener("abort", abort, { once: true });
  });
}

/** Writes responses with backpressure; stops (closing the handler's generator) when the call is gone. */
async function writeAll(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, output: DescMessage, responses: AsyncIterable<unknown>, ctx: CallContext): Promise<void> {
  for await (const response of responses) {
    if (ctx.signal.aborted) break;
    if (!call.write(create(output, response as never))) await waitForDrain(call, ctx.signal);
  }
}

function handler(env: CallEnv, impl: ServerNext): grpc.UntypedHandleCall {
  const { method, service } = env;
  switch (method.methodKind) {
    case "unary":
      return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ctx = new CallContext(call, env);
        (async () => create(method.output, (await impl({ service, method, request: checkRequest(call.request, env), ctx })) as never))().then(
          (response) => {
            ctx.succeed();
            callback(null, response, ctx.trailers);
          },
          (err: unknown) => callback(ctx.fail(err)),
        );
      };
    case "client_streaming":
      return (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ctx = new CallContext(call, env);
        (async () => create(method.output, (await impl({ service, method, request: checkedRequests(call, env, ctx.signal), ctx })) as never))().then(
          (response) => {
            ctx.succeed();
            callback(null, response, ctx.trailers);
          },
          (err: unknown) => callback(ctx.fail(err)),
        );
      };
    case "server_streaming":
    case "bidi_streaming":
      return (call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>) => {
        const ctx = new CallContext(call, env);
        env.streams.add(ctx);
        (async () => {
          const input = method.methodKind === "server_streaming" ? checkRequest((call as grpc.ServerWritableStream<unknown, unknown>).request, env) : checkedRequests(call as grpc.ServerDuplexStream<unknown, unknown>, env, ctx.signal);
          await writeAll(call, method.output, (await impl({ service, method, request: input, ctx })) as AsyncIterable<unknown>, ctx);
        })()
          .then(
            () => {
              // A stream the shutdown ended is not complete: the client is told to open it again.
              if (ctx.stoppedBy) return call.emit("error", ctx.fail(ctx.stoppedBy));
              ctx.succeed();
              call.end(ctx.trailers);
            },
            // grpc-js' server streams turn an 'error' event into the call's final status.
            (err: unknown) => call.emit("error", ctx.fail(ctx.stoppedBy ?? err)),
          )
          .finally(() => env.streams.delete(ctx));
      };
  }
}

function definitionOf(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input) as (value: unknown) => Buffer,
      requestDeserialize: lenientDeserializer(method.input),
      responseSerialize: serializer(method.output) as (value: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
  }
  return definition;
}

function bindAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts a server with `services`, plus `grpc.health.v1.Health` and reflection (v1 and v1alpha).
 * Resolves once bound; unknown services and methods are answered UNIMPLEMENTED by grpc-js.
 */
export async function createServer(options: ServerOptions): Promise<StratumServer> {
  const host = options.host ?? "0.0.0.0";
  const logger = options.logger ?? rootLog;
  const health = new HealthRegistry();
  const userServices = options.services.map((s) => s.service);
  const builtins: ServiceRegistration[] = [healthService(health), ...reflectionServices([...userServices, Health, ...REFLECTION_SERVICES])];
  const all = [...options.services, ...builtins];

  const seen = new Set<string>();
  for (const { service } of all) {
    if (seen.has(service.typeName)) throw new Error(`service ${service.typeName} registered twice`);
    seen.add(service.typeName);
  }

  const server = new grpc.Server({
    ...options.grpcOptions,
    "grpc.max_receive_message_length": options.maxReceiveMessageLength ?? DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    ...(options.maxSendMessageLength === undefined ? {} : { "grpc.max_send_message_length": options.maxSendMessageLength }),
  });
  const rejectUnknownFields = options.rejectUnknownFields ?? true;
  const streams = new Set<CallContext>();
  for (const { service, impl } of all) {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods) {
      const fn = impl[method.localName];
      if (!fn) throw new Error(`${service.typeName}: no handler for ${method.name}`);
      const isBuiltin = builtins.some((b) => b.service === service);
      const bound: ServerNext = (call) => fn(call.request, call.ctx);
      implementation[method.name] = handler({ service, method, logger, rejectUnknownFields, streams: isBuiltin ? new Set() : streams }, isBuiltin ? bound : chainInterceptors(options.interceptors ?? [], bound));
    }
    server.addService(definitionOf(service), implementation);
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bindAddress(host, options.port ?? 0), options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });

  const initial = options.initialHealth ?? ServingStatus.SERVING;
  health.set("", initial);
  for (const service of userServices) health.set(service.typeName, initial);
  const dialHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const address = bindAddress(dialHost, port);
  logger.info("grpc server listening", { address: bindAddress(host, port), services: userServices.map((s) => s.typeName) });

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> =>
    (stopping ??= (async () => {
      health.shutdown();
      const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      // (The health watch ends itself on health.shutdown(), after telling its watchers NOT_SERVING.)
      // A response stream (a watch) has no end of its own: waiting for it would only hold the
      // shutdown for its grace. It ends now with UNAVAILABLE, so its client opens it again on
      // another replica at once.
      for (const ctx of streams) ctx.stop(new StratumError(Code.UNAVAILABLE, "the server is shutting down: open the stream again", { reason: SERVER_SHUTTING_DOWN }));
      const timer = new AbortController();
      const forced = await Promise.race([graceful.then(() => false), sleep(graceMs, true, { signal: timer.signal, ref: false }).catch(() => false)]);
      timer.abort();
      if (forced) {
        logger.warn("grpc server shutdown grace period over: cancelling in-flight calls", { address, graceMs });
        server.forceShutdown();
        await Promise.race([graceful, sleep(1000, undefined, { ref: false })]);
      }
      logger.info("grpc server stopped", { address });
    })());

  return { port, address, health, grpcServer: server, shutdown };
}
