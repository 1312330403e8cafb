import { describe, expect, it } from "vitest";
import { Code } from "./code";
import { StratumError } from "./errors";
import { createLogger } from "./log";
import { runWithWork } from "./work-context";

function capture(level?: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const logger = createLogger({ service: "compute" }, { ...(level ? { level } : {}), sink: (l) => lines.push(l) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("log", () => {
  it("writes one JSON object per line with time, level, msg and the fields", () => {
    const { logger, lines, parsed } = capture();
    logger.info("vm started", { vmUuid: "v1", requestId: "r1" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain("\n");
    const [line] = parsed();
    expect(Object.keys(line!).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(line).toMatchObject({ level: "info", msg: "vm started", service: "compute", vmUuid: "v1", requestId: "r1" });
    expect(new Date(line!["time"] as string).toISOString()).toBe(line!["time"]);
  });

  it("child loggers add fields; fields cannot overwrite the envelope", () => {
    const { logger, parsed } = capture();
    logger.child({ requestId: "r2" }).child({ vmUuid: "v2" }).warn("slow", { level: "debug", msg: "x", time: "never" });
    expect(parsed()[0]).toMatchObject({ level: "warn", msg: "slow", service: "compute", requestId: "r2", vmUuid: "v2" });
    expect(parsed()[0]!["time"]).not.toBe("never");
  });

  it("drops lines below the level", () => {
    const { logger, parsed } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    expect(parsed().map((l) => l["msg"])).toEqual(["w", "e"]);
  });

  it("serializes errors (with code, reason and cause), bigints, bytes and cycles", () => {
    const { logger, parsed } = capture();
    const cycle: Record<string, unknown> = { a: 1 };
    cycle["self"] = cycle;
    const err = new StratumError(Code.NOT_FOUND, "vm v3 not found", { reason: "VM_NOT_FOUND", resources: { vmUuid: "v3" }, cause: new Error("row missing") });
    logger.error("failed", { err, size: 10n, bytes: new Uint8Array(4), cycle });
    const line = parsed()[0]!;
    expect(line["err"]).toMatchObject({ name: "StratumError", message: "vm v3 not found", code: Code.NOT_FOUND, reason: "VM_NOT_FOUND", resources: { vmUuid: "v3" }, cause: { message: "row missing" } });
    expect(line["size"]).toBe("10");
    expect(line["bytes"]).toBe("<4 bytes>");
    expect(line["cycle"]).toEqual({ a: 1, self: "[Circular]" });
  });

  it("prints an object referenced twice, not as a cycle", () => {
    const { logger, parsed } = capture();
    const err = new StratumError(Code.INTERNAL, "boom", { resources: { vmUuid: "v1" } });
    logger.error("failed", { resources: err.resources, err });
    const line = parsed()[0]!;
    expect(line["resources"]).toEqual({ vmUuid: "v1" });
    expect(line["err"]).toMatchObject({ resources: { vmUuid: "v1" } });
  });

  it("a line inside a work scope carries the work's requestId and fields; the line's own fields win", () => {
    const { logger, parsed } = capture();
    logger.info("outside");
    runWithWork({ requestId: "req-7", fields: { jobUuid: "j1", vmUuid: "v-work" } }, () => {
      logger.info("inside", { vmUuid: "v-line" });
      logger.child({ requestId: "req-forwarded" }).info("child sets its own");
      runWithWork({ requestId: "req-8" }, () => logger.warn("nested scope replaces the outer one"));
    });
    const [outside, inside, child, nested] = parsed();
    expect(outside).not.toHaveProperty("requestId");
    expect(inside).toMatchObject({ msg: "inside", requestId: "req-7", jobUuid: "j1", vmUuid: "v-line", service: "compute" });
    expect(Object.keys(inside!).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(child).toMatchObject({ requestId: "req-forwarded", jobUuid: "j1" });
    expect(nested).toMatchObject({ requestId: "req-8" });
    expect(nested).not.toHaveProperty("jobUuid");
  });

  it("a work scope's fields cannot overwrite the envelope", () => {
    const { logger, parsed } = capture();
    runWithWork({ fields: { msg: "x", level: "debug" } }, () => logger.error("real"));
    expect(parsed()[0]).toMatchObject({ msg: "real", level: "error" });
    expect(parsed()[0]).not.toHaveProperty("requestId");
  });

  it("carries the scope across awaits", async () => {
    const { logger, parsed } = capture();
    await runWithWork({ requestId: "req-9" }, async () => {
      await new Promise((r) => setImmediate(r));
      logger.info("later");
    });
    expect(parsed()[0]).toMatchObject({ requestId: "req-9" });
  });
});
