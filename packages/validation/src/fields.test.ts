import { Violations } from "@stratum/core";
import { describe, expect, it } from "vitest";
import { enumField, nameField, pageSizeField, requestIdField, uuidField } from "./fields";
import { UUID_PATTERN, resourceUuid, uuidForRequest } from "./ids";

function run(rules: (v: Violations) => void): Record<string, string> {
  const v = new Violations();
  rules(v);
  return Object.fromEntries(v.violations.map((x) => [x.field, x.description]));
}

const UUID = "3f1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f";

describe("hand-written field checks, worded like the proto rules", () => {
  it.each([
    ["required uuid missing", (v: Violations) => uuidField(v, "uuid", "", true), { uuid: "is required" }],
    ["optional uuid missing", (v: Violations) => uuidField(v, "host_uuid", "", false), {}],
    ["uppercase uuid", (v: Violations) => uuidField(v, "uuid", UUID.toUpperCase(), false), { uuid: "must be a lowercase UUID" }],
    ["good uuid", (v: Violations) => uuidField(v, "uuid", UUID, true), {}],
    ["blank name", (v: Violations) => nameField(v, "name", "   "), { name: "is required" }],
    ["long name", (v: Violations) => nameField(v, "name", "n".repeat(129)), { name: "must be at most 128 characters" }],
    ["128 emoji are 128 characters", (v: Violations) => nameField(v, "name", "😀".repeat(128)), {}],
    ["no request id", (v: Violations) => requestIdField(v, "client_request_id", ""), {}],
    ["request id with a space", (v: Violations) => requestIdField(v, "client_request_id", "a b"), { client_request_id: "must be printable ASCII without spaces" }],
    ["long request id", (v: Violations) => requestIdField(v, "client_request_id", "r".repeat(129)), { client_request_id: "must be at most 128 characters" }],
    ["page size 1001", (v: Violations) => pageSizeField(v, "page_size", 1001), { page_size: "must be between 0 and 1000" }],
    ["page size 0", (v: Violations) => pageSizeField(v, "page_size", 0), {}],
  ] as const)("%s", (_, rules, expected) => {
    expect(run(rules)).toEqual(expected);
  });

  it("enumField maps known values, names unknown ones, and tells unset from required", () => {
    const known = new Map([[1, "enabled"]]);
    let out: string | undefined;
    expect(run((v) => (out = enumField(v, "state", 1, known, false)))).toEqual({});
    expect(out).toBe("enabled");
    expect(run((v) => enumField(v, "state", 7, known, true))).toEqual({ state: "unknown value 7" });
    expect(run((v) => enumField(v, "state", 0, known, false))).toEqual({ state: "is required" });
    expect(run((v) => enumField(v, "state", 0, known, true))).toEqual({});
  });
});

describe("uuidForRequest", () => {
  it("is the same v5 UUID compute derived before the move (stored ids depend on it)", () => {
    expect(uuidForRequest("vm", "req-1")).toBe("238f9719-36c8-5790-a417-2d77c3de94fe");
    expect(uuidForRequest("host", "add-1")).toBe("49f56dfe-4eb7-5f54-8e1b-46fc5366982d");
    expect(uuidForRequest("vm", "req-1")).toMatch(UUID_PATTERN);
  });

  it("resourceUuid keeps an explicit uuid, derives one from the request id, else picks a random one, changing nothing", () => {
    expect(resourceUuid("vm", { uuid: UUID, clientRequestId: "req-1" })).toBe(UUID);
    const req = { uuid: "", clientRequestId: "req-1" };
    expect(resourceUuid("vm", req)).toBe("238f9719-36c8-5790-a417-2d77c3de94fe");
    expect(req.uuid).toBe("");
    const a = resourceUuid("vm", { uuid: "", clientRequestId: "" });
    expect(a).toMatch(UUID_PATTERN);
    expect(resourceUuid("vm", { uuid: "", clientRequestId: "" })).not.toBe(a);
  });
});
