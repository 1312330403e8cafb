import { describe, expect, it } from "vitest";
import { Tenancy } from "./tenancy";

const t = new Tenancy({
  tokens: [{ token: "token-of-acme-0123456789", tenant: "acme" }],
  platforms: [{ username: "cf", password: "cf-password", tenant: "acme" }],
});
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

describe("Tenancy", () => {
  it("maps a known bearer token and basic-auth identity to their tenant, nothing else", () => {
    expect(t.bearer("Bearer token-of-acme-0123456789")).toBe("acme");
    expect(t.bearer("Bearer token-of-acme-012345678X")).toBeUndefined();
    expect(t.bearer(undefined)).toBeUndefined();
    expect(t.basic(basic("cf", "cf-password"))).toBe("acme");
    expect(t.basic(basic("cf", "cf-passwordX"))).toBeUndefined();
    expect(t.basic(basic("nobody", "cf-password"))).toBeUndefined();
    expect(t.basic("Basic !!!")).toBeUndefined();
  });

  it("reports every bad entry of an auth file at once", () => {
    expect(() => new Tenancy({ tokens: [{ token: "short", tenant: "a" }], platforms: [{ username: "a:b", password: "long-enough", tenant: "a" }, { username: "u", password: "pw", tenant: "a" }] })).toThrow(
      /tokens\[0\]\.token must be[\s\S]*platforms\[0\]\.username[\s\S]*platforms\[1\]\.password/,
    );
  });
});
