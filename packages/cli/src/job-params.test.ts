import { describe, expect, it } from "vitest";
import { paramValue, parseJobParams } from "./job-params";
import { UsageError } from "./usage-error";

describe("paramValue", () => {
  it("reads JSON numbers and booleans, and keeps everything else as text", () => {
    expect(paramValue("3000")).toBe(3000);
    expect(paramValue("-1.5e3")).toBe(-1500);
    expect(paramValue("true")).toBe(true);
    expect(paramValue("false")).toBe(false);
    expect(paramValue("0x10")).toBe("0x10");
    expect(paramValue("007")).toBe("007");
    expect(paramValue("True")).toBe("True");
    expect(paramValue("")).toBe("");
    expect(paramValue("a=b")).toBe("a=b");
  });
});

describe("parseJobParams", () => {
  it("merges --param pairs with --params-json", () => {
    expect(parseJobParams(["durationMs=500", "label=x=y"], '{"steps": 3, "tags": ["a"]}', "job submit")).toEqual({ steps: 3, tags: ["a"], durationMs: 500, label: "x=y" });
    expect(parseJobParams([], undefined, "job submit")).toEqual({});
  });

  it.each([
    [["durationMs"], undefined, /^invalid --param "durationMs": must be KEY=VALUE$/],
    [["=5"], undefined, /^invalid --param "=5": must be KEY=VALUE$/],
    [["steps=1", "steps=2"], undefined, /^parameter "steps" given more than once$/],
    [["steps=1"], '{"steps": 2}', /^parameter "steps" given both by --param and in --params-json$/],
    [[], "{steps: 2}", /^invalid --params-json: /],
    [[], "[1]", /^invalid --params-json: must be a JSON object/],
    [[], "null", /^invalid --params-json: must be a JSON object/],
  ])("%j %s is a usage error", (pairs, json, message) => {
    let error: unknown;
    try {
      parseJobParams(pairs, json, "job submit");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(message);
    expect((error as UsageError).helpCommand).toBe("job submit");
  });
});
