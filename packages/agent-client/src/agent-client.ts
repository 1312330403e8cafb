import { setTimeout as sleep } from "node:timers/promises";
import {
  COMMAND_PATTERN, FENCING_TOKEN_HEADER, FENCING_TOKEN_PATTERN, fencingToken, parseAgentError, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN,
  type AgentCommand, type AgentReply, type AgentRequest,
} from "@stratum/agent-protocol";
import { currentWork, log, StratumError, type Logger } from "@stratum/core";
import type { Agent } from "undici";
import { backoffDelay, type BackoffOptions } from "./backoff";
import { logFailure, logRetry, type AgentCallObserver } from "./call-report";
import { DEFAULT_COMMAND_POLICIES, FALLBACK_COMMAND_POLICY, type CommandPolicy } from "./command-policy";
import { createAgentDispatcher, type AgentDispatcherOptions } from "./dispatcher";
import {
  badResponseError, cancelledError, closedError, httpError, isRetryable, timeoutError, transportError,
  type CallTarget,
} from "./errors";

export interface AgentClientOptions extends AgentDispatcherOptions, BackoffOptions {
  /** Most attempts per call, first included, for calls that are safe to retry. Default 3. */
  maxAttempts?: number;
  /** Per-command overrides and additions to {@link DEFAULT_COMMAND_POLICIES}. */
  commands?: Record<string, Partial<CommandPolicy>>;
  /**
   * Where retries (warn) and final failures (at their kind's level) are logged. Default: the
   * process logger with `component: "agent-client"`, so a caller that passes none still sees them.
   */
  logger?: Logger;
  /** Told how each call ended (for metrics); see {@link AgentCallEvent}. */
  onCall?: AgentCallObserver;
}

export interface CallOptions {
  /**
   * Task id sent as `X-Task-Id`. The agent answers a repeat of it from the first execution, which
   * makes any command safe to retry; use a stable id (e.g. job + step) so a retry after a
   * management-node failover is deduplicated too.
   */
  taskId?: string;
  /**
   * Request id sent as `X-Request-Id`. Default: the request id of the current work scope
   * (`currentWork()` of `@stratum/core`), so the agent's log names the RPC that caused the command.
   */
  requestId?: string;
  /** Deadline of the whole call, attempts and backoff included. Default: the command's policy. */
  timeoutMs?: number;
  /** Aborts the call (→ CANCELLED). */
  signal?: AbortSignal;
  /** Named in errors alongside the URL. */
  hostUuid?: string;
  /**
   * The caller's fencing token for the resource the command is about, sent as
   * `X-Fencing-Token: <resource>=<token>`: the agent refuses it (409 `FENCED`, FAILED_PRECONDITION
   * here, never retried) once it has seen a newer one for that resource.
   */
  fence?: { resource: string; token: number };
}

export interface AgentClient {
  /**
   * Sends `command` to the agent at `hostUrl` and resolves with its JSON answer, typed by the
   * protocol for its commands. Failures are `StratumError`s (reasons in `AgentFailure`);
   * connection failures are retried with backoff only when the command is idempotent or carries
   * a task id.
   */
  call<C extends AgentCommand>(hostUrl: string, command: C, body: AgentRequest<C>, options?: CallOptions): Promise<AgentReply<C>>;
  /** A command outside the protocol (an extension of some agent), answer untyped. */
  call<T = unknown>(hostUrl: string, command: string, body?: unknown, options?: CallOptions): Promise<T>;
  /** The policy applied to `command` (defaults merged with overrides). */
  policyOf(command: string): CommandPolicy;
  /** Connection counts per agent origin, from undici (for tests and metrics). */
  stats(): Record<string, { connected: number; free: number; pending: number; running: number }>;
  /**
   * Closes every pool: idle connections at once, busy ones when their request ends; new calls
   * fail with AGENT_CLIENT_CLOSED. Requests still running after `graceMs` (default 5,000) are
   * aborted, so shutdown cannot hang on an agent that never answers.
   */
  close(options?: { graceMs?: number }): Promise<void>;
  readonly closed: boolean;
}

/** Creates the management plane's client to hypervisor agents. Close it on shutdown. */
export function createAgentClient(options: AgentClientOptions = {}): AgentClient {
  return new UndiciAgentClient(options);
}

type Stopper = "deadline" | "caller" | "shutdown";

/** Everything one call's attempts need, fixed before the first attempt. */
interface CallPlan {
  target: CallTarget;
  requestId: string | undefined;
  origin: string;
  path: string;
  headers: Record<string, string>;
  payload: string;
  /** Idempotent command or task id: connection failures may be retried. */
  retrySafe: boolean;
  deadlineAt: number;
  signal: AbortSignal;
  /**
   * The error of a call its signal stopped. The caller's abort and shutdown always win (they
   * were asked for). The deadline yields to `real`, a failure that really happened — an attempt
   * that failed on its own, or the last one before a backoff the deadline cut short — and is
   * reported as a timeout only when it cut an attempt short whose outcome is unknown.
   */
  interrupted: (attempts: number, cause: unknown, real?: StratumError) => StratumError;
  /** Attempts sent so far (for the call's report). */
  attempts: number;
}

