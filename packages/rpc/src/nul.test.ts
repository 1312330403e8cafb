import { create } from "@bufbuild/protobuf";
import { Code } from "@stratum/core";
import { ConcatRequestSchema, FailRequestSchema } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { afterEach, describe, expect, it } from "vitest";
import { nulStringViolations } from "./codec";
import { Harness, rejection } from "./echo.fixture";

const h = new Harness();
afterEach(() => h.close());

describe("NUL in request strings", () => {
  it("is INVALID_ARGUMENT naming every field, nested, repeated and in maps, and the handler never runs", async () => {
    let called = false;
    const server = await h.server({
      fail() {
        called = true;
        return {};
      },
    });
    const err = await rejection(
      h.client(server.address).fail({
        reason: "R\u0000",
        message: "fine",
        resources: { vm: "a\u0000b", "k\u0000": "ok", host: "clean" },
        violations: [{ field: "ok", description: "ok" }, { field: "x\u0000", description: "\u0000" }],
      }),
    );
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.violations.map((v) => v.field).sort()).toEqual(['resources["k\\u0000"]', 'resources["vm"]', "reason", "violations[1].description", "violations[1].field"].sort());
    expect(err.violations.find((v) => v.field === "reason")?.description).toBe("must not contain the NUL character (U+0000)");
    expect(err.violations.find((v) => v.field === 'resources["k\\u0000"]')?.description).toBe("map key must not contain the NUL character (U+0000)");
    expect(called).toBe(false);
  });

  it("is checked on every message of a client stream", async () => {
    const server = await h.server();
    const concat = h.concatClient(server.address);
    async function* requests() {
      yield { message: "a" };
      yield { message: "b\u0000" };
    }
    const err = await rejection(concat.concat(requests()));
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.violations).toEqual([{ field: "message", description: "must not contain the NUL character (U+0000)" }]);
  });

  it("passes strings without NUL, including other control characters and non-ASCII", async () => {
    const server = await h.server();
    const res = await h.client(server.address).echo({ message: "tab\there ünïcode \u0001" });
    expect(res.message).toBe("tab\there ünïcode \u0001");
    expect(nulStringViolations(FailRequestSchema, create(FailRequestSchema, { resources: { a: "b" }, violations: [{ field: "f" }] }))).toEqual([]);
    expect(nulStringViolations(ConcatRequestSchema, create(ConcatRequestSchema, { message: "\u0000" }))).toHaveLength(1);
  });
});
