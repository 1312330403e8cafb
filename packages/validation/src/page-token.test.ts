import { Code, StratumError } from "@stratum/core";
import { describe, expect, it } from "vitest";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, canonicalJson, decodePageToken, encodePageToken, pageSize } from "./page-token";

function invalid(fn: () => unknown): StratumError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StratumError);
    expect((e as StratumError).code).toBe(Code.INVALID_ARGUMENT);
    return e as StratumError;
  }
  throw new Error("expected INVALID_ARGUMENT");
}

describe("page tokens", () => {
  const filters = { state: 3, hostUuid: "3f1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f", name: "web" };

  it("round-trip the position for the same filters, whatever the key order", () => {
    const token = encodePageToken(4711, filters);
    expect(decodePageToken(token, { name: "web", hostUuid: filters.hostUuid, state: 3 })).toBe(4711);
    expect(decodePageToken(encodePageToken(0, {}), {})).toBe(0);
  });

  it("no token is the first page", () => {
    expect(decodePageToken("", filters)).toBe(0);
  });

  it("are bound to the filters they were issued for", () => {
    const token = encodePageToken(10, filters);
    for (const other of [{ ...filters, state: 5 }, { ...filters, name: "db" }, { state: 3, hostUuid: filters.hostUuid }, {}]) {
      const err = invalid(() => decodePageToken(token, other));
      expect(err.violations).toEqual([{ field: "page_token", description: expect.stringContaining("was issued for other filters") }]);
    }
  });

  it("leave undefined filter members out, so an unset filter is the same as an absent one", () => {
    const token = encodePageToken(10, { state: 3, name: undefined });
    expect(decodePageToken(token, { state: 3 })).toBe(10);
  });

  it("name the field they came in", () => {
    const err = invalid(() => decodePageToken(encodePageToken(1, { a: 1 }), { a: 2 }, "next.page_token"));
    expect(err.violations[0]?.field).toBe("next.page_token");
  });

  it("refuse what is not one of ours, including the unbound v1 format", () => {
    const v1 = Buffer.from("v1:42").toString("base64url");
    for (const token of ["garbage", v1, Buffer.from("v2:42").toString("base64url"), Buffer.from("v2:-1:0123456789abcdef").toString("base64url"), Buffer.from(`v2:${"9".repeat(16)}:0123456789abcdef`).toString("base64url")]) {
      const err = invalid(() => decodePageToken(token, {}));
      expect(err.violations).toEqual([{ field: "page_token", description: "is not a token returned by a previous call" }]);
    }
  });

  it("carry a version tag and no filter values in clear", () => {
    const raw = Buffer.from(encodePageToken(7, { name: "secret-name" }), "base64url").toString();
    expect(raw).toMatch(/^v2:7:[0-9a-f]{16}$/);
  });

  it("cannot encode a position that would not decode", () => {
    expect(() => encodePageToken(-1, {})).toThrow(RangeError);
    expect(() => encodePageToken(1.5, {})).toThrow(RangeError);
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth and drops undefined members", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, "x"], c: true }, e: undefined, f: null, g: 5n })).toBe('{"a":{"c":true,"d":[1,"x"]},"b":1,"f":null,"g":"5"}');
  });
});

describe("pageSize", () => {
  it("defaults 0 to 100 and caps at 1000", () => {
    expect(pageSize(0)).toBe(DEFAULT_PAGE_SIZE);
    expect(DEFAULT_PAGE_SIZE).toBe(100);
    expect(pageSize(7)).toBe(7);
    expect(pageSize(5000)).toBe(MAX_PAGE_SIZE);
    expect(MAX_PAGE_SIZE).toBe(1000);
  });
});
