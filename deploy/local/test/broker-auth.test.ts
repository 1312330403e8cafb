import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { devBrokerAuth } from "../src/broker-auth";

describe("the devstack's broker auth file", () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), "stratum-broker-auth-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("is made once, readable by its owner only, in the broker's shape, and kept across restarts", () => {
    const d = dir();
    const first = devBrokerAuth(d);
    expect(first.tenant).toBe("dev");
    // The broker's Tenancy refuses tokens under 16 and passwords under 8 characters.
    expect(first.token.length).toBeGreaterThanOrEqual(16);
    expect(first.osbPassword.length).toBeGreaterThanOrEqual(8);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(first.file, "utf8"))).toEqual({
      tokens: [{ token: first.token, tenant: "dev" }],
      platforms: [{ username: "dev", password: first.osbPassword, tenant: "dev" }],
    });
    expect(devBrokerAuth(d)).toEqual(first);
    expect(devBrokerAuth(dir()).token).not.toBe(first.token);
  });

  it("replaces a file that has no dev identities", () => {
    const d = dir();
    writeFileSync(join(d, "broker-auth.json"), "{ not json");
    const made = devBrokerAuth(d);
    expect(JSON.parse(readFileSync(made.file, "utf8")).tokens[0].token).toBe(made.token);
  });
});
