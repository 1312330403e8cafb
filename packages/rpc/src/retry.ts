/**
 * Automatic retries, as a grpc-js client interceptor (the approach of temporalio/sdk-typescript's
 * `makeGrpcRetryInterceptor`), restricted to what is safe for a control plane:
 *
 * - only status UNAVAILABLE (`RETRYABLE_CODES`): the server was unreachable, not ready or
 *   draining, so the request most likely did nothing. Any other code is an answer;
 * - only methods whose proto declares `idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS`:
 *   UNAVAILABLE can also come from a connection lost mid-call, after the server acted, and only
 *   an idempotent method may then run twice;
 * - only before the call is committed, i.e. before any response header or message arrived
 *   (gRPC's retry design, A6): after that the caller has seen part of an answer;
 * - exponential backoff with full jitter (delay uniform in [0, min(max, initial·multiplier^n)]),
 *   so replicas restarting together are not hit by synchronized waves;
 * - never past the call's deadline: a retry whose backoff would end after it is not attempted,
 *   and the last UNAVAILABLE is returned. A server may also push back with the standard
 *   `grpc-retry-pushback-ms` trailer (a delay, or a negative value to stop retrying).
 *
 * Client-streaming and bidi calls are never retried (their requests are not buffered).
 *
 * Opt-in (`mutating: true`), a method with side effects is retried too when its request has a
 * `client_request_id` field (AIP-155): the server answers a repeat of that id with the first
 * outcome, so running it twice is safe — provided every attempt carries the same id, which the
 * client guarantees (it fills an empty id once, before the first attempt; see `createClient`).
 * UNAVAILABLE covers the routing reasons a replica answers (`NOT_OWNER`, `OWNER_UNREACHABLE`).
 *
 * A retry that finds its channel closed (the router dropped the replica while the call waited
 * out its backoff) ends that call with UNAVAILABLE `CHANNEL_CLOSED`; it never throws.
 */
import { ScalarType, type DescField, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { Code, StratumError } from "@stratum/core";
import type { Logger } from "@stratum/core";
import { channelClosedError, isChannelShutDown } from "./channel-closed";
import { toGrpcStatus } from "./status";

/** The only status codes ever retried. */
export const RETRYABLE_CODES: ReadonlySet<Code> = new Set([Code.UNAVAILABLE]);

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  readonly maxAttempts: number;
  /** Upper bound of the first backoff. */
  readonly initialBackoffMs: number;
  /** Upper bound of any backoff. */
  readonly maxBackoffMs: number;
  /** Growth of the backoff bound per attempt. */
  readonly backoffMultiplier: number;
}

/**
 * 5 attempts with backoff bounds 100, 200, 400, 800 ms: about 1.5 s of expected waiting, enough to
 * ride over a replica restart or a leader move, short against typical call deadlines.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  backoffMultiplier: 2,
});

/** Whether the proto declares the method safe to repeat. */
export function isIdempotent(method: DescMethod): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT || method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

/** Name of the request field that makes a mutating method safe to retry (AIP-155). */
export const CLIENT_REQUEST_ID_FIELD = "client_request_id";

/**
 * The request's `client_request_id` field, if its input declares one as a string: the field the
 * server keys a retry's first outcome on. Methods are told apart by this alone, not by name.
 */
export function clientRequestIdField(method: DescMethod): DescField | undefined {
  const field = method.input.fields.find((f) => f.name === CLIENT_REQUEST_ID_FIELD);
  return field?.fieldKind === "scalar" && field.scalar === ScalarType.STRING ? field : undefined;
}

/** Full-jitter backoff before retry number `retry` (1 = the first retry). */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.backoffMultiplier ** (retry - 1));
  return Math.floor(random() * bound);
}

export interface RetryInterceptorOptions extends Partial<RetryPolicy> {
  /** Logs each retry at debug level. */
  logger?: Logger;
  /**
   * Also retry methods with side effects whose request has a `client_request_id` field (the
   * server deduplicates on it). Default false: only idempotent methods are retried.
   */
  mutating?: boolean;
}

/** grpc-js does not export these two types from its entry point; derive them from what it does export. */
type InterceptingCallInterface = ReturnType<grpc.NextCall>;
type MessageContext = Parameters<InterceptingCallInterface["sendMessageWithContext"]>[0];

const PUSHBACK_KEY = "grpc-retry-pushback-ms";

function deadlineMs(deadline: grpc.Deadline | undefined): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * One logical call made of successive attempts. grpc-js drives it like any intercepting call
 * (start, sendMessage, halfClose, startRead, cancel); it replays the request on a fresh attempt
 * until the call commits or a status is final.
 */
class RetryingCall implements InterceptingCallInterface {
  private call: InterceptingCallInterface | undefined;
  private attempts = 0;
  private listener: Partial<grpc.InterceptingListener> = {};
  private metadata = new grpc.Metadata();
  private message: { context: MessageContext; value: unknown } | undefined;
  private halfClosed = false;
  private readPending = false;
  private committed = false;
  private finished = false;
  private cancelled = false;
  private timer: NodeJS.Timeout | undefined;
  private unaryResponse: { value: unknown } | undefined;

  constructor(
    private readonly options: grpc.InterceptorOptions,
    private readonly nextCall: grpc.NextCall,
    private readonly policy: RetryPolicy,
    private readonly logger: Logger | undefined,
  ) {}

