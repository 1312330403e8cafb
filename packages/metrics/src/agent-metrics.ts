import { Counter, Histogram, type Registry } from "prom-client";
import { codeName } from "@stratum/core";
import { AGENT_SECONDS } from "./buckets";

/**
 * One finished agent command, as the agent client reports it to its `onCall` observer. Defined
 * here structurally so that metrics and the agent client do not depend on each other.
 */
export interface AgentCallEvent {
  /** The agent command (`/vm/start`, `ping`…): a bounded set, so it is a label. */
  readonly command: string;
  /** Which host; not a label (one series per host and command would grow with the fleet). */
  readonly hostUuid?: string;
  /** `ok`, or the StratumError reason of the failure (`AGENT_UNREACHABLE`, `AGENT_TIMEOUT`…). */
  readonly outcome: string;
  /** The gRPC code of the failure; absent on success. */
  readonly code?: number;
  /** Wall time of the whole call, retries and backoff included, in milliseconds. */
  readonly durationMs: number;
  /** Attempts sent (0 when the call ended before the first, e.g. the client was closed). */
  readonly attempts: number;
}

/** The agent client's `onCall` observer shape. */
export type AgentCallObserver = (event: AgentCallEvent) => void;

/**
 * Registers the agent-call metrics on `registry` and returns the observer that feeds them.
 * The observer throws a TypeError naming the field of a malformed event and records nothing,
 * so a bug in the caller shows instead of skewing the figures.
 */
export function agentCallMetrics(registry: Registry): AgentCallObserver {
  const registers = [registry];
  const calls = new Counter({
    name: "stratum_agent_calls_total",
    help: "Agent commands this replica sent, by command, outcome (ok or the failure's reason) and gRPC code name of the failure (empty on success).",
    labelNames: ["command", "outcome", "code"],
    registers,
  });
  const seconds = new Histogram({
    name: "stratum_agent_call_seconds",
    help: "Wall time of agent commands, retries included, by command and outcome, in seconds.",
    labelNames: ["command", "outcome"],
    buckets: AGENT_SECONDS,
    registers,
  });
  const retries = new Counter({
    name: "stratum_agent_call_retries_total",
    help: "Attempts beyond the first one of agent commands, by command.",
    labelNames: ["command"],
    registers,
  });
  return (event) => {
    checkEvent(event);
    const { command, outcome } = event;
    calls.inc({ command, outcome, code: event.code === undefined ? "" : codeName(event.code) });
    seconds.observe({ command, outcome }, event.durationMs / 1000);
    if (event.attempts > 1) retries.inc({ command }, event.attempts - 1);
  };
}

function checkEvent(event: AgentCallEvent): void {
  if (typeof event !== "object" || event === null) throw new TypeError("agent call event must be an object");
  if (typeof event.command !== "string" || event.command === "") throw new TypeError(`agent call event: command must be a non-empty string, got ${JSON.stringify(event.command)}`);
  if (typeof event.outcome !== "string" || event.outcome === "") throw new TypeError(`agent call event: outcome must be a non-empty string, got ${JSON.stringify(event.outcome)}`);
  if (typeof event.durationMs !== "number" || !(event.durationMs >= 0) || event.durationMs === Number.POSITIVE_INFINITY) {
    throw new TypeError(`agent call event: durationMs must be a finite number >= 0, got ${String(event.durationMs)}`);
  }
  if (!Number.isInteger(event.attempts) || event.attempts < 0) throw new TypeError(`agent call event: attempts must be an integer >= 0, got ${String(event.attempts)}`);
  if (event.code !== undefined && !Number.isInteger(event.code)) throw new TypeError(`agent call event: code must be an integer when set, got ${String(event.code)}`);
}
