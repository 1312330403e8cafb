import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_ENDPOINT, ENDPOINTS_FILE, resolveEndpoint, targetFor } from "./endpoint";
import { UsageError } from "./usage-error";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "stratumctl-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function writeDevstack(content: string): void {
  mkdirSync(join(root, ".data", "devstack"), { recursive: true });
  writeFileSync(join(root, ENDPOINTS_FILE), content);
}

describe("resolveEndpoint", () => {
  it("prefers --endpoint, then $STRATUM_ENDPOINT, then the devstack file, then the default", () => {
    writeDevstack(JSON.stringify({ nats: "nats://x", compute: ["127.0.0.1:7301"] }));
    const env = { STRATUM_ENDPOINT: "10.0.0.1:7000" };
    expect(resolveEndpoint({ flag: "10.0.0.2:7000", env, repoRoot: root })).toMatchObject({ target: "10.0.0.2:7000", source: "--endpoint" });
    expect(resolveEndpoint({ env, repoRoot: root })).toMatchObject({ target: "10.0.0.1:7000", source: "STRATUM_ENDPOINT" });
    expect(resolveEndpoint({ env: {}, repoRoot: root })).toMatchObject({ target: "127.0.0.1:7301", source: "devstack" });
    rmSync(join(root, ENDPOINTS_FILE));
    expect(resolveEndpoint({ env: {}, repoRoot: root })).toMatchObject({ target: DEFAULT_ENDPOINT, source: "default" });
  });

  it("ignores an empty $STRATUM_ENDPOINT", () => {
    expect(resolveEndpoint({ env: { STRATUM_ENDPOINT: " " }, repoRoot: root }).source).toBe("default");
  });

  it("dials every devstack replica through one pick_first target, so one replica down does not matter", () => {
    writeDevstack(JSON.stringify({ compute: ["127.0.0.1:7101", "127.0.0.1:7102"] }));
    expect(resolveEndpoint({ env: {}, repoRoot: root })).toEqual({ service: "compute", target: "ipv4:127.0.0.1:7101,127.0.0.1:7102", display: "127.0.0.1:7101,127.0.0.1:7102", source: "devstack" });
  });

  it("refuses a devstack file without a compute list, naming the file", () => {
    writeDevstack(JSON.stringify({ compute: "127.0.0.1:7101" }));
    expect(() => resolveEndpoint({ env: {}, repoRoot: root })).toThrow(/endpoints\.json has no "compute" list/);
    writeDevstack("{not json");
    expect(() => resolveEndpoint({ env: {}, repoRoot: root })).toThrow(UsageError);
  });
});

describe("resolveEndpoint for longjob", () => {
  it("has its own flag, variable and devstack list, so compute's settings never move the jobs", () => {
    writeDevstack(JSON.stringify({ compute: ["127.0.0.1:7101"], longjob: ["127.0.0.1:7401", "127.0.0.1:7402"] }));
    const env = { STRATUM_ENDPOINT: "10.0.0.1:7000", STRATUM_LONGJOB_ENDPOINT: "10.0.0.9:7400" };
    expect(resolveEndpoint({ service: "longjob", flag: "10.0.0.8:7400", env, repoRoot: root })).toEqual({ service: "longjob", target: "10.0.0.8:7400", display: "10.0.0.8:7400", source: "--longjob-endpoint" });
    expect(resolveEndpoint({ service: "longjob", env, repoRoot: root })).toMatchObject({ target: "10.0.0.9:7400", source: "STRATUM_LONGJOB_ENDPOINT" });
    expect(resolveEndpoint({ service: "longjob", env: { STRATUM_ENDPOINT: "10.0.0.1:7000" }, repoRoot: root })).toMatchObject({ target: "ipv4:127.0.0.1:7401,127.0.0.1:7402", source: "devstack" });
    rmSync(join(root, ENDPOINTS_FILE));
    expect(resolveEndpoint({ service: "longjob", env: { STRATUM_ENDPOINT: "10.0.0.1:7000" }, repoRoot: root })).toMatchObject({ target: "127.0.0.1:7401", source: "default" });
  });

  it("refuses a devstack file that runs no longjob, saying how to reach one elsewhere", () => {
    writeDevstack(JSON.stringify({ compute: ["127.0.0.1:7101"] }));
    expect(() => resolveEndpoint({ service: "longjob", env: {}, repoRoot: root })).toThrow(/has no "longjob" list of addresses .*set \$STRATUM_LONGJOB_ENDPOINT/);
  });

  it("names its own variable when the address is bad", () => {
    expect(() => resolveEndpoint({ service: "longjob", env: { STRATUM_LONGJOB_ENDPOINT: "nowhere" }, repoRoot: root })).toThrow('$STRATUM_LONGJOB_ENDPOINT: "nowhere" is not HOST:PORT');
  });
});

describe("targetFor", () => {
  it("keeps a single address, or a full gRPC target, as is", () => {
    expect(targetFor(["compute.internal:7000"], "--endpoint").target).toBe("compute.internal:7000");
    expect(targetFor(["dns:///compute:7000"], "--endpoint").target).toBe("dns:///compute:7000");
  });

  it("combines IPv6 literals too, but only the first of several host names", () => {
    expect(targetFor(["[::1]:1", "[::1]:2"], "--endpoint").target).toBe("ipv6:[::1]:1,[::1]:2");
    expect(targetFor(["a.example:1", "b.example:2"], "--endpoint")).toMatchObject({ target: "a.example:1", display: "a.example:1" });
  });

  it("refuses what is not HOST:PORT, naming the source", () => {
    expect(() => targetFor(["127.0.0.1"], "--endpoint")).toThrow('--endpoint: "127.0.0.1" is not HOST:PORT');
    expect(() => targetFor(["h:0"], "STRATUM_ENDPOINT")).toThrow('$STRATUM_ENDPOINT: "h:0" is not HOST:PORT');
    expect(() => targetFor([], "devstack")).toThrow(/names no address/);
  });
});