class UndiciAgentClient implements AgentClient {
  private readonly dispatcher: Agent;
  private readonly policies: Record<string, CommandPolicy>;
  private readonly maxAttempts: number;
  private readonly logger: Logger;
  private closing = false;
  /** Aborts of the calls in flight; fired when close()'s grace period runs out. */
  private readonly inflight = new Set<() => void>();

  constructor(private readonly options: AgentClientOptions) {
    this.dispatcher = createAgentDispatcher(options);
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.logger = options.logger ?? log.child({ component: "agent-client" });
    this.policies = { ...DEFAULT_COMMAND_POLICIES };
    for (const [command, override] of Object.entries(options.commands ?? {})) {
      this.policies[command] = { ...(this.policies[command] ?? FALLBACK_COMMAND_POLICY), ...override };
    }
  }

  get closed(): boolean {
    return this.closing;
  }

  policyOf(command: string): CommandPolicy {
    return (Object.hasOwn(this.policies, command) ? this.policies[command] : undefined) ?? FALLBACK_COMMAND_POLICY;
  }

  stats(): Record<string, { connected: number; free: number; pending: number; running: number }> {
    const out: Record<string, { connected: number; free: number; pending: number; running: number }> = {};
    for (const [origin, s] of Object.entries(this.dispatcher.stats)) {
      const pool = s as { connected?: number; free?: number; pending?: number; running?: number };
      out[origin] = { connected: pool.connected ?? 0, free: pool.free ?? 0, pending: pool.pending ?? 0, running: pool.running ?? 0 };
    }
    return out;
  }

  async close(options: { graceMs?: number } = {}): Promise<void> {
    this.closing = true;
    if (this.dispatcher.destroyed) return;
    const graceMs = options.graceMs ?? 5_000;
    const closed = this.dispatcher.close().then(() => "closed" as const);
    if ((await within(closed, graceMs)) === "closed") return;
    // undici's Agent.close() forgets its pools, so a later Agent.destroy() cannot reach the
    // requests still running: abort them through their signals, which destroys their sockets.
    for (const abort of [...this.inflight]) abort();
    await within(closed, 1_000);
  }

  call<C extends AgentCommand>(hostUrl: string, command: C, body: AgentRequest<C>, options?: CallOptions): Promise<AgentReply<C>>;
  call<T = unknown>(hostUrl: string, command: string, body?: unknown, options?: CallOptions): Promise<T>;
  async call(hostUrl: string, command: string, body: unknown = {}, options: CallOptions = {}): Promise<unknown> {
    const target: CallTarget = { hostUrl, command, hostUuid: options.hostUuid, taskId: options.taskId };
    const { origin, path } = this.locate(target);
    if (options.taskId !== undefined && !TASK_ID_PATTERN.test(options.taskId)) {
      throw StratumError.invalidArgument([{ field: "taskId", description: `must match ${TASK_ID_PATTERN}` }]);
    }
    if (options.requestId !== undefined && !REQUEST_ID_PATTERN.test(options.requestId)) {
      throw StratumError.invalidArgument([{ field: "requestId", description: `must match ${REQUEST_ID_PATTERN}` }]);
    }
    const policy = this.policyOf(command);
    const timeoutMs = options.timeoutMs ?? policy.timeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw StratumError.invalidArgument([{ field: "timeoutMs", description: "must be a positive number" }]);
    }
    // The work scope's id is ambient, not this call's input: one a header cannot carry is left
    // out rather than failing an agent command over it.
    const ambient = currentWork()?.requestId;
    const requestId = options.requestId ?? (ambient !== undefined && REQUEST_ID_PATTERN.test(ambient) ? ambient : undefined);
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (options.taskId !== undefined) headers[TASK_ID_HEADER] = options.taskId;
    if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
    if (options.fence !== undefined) {
      const value = fencingToken(options.fence.resource, options.fence.token);
      if (!FENCING_TOKEN_PATTERN.test(value)) throw StratumError.invalidArgument([{ field: "fence", description: `must be <resource>=<token> matching ${FENCING_TOKEN_PATTERN}` }]);
      headers[FENCING_TOKEN_HEADER] = value;
    }
    const retrySafe = policy.idempotent || options.taskId !== undefined;

    // One signal per call, fed by the deadline, the caller's signal and shutdown. Built by hand:
    // AbortSignal.any() with a long-lived source leaks on Node 20 (measured ~5 MB per 100k calls).
    const started = performance.now();
    const deadlineAt = Date.now() + timeoutMs;
    const controller = new AbortController();
    const signal = controller.signal;
    let stoppedBy: Stopper | undefined;
    const abort = (by: Stopper): void => {
      if (stoppedBy !== undefined) return;
      stoppedBy = by;
      controller.abort();
    };
    const timer = setTimeout(() => abort("deadline"), timeoutMs);
    const onCallerAbort = (): void => abort("caller");
    const onShutdown = (): void => abort("shutdown");
    options.signal?.addEventListener("abort", onCallerAbort, { once: true });
    if (options.signal?.aborted) abort("caller");
    this.inflight.add(onShutdown);
    const interrupted = (attempts: number, cause: unknown, real?: StratumError): StratumError => {
      if (stoppedBy === "caller") return cancelledError(target, options.signal?.reason ?? cause);
      if (stoppedBy === "shutdown") return closedError(target, cause);
      return real ?? timeoutError(target, timeoutMs, attempts, cause);
    };

