import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { Code } from "@stratum/core";
import { agentCallMetrics, type AgentCallEvent } from "./agent-metrics";
import { parseMetrics, valueOf } from "./test-support";

describe("agent call metrics", () => {
  it("counts calls by command, outcome and code, times them and counts retries", async () => {
    const registry = new Registry();
    const onCall = agentCallMetrics(registry);
    onCall({ command: "/vm/start", hostUuid: "h1", outcome: "ok", durationMs: 40, attempts: 1 });
    onCall({ command: "/vm/start", hostUuid: "h2", outcome: "ok", durationMs: 2_000, attempts: 3 });
    onCall({ command: "/vm/start", outcome: "AGENT_UNREACHABLE", code: Code.UNAVAILABLE, durationMs: 5_000, attempts: 4 });
    onCall({ command: "/host/ping", outcome: "AGENT_CLOSED", code: Code.CANCELLED, durationMs: 3, attempts: 0 });
    const s = parseMetrics(await registry.metrics());
    expect(valueOf(s, "stratum_agent_calls_total", { command: "/vm/start", outcome: "ok", code: "" })).toBe(2);
    expect(valueOf(s, "stratum_agent_calls_total", { command: "/vm/start", outcome: "AGENT_UNREACHABLE", code: "UNAVAILABLE" })).toBe(1);
    expect(valueOf(s, "stratum_agent_calls_total", { command: "/host/ping", outcome: "AGENT_CLOSED", code: "CANCELLED" })).toBe(1);
    expect(valueOf(s, "stratum_agent_call_seconds_count", { command: "/vm/start", outcome: "ok" })).toBe(2);
    expect(valueOf(s, "stratum_agent_call_seconds_sum", { command: "/vm/start", outcome: "ok" })).toBeCloseTo(2.04, 6);
    expect(valueOf(s, "stratum_agent_call_seconds_bucket", { command: "/vm/start", outcome: "ok", le: "0.05" })).toBe(1);
    expect(valueOf(s, "stratum_agent_call_retries_total", { command: "/vm/start" })).toBe(5);
    expect(valueOf(s, "stratum_agent_call_retries_total", { command: "/host/ping" })).toBeUndefined();
    expect(s.some((x) => "hostUuid" in x.labels || "host" in x.labels)).toBe(false);
  });

  it("refuses a malformed event naming the field, and records nothing", async () => {
    const registry = new Registry();
    const onCall = agentCallMetrics(registry);
    const good: AgentCallEvent = { command: "/vm/stop", outcome: "ok", durationMs: 1, attempts: 1 };
    expect(() => onCall({ ...good, command: "" })).toThrow(/command must be a non-empty string/);
    expect(() => onCall({ ...good, outcome: undefined as never })).toThrow(/outcome/);
    expect(() => onCall({ ...good, durationMs: Number.NaN })).toThrow(/durationMs must be a finite number/);
    expect(() => onCall({ ...good, attempts: -1 })).toThrow(/attempts must be an integer >= 0/);
    expect(() => onCall({ ...good, code: 1.5 })).toThrow(/code must be an integer/);
    const s = parseMetrics(await registry.metrics());
    expect(s.filter((x) => x.name.startsWith("stratum_agent_call") && x.value !== 0)).toEqual([]);
  });
});
