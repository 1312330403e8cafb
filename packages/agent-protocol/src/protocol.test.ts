import { describe, expect, it } from "vitest";
import {
  AGENT_COMMAND_NAMES, AGENT_COMMANDS, COMMAND_PATTERN, isAgentCommand, isRetrySafe, parseAgentError, REQUEST_ID_PATTERN, TASK_ID_PATTERN,
} from "./index";

describe("commands", () => {
  it("every command name is a valid command path", () => {
    for (const name of AGENT_COMMAND_NAMES) expect(name).toMatch(COMMAND_PATTERN);
    expect(AGENT_COMMAND_NAMES).toHaveLength(Object.keys(AGENT_COMMANDS).length);
  });

  it("retries without a task id only what is idempotent; anything with a task id", () => {
    expect(isRetrySafe("host/ping", undefined)).toBe(true);
    expect(isRetrySafe("volume/task/cancel", undefined)).toBe(true);
    expect(isRetrySafe("vm/stop", undefined)).toBe(false);
    expect(isRetrySafe("vm/stop", "job-1/stop")).toBe(true);
    // Reading or aborting a copy may be repeated; starting one may not (without a task id).
    expect(isRetrySafe("vm/migrate/status", undefined)).toBe(true);
    expect(isRetrySafe("vm/migrate/abort", undefined)).toBe(true);
    expect(isRetrySafe("vm/migrate", undefined)).toBe(false);
    // Listing EIP rules only reads; applying or releasing one changes what a later list sees.
    expect(AGENT_COMMANDS["eip/list"].idempotent).toBe(true);
    expect(isRetrySafe("eip/list", undefined)).toBe(true);
    expect(isRetrySafe("eip/apply", undefined)).toBe(false);
    expect(isRetrySafe("eip/release", undefined)).toBe(false);
    // Not a protocol command: assume the worst.
    expect(isRetrySafe("vm/snapshot", undefined)).toBe(false);
    expect(isRetrySafe("toString", undefined)).toBe(false);
    expect(isAgentCommand("constructor")).toBe(false);
    expect(isAgentCommand("host/vms")).toBe(true);
  });
});

describe("ids and names", () => {
  it("task ids: bounded, printable, header-safe", () => {
    expect(TASK_ID_PATTERN.test("job-1/start@host:2")).toBe(true);
    expect(TASK_ID_PATTERN.test("has space")).toBe(false);
    expect(TASK_ID_PATTERN.test("x".repeat(201))).toBe(false);
  });

  it("request ids: any visible ASCII, no spaces or control characters", () => {
    expect(REQUEST_ID_PATTERN.test("01J9Z6-req+1=")).toBe(true);
    expect(REQUEST_ID_PATTERN.test("a b")).toBe(false);
    expect(REQUEST_ID_PATTERN.test("a\r\nx-evil: 1")).toBe(false);
    expect(REQUEST_ID_PATTERN.test("")).toBe(false);
  });

  it("command paths cannot climb or be empty", () => {
    expect(COMMAND_PATTERN.test("volume/task/status")).toBe(true);
    expect(COMMAND_PATTERN.test("../etc/passwd")).toBe(false);
    expect(COMMAND_PATTERN.test("vm//start")).toBe(false);
  });
});

describe("error body", () => {
  it("reads the agent's code and message", () => {
    expect(parseAgentError(JSON.stringify({ error: { code: "VM_NOT_FOUND", message: "vm v not found" } }), 404)).toEqual({ code: "VM_NOT_FOUND", message: "vm v not found" });
  });

  it("falls back to the raw text or the status when the answer is not an error body", () => {
    expect(parseAgentError("<html>Bad Gateway</html>", 502)).toEqual({ code: undefined, message: "HTTP 502: <html>Bad Gateway</html>" });
    expect(parseAgentError("", 500)).toEqual({ code: undefined, message: "HTTP 500" });
    expect(parseAgentError(JSON.stringify({ error: { code: 7 } }), 500).code).toBeUndefined();
  });
});