    const plan: CallPlan = { target, requestId, origin, path, headers, payload, retrySafe, deadlineAt, signal, interrupted, attempts: 0 };
    try {
      const answer = await this.attempts(plan);
      this.report(plan, started, undefined);
      return answer;
    } catch (err) {
      this.report(plan, started, err instanceof StratumError ? err : StratumError.from(err));
      throw err;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onCallerAbort);
      this.inflight.delete(onShutdown);
    }
  }

  /** The retry loop of one call; `signal` aborts on the deadline, the caller's abort or shutdown. */
  private async attempts(plan: CallPlan): Promise<unknown> {
    const { target, origin, path, headers, payload, retrySafe, deadlineAt, signal, interrupted } = plan;
    let previous: StratumError | undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.closing) throw closedError(target);
      if (signal.aborted) throw interrupted(attempt - 1, previous, previous);
      plan.attempts = attempt;
      let failure: StratumError;
      try {
        const res = await this.dispatcher.request({ origin, path, method: "POST", headers, body: payload, signal });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) return parseAnswer(target, text);
        failure = httpError(target, res.statusCode, parseAgentError(text, res.statusCode), attempt);
      } catch (err) {
        if (err instanceof StratumError) throw err;
        if (signal.aborted) {
          // undici settles a request aborted while still connecting only when the connect ends,
          // with the connect's own error: a refusal after the deadline is still a refusal (the
          // agent never saw the request), not "no answer in time".
          throw interrupted(attempt, err, isAbort(err, signal) ? undefined : this.failureOf(target, err, attempt));
        }
        failure = this.failureOf(target, err, attempt);
      }
      if (!retrySafe || !isRetryable(failure) || attempt >= this.maxAttempts) throw failure;
      const delay = backoffDelay(attempt, this.options);
      // A retry that could only start after the deadline is no retry: report the real failure now.
      if (signal.aborted || Date.now() + delay >= deadlineAt) throw interrupted(attempt, failure, failure);
      logRetry(this.logger, target, plan.requestId, attempt, delay, failure);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        throw interrupted(attempt, failure, failure);
      }
      previous = failure;
    }
  }

  private failureOf(target: CallTarget, err: unknown, attempt: number): StratumError {
    return this.closing ? closedError(target, err) : transportError(target, err, attempt);
  }

  /** Logs a failed call and tells the observer how the call ended. */
  private report(plan: CallPlan, started: number, failure: StratumError | undefined): void {
    const durationMs = performance.now() - started;
    if (failure) logFailure(this.logger, plan.target, plan.requestId, plan.attempts, Math.round(durationMs), failure);
    const observer = this.options.onCall;
    if (!observer) return;
    try {
      observer({
        command: plan.target.command,
        ...(plan.target.hostUuid === undefined ? {} : { hostUuid: plan.target.hostUuid }),
        outcome: failure ? failure.reason : "ok",
        ...(failure ? { code: failure.code } : {}),
        durationMs,
        attempts: plan.attempts,
      });
    } catch (err) {
      // Metrics must never fail the call they measure.
      this.logger.error("agent call observer threw", { command: plan.target.command, error: err });
    }
  }

  /** Splits `hostUrl` + `command` into undici's origin and path; bad input is INVALID_ARGUMENT. */
  private locate(target: CallTarget): { origin: string; path: string } {
    if (!COMMAND_PATTERN.test(target.command)) {
      throw StratumError.invalidArgument([{ field: "command", description: `not a command name: ${JSON.stringify(target.command)}` }]);
    }
    let url: URL;
    try {
      url = new URL(target.hostUrl);
    } catch {
      throw StratumError.invalidArgument([{ field: "hostUrl", description: `not a URL: ${JSON.stringify(target.hostUrl)}` }]);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw StratumError.invalidArgument([{ field: "hostUrl", description: "must be an http(s) URL" }]);
    }
    const base = url.pathname.replace(/\/+$/, "");
    return { origin: url.origin, path: `${base}/${target.command}` };
  }
}

/** True when `err` is the call's own abort, not a failure that happened to settle after it. */
function isAbort(err: unknown, signal: AbortSignal): boolean {
  if (err === signal.reason) return true;
  if (!(err instanceof Error)) return false;
  return err.name === "AbortError" || (err as { code?: unknown }).code === "UND_ERR_ABORTED";
}

/** Resolves with `promise`'s value, or `"expired"` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "expired"> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<"expired">((resolve) => (timer = setTimeout(() => resolve("expired"), ms)));
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function parseAnswer(target: CallTarget, text: string): unknown {
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badResponseError(target, "answer is not JSON", err);
  }
}