  start(metadata: grpc.Metadata, listener?: Partial<grpc.InterceptingListener>): void {
    this.metadata = metadata;
    this.listener = listener ?? {};
    this.startAttempt();
  }

  private startAttempt(): void {
    this.attempts++;
    let call: InterceptingCallInterface;
    try {
      call = this.nextCall(this.options);
    } catch (err) {
      // Thrown from a retry timer, this would be an uncaught exception: end this call instead.
      // Later, so that a first attempt does not report before grpc-js has finished starting it.
      const error = isChannelShutDown(err) ? channelClosedError(this.options.method_definition.path, err) : StratumError.from(err);
      this.call = undefined;
      process.nextTick(() => {
        if (!this.finished) this.finish(toGrpcStatus(error));
      });
      return;
    }
    this.call = call;
    call.start(this.metadata.clone(), {
      onReceiveMetadata: (metadata) => {
        if (this.call !== call) return;
        this.committed = true;
        this.listener.onReceiveMetadata?.(metadata);
      },
      onReceiveMessage: (message) => {
        if (this.call !== call) return;
        if (!this.options.method_definition.responseStream) {
          // grpc-js delivers a unary response (or null, when there is none) right before the
          // status: hold it until the status says whether this attempt is the final one.
          this.unaryResponse = { value: message };
          return;
        }
        this.committed = true;
        this.readPending = false;
        this.listener.onReceiveMessage?.(message);
      },
      onReceiveStatus: (status) => {
        if (this.call !== call) return;
        this.onStatus(status);
      },
    });
    if (this.message) call.sendMessageWithContext(this.message.context, this.message.value);
    if (this.halfClosed) call.halfClose();
    if (this.readPending) call.startRead();
  }

  private retryDelay(status: grpc.StatusObject): number | undefined {
    if (this.committed || this.cancelled || !RETRYABLE_CODES.has(status.code as number)) return undefined;
    if (this.attempts >= this.policy.maxAttempts) return undefined;
    let delay = backoffDelay(this.attempts, this.policy);
    const pushback = status.metadata?.get(PUSHBACK_KEY)[0];
    if (pushback !== undefined) {
      const ms = Number(pushback);
      if (!/^\d+$/.test(String(pushback)) || !Number.isSafeInteger(ms)) return undefined;
      delay = ms;
    }
    if (Date.now() + delay >= deadlineMs(this.options.deadline)) return undefined;
    return delay;
  }

  private onStatus(status: grpc.StatusObject): void {
    if (this.finished) return;
    const delay = this.retryDelay(status);
    if (delay === undefined) {
      this.finish(status);
      return;
    }
    this.logger?.debug("retrying rpc", { method: this.options.method_definition.path, attempt: this.attempts + 1, delayMs: delay, code: status.code, details: status.details });
    this.call = undefined;
    this.unaryResponse = undefined;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startAttempt();
    }, delay);
  }

  private finish(status: grpc.StatusObject): void {
    this.finished = true;
    if (this.unaryResponse) this.listener.onReceiveMessage?.(this.unaryResponse.value);
    else if (!this.options.method_definition.responseStream) this.listener.onReceiveMessage?.(null);
    this.listener.onReceiveStatus?.(status);
  }

  cancelWithStatus(status: grpc.status, details: string): void {
    if (this.finished) return;
    this.cancelled = true;
    if (this.timer !== undefined || this.call === undefined) {
      // Between attempts (or after one failed to start) there is no call to cancel: end the
      // logical call here.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.finish({ code: status, details, metadata: new grpc.Metadata() });
      return;
    }
    this.call?.cancelWithStatus(status, details);
  }

  getPeer(): string {
    return this.call?.getPeer() ?? "";
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    this.message = { context, value: message };
    this.call?.sendMessageWithContext(context, message);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  startRead(): void {
    this.readPending = true;
    this.call?.startRead();
  }

  halfClose(): void {
    this.halfClosed = true;
    this.call?.halfClose();
  }

  getAuthContext(): ReturnType<InterceptingCallInterface["getAuthContext"]> {
    return this.call?.getAuthContext() ?? null;
  }
}

/**
 * A grpc-js interceptor that retries UNAVAILABLE calls to the idempotent methods of `services`,
 * and with `mutating` to those whose request has a `client_request_id` (see the module comment
 * for the exact rules). Methods it does not know are never retried. It does not fill in the id:
 * `createClient` does, and a caller of this interceptor alone must send the id itself.
 */
export function createRetryInterceptor(services: DescService | readonly DescService[], options: RetryInterceptorOptions = {}): grpc.Interceptor {
  const { logger, mutating = false, ...overrides } = options;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  if (!(policy.maxAttempts >= 1)) throw new RangeError("maxAttempts must be >= 1");
  const retryable = new Set<string>();
  for (const service of Array.isArray(services) ? services : [services as DescService]) {
    for (const method of service.methods) {
      if (isIdempotent(method) || (mutating && clientRequestIdField(method))) retryable.add(`/${service.typeName}/${method.name}`);
    }
  }
  return (interceptorOptions, nextCall) => {
    const definition = interceptorOptions.method_definition;
    if (definition.requestStream || !retryable.has(definition.path) || policy.maxAttempts === 1) {
      return new grpc.InterceptingCall(nextCall(interceptorOptions));
    }
    return new grpc.InterceptingCall(new RetryingCall(interceptorOptions, nextCall, policy, logger));
  };
}
