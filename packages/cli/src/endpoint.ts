/**
 * Where the compute API is. In order: `--endpoint`, `$STRATUM_ENDPOINT`, the devstack's
 * `.data/devstack/endpoints.json` under the repository root (written by `pnpm start`, so the CLI
 * finds a devstack on random ports with no configuration), then `127.0.0.1:7101`.
 *
 * Each source may name several replicas (`a:7101,b:7102`; the endpoints file lists every compute
 * replica). Any replica serves any request — it forwards to the resource's owner — so when the
 * addresses are IP literals the CLI hands them all to gRPC's `pick_first` balancer
 * (`ipv4:a,b`), which uses the first one that accepts a connection: one replica being down does
 * not break the CLI. Host names cannot be combined in one gRPC target, so with names only the
 * first address is used.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./usage-error";

export const DEFAULT_ENDPOINT = "127.0.0.1:7101";
export const ENDPOINT_ENV = "STRATUM_ENDPOINT";
/** The devstack's endpoints file, relative to the repository root. */
export const ENDPOINTS_FILE = join(".data", "devstack", "endpoints.json");

/** The repository this CLI lives in (packages/cli/src → three levels up). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface Endpoint {
  /** The gRPC target to dial. */
  readonly target: string;
  /** The address(es) as the user should read them in messages. */
  readonly display: string;
  /** Where it came from, for messages that tell the user what to change. */
  readonly source: "--endpoint" | typeof ENDPOINT_ENV | "devstack" | "default";
}

export interface EndpointSources {
  flag?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  repoRoot: string;
}

const IPV4_ADDRESS = /^(\d{1,3}\.){3}\d{1,3}:\d+$/;
const IPV6_ADDRESS = /^\[[0-9a-fA-F:.]+\]:\d+$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/;
/** A full gRPC target (`dns:///h:1`, `unix:/path`, `ipv4:…`): passed through untouched. */
const TARGET_WITH_SCHEME = /^(dns|unix|unix-abstract|ipv4|ipv6|vsock):/;

/** Turns a list of `host:port` addresses into one gRPC target (see the module comment). */
export function targetFor(addresses: readonly string[], source: Endpoint["source"]): Endpoint {
  const first = addresses[0];
  if (first === undefined) throw new UsageError(`${describeSource(source)} names no address`);
  if (addresses.length === 1 && TARGET_WITH_SCHEME.test(first)) return { target: first, display: first, source };
  for (const address of addresses) {
    const match = HOST_PORT.exec(address);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535) throw new UsageError(`${describeSource(source)}: "${address}" is not HOST:PORT`);
  }
  if (addresses.length === 1) return { target: first, display: first, source };
  if (addresses.every((a) => IPV4_ADDRESS.test(a))) return { target: `ipv4:${addresses.join(",")}`, display: addresses.join(","), source };
  if (addresses.every((a) => IPV6_ADDRESS.test(a))) return { target: `ipv6:${addresses.join(",")}`, display: addresses.join(","), source };
  return { target: first, display: first, source };
}

function describeSource(source: Endpoint["source"]): string {
  switch (source) {
    case "--endpoint":
      return "--endpoint";
    case ENDPOINT_ENV:
      return `$${ENDPOINT_ENV}`;
    case "devstack":
      return ENDPOINTS_FILE;
    case "default":
      return "the default endpoint";
  }
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The compute addresses in the devstack's endpoints file, or undefined when there is no file. */
function devstackAddresses(repoRoot: string): string[] | undefined {
  const path = join(repoRoot, ENDPOINTS_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const compute = typeof parsed === "object" && parsed !== null ? (parsed as { compute?: unknown }).compute : undefined;
  if (!Array.isArray(compute) || !compute.every((a): a is string => typeof a === "string")) {
    throw new UsageError(`${path} has no "compute" list of addresses (expected {"compute": ["127.0.0.1:7101", …]})`);
  }
  return compute;
}

/** Resolves the compute endpoint from the sources, in priority order. */
export function resolveEndpoint(sources: EndpointSources): Endpoint {
  if (sources.flag !== undefined) return targetFor(splitList(sources.flag), "--endpoint");
  const env = sources.env[ENDPOINT_ENV];
  if (env !== undefined && env.trim() !== "") return targetFor(splitList(env), ENDPOINT_ENV);
  const devstack = devstackAddresses(sources.repoRoot);
  if (devstack !== undefined) return targetFor(devstack, "devstack");
  return targetFor([DEFAULT_ENDPOINT], "default");
}
