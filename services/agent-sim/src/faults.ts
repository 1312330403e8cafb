import { randomUUID } from "node:crypto";
import { CommandError } from "./command-error";
import { isJsonObject } from "./fields";

/**
 * - `http500`: answer an HTTP 5xx error (`status`, default 500) instead of the command's answer.
 * - `hang`: never answer (the connection stays open; the client must time out).
 * - `reset`: destroy the connection with a TCP RST (the client sees ECONNRESET).
 * - `slow`: wait `delayMs` then carry on normally.
 */
export type FaultKind = "http500" | "hang" | "reset" | "slow";

/**
 * - `before` (default): the fault hits on arrival, the command does NOT run and its task id is
 *   not remembered, so a retry runs it.
 * - `after`: the command runs (state changes, its answer is remembered under its task id), then
 *   the fault hits the reply — the case where only a task id makes a retry safe.
 */
export type FaultPhase = "before" | "after";

export interface FaultSpec {
  kind: FaultKind;
  phase?: FaultPhase;
  /** `slow` only: how long to delay. */
  delayMs?: number;
  /** `http500` only: the 5xx status to answer (e.g. 503). Default 500. */
  status?: number;
  /** `http500` only: the error message. */
  message?: string;
}

export interface FaultRule extends FaultSpec {
  /** Command to hit, e.g. `vm/start`; omitted or `*` hits every command. */
  command?: string;
  /** How many requests to hit; omitted means until cleared. */
  times?: number;
}

export interface InjectedFault {
  readonly id: string;
  readonly rule: Readonly<FaultRule>;
  /** Requests this rule has hit so far. */
  readonly hits: number;
  clear(): void;
}

const KINDS: ReadonlySet<string> = new Set(["http500", "hang", "reset", "slow"]);

/** Validates a fault spec from untrusted input (the control endpoint), naming the bad field. */
export function parseFaultSpec(input: unknown, prefix = ""): FaultSpec {
  if (!isJsonObject(input)) throw CommandError.invalidField(prefix || "fault", "an object");
  const kind = input["kind"];
  if (typeof kind !== "string" || !KINDS.has(kind)) {
    throw CommandError.invalidField(`${prefix}kind`, "one of http500, hang, reset, slow");
  }
  const spec: FaultSpec = { kind: kind as FaultKind };
  const phase = input["phase"];
  if (phase !== undefined) {
    if (phase !== "before" && phase !== "after") throw CommandError.invalidField(`${prefix}phase`, "before or after");
    spec.phase = phase;
  }
  const delayMs = input["delayMs"];
  if (delayMs !== undefined) {
    if (typeof delayMs !== "number" || !(delayMs >= 0)) throw CommandError.invalidField(`${prefix}delayMs`, "a non-negative number");
    spec.delayMs = delayMs;
  } else if (kind === "slow") {
    throw CommandError.missingField(`${prefix}delayMs`);
  }
  const status = input["status"];
  if (status !== undefined) {
    if (typeof status !== "number" || !Number.isInteger(status) || status < 500 || status > 599) {
      throw CommandError.invalidField(`${prefix}status`, "an integer in 500..599");
    }
    spec.status = status;
  }
  const message = input["message"];
  if (message !== undefined) {
    if (typeof message !== "string") throw CommandError.invalidField(`${prefix}message`, "a string");
    spec.message = message;
  }
  return spec;
}

export function parseFaultRule(input: unknown): FaultRule {
  const spec = parseFaultSpec(input);
  const rule: FaultRule = { ...spec };
  const body = input as Record<string, unknown>;
  const command = body["command"];
  if (command !== undefined) {
    if (typeof command !== "string" || command === "") throw CommandError.invalidField("command", "a command name");
    rule.command = command;
  }
  const times = body["times"];
  if (times !== undefined && times !== null) {
    if (typeof times !== "number" || !Number.isSafeInteger(times) || times <= 0) {
      throw CommandError.invalidField("times", "a positive integer");
    }
    rule.times = times;
  }
  return rule;
}

interface ActiveRule {
  id: string;
  rule: FaultRule;
  hits: number;
}

/** The faults injected on one host. Rules are tried in injection order; the first match hits. */
export class FaultTable {
  private readonly rules: ActiveRule[] = [];

  add(rule: FaultRule): InjectedFault {
    const active: ActiveRule = { id: randomUUID(), rule: { ...parseFaultRule(rule) }, hits: 0 };
    this.rules.push(active);
    return {
      id: active.id,
      rule: active.rule,
      get hits() {
        return active.hits;
      },
      clear: () => this.remove(active.id),
    };
  }

  /** Consumes one hit of the first rule matching `command`, if any. */
  take(command: string): FaultSpec | undefined {
    const index = this.rules.findIndex((r) => r.rule.command === undefined || r.rule.command === "*" || r.rule.command === command);
    const active = this.rules[index];
    if (!active) return undefined;
    active.hits += 1;
    if (active.rule.times !== undefined && active.hits >= active.rule.times) this.rules.splice(index, 1);
    const { command: _command, times: _times, ...spec } = active.rule;
    return spec;
  }

  remove(id: string): boolean {
    const index = this.rules.findIndex((r) => r.id === id);
    if (index < 0) return false;
    this.rules.splice(index, 1);
    return true;
  }

  clear(): void {
    this.rules.length = 0;
  }

  list(): Array<{ id: string; hits: number } & FaultRule> {
    return this.rules.map((r) => ({ id: r.id, hits: r.hits, ...r.rule }));
  }
}
