/**
 * Where each service's API is. For compute, in order: `--endpoint`, `$STRATUM_ENDPOINT`, the
 * devstack's `.data/devstack/endpoints.json` under the repository root (written by `pnpm start`,
 * so the CLI finds a devstack on random ports with no configuration; its `compute` list), then
 * `127.0.0.1:7101`. For longjob the same with `--longjob-endpoint`, `$STRATUM_LONGJOB_ENDPOINT`,
 * the file's `longjob` list and `127.0.0.1:7401` (the devstack's fixed port for longjob-0); for storage `--storage-endpoint`,
 * `$STRATUM_STORAGE_ENDPOINT`, the file's `storage` list and `127.0.0.1:7301`; for network (its L3
 * networks and elastic IPs) `--network-endpoint`, `$STRATUM_NETWORK_ENDPOINT`, the file's `network`
 * list and `127.0.0.1:7601`; for the broker `--broker-endpoint`, `$STRATUM_BROKER_ENDPOINT`, the
 * file's `broker` list and `127.0.0.1:7501` (and its bearer token: `resolveBrokerToken`). Each
 * service has its own sources because they are separate deployments: pointing compute elsewhere
 * must not silently move the jobs too.
 *
 * Each source may name several replicas (`a:7101,b:7102`; the endpoints file lists every
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
export const LONGJOB_ENDPOINT_ENV = "STRATUM_LONGJOB_ENDPOINT";
export const STORAGE_ENDPOINT_ENV = "STRATUM_STORAGE_ENDPOINT";
export const NETWORK_ENDPOINT_ENV = "STRATUM_NETWORK_ENDPOINT";
export const BROKER_ENDPOINT_ENV = "STRATUM_BROKER_ENDPOINT";
export const BROKER_TOKEN_ENV = "STRATUM_BROKER_TOKEN";

/** The services the CLI talks to; also their keys in the devstack's endpoints file. */
export type ServiceName = "compute" | "longjob" | "storage" | "network" | "broker";

/** Where one service's address may come from, highest priority first after the flag. */
export interface ServiceSources {
  /** The global flag (without `--`). */
  readonly flag: string;
  readonly env: string;
  readonly defaultAddress: string;
}

export const SERVICE_SOURCES: Readonly<Record<ServiceName, ServiceSources>> = {
  compute: { flag: "endpoint", env: ENDPOINT_ENV, defaultAddress: DEFAULT_ENDPOINT },
  longjob: { flag: "longjob-endpoint", env: LONGJOB_ENDPOINT_ENV, defaultAddress: "127.0.0.1:7401" },
  // The devstack's fixed port for storage-0 (service 2 of deploy/local: 7100 + 200 + 1), as deploy/ uses.
  storage: { flag: "storage-endpoint", env: STORAGE_ENDPOINT_ENV, defaultAddress: "127.0.0.1:7301" },
  // network-0's fixed port in the devstack (its port slot 5, clear of agent-sim's 7199–7299:
  // deploy/local/src/ports.ts), as deploy/ uses.
  network: { flag: "network-endpoint", env: NETWORK_ENDPOINT_ENV, defaultAddress: "127.0.0.1:7601" },
  // broker-0's fixed port in the devstack (its port slot 4), as deploy/ uses.
  broker: { flag: "broker-endpoint", env: BROKER_ENDPOINT_ENV, defaultAddress: "127.0.0.1:7501" },
};
/** The devstack's endpoints file, relative to the repository root. */
export const ENDPOINTS_FILE = join(".data", "devstack", "endpoints.json");

/** The repository this CLI lives in (packages/cli/src → three levels up). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface Endpoint {
  /** The service it serves (messages name it). */
  readonly service: ServiceName;
  /** The gRPC target to dial. */
  readonly target: string;
  /** The address(es) as the user should read them in messages. */
  readonly display: string;
  /** Where it came from, for messages that tell the user what to change: `--flag`, the env var's name, `devstack` or `default`. */
  readonly source: EndpointSource;
}

export type EndpointSource = `--${string}` | typeof ENDPOINT_ENV | typeof LONGJOB_ENDPOINT_ENV | typeof STORAGE_ENDPOINT_ENV | typeof NETWORK_ENDPOINT_ENV | typeof BROKER_ENDPOINT_ENV | "devstack" | "default";

export interface EndpointSources {
  /** Default: compute. */
  service?: ServiceName;
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
export function targetFor(addresses: readonly string[], source: EndpointSource, service: ServiceName = "compute"): Endpoint {
  const first = addresses[0];
  if (first === undefined) throw new UsageError(`${describeSource(source)} names no address`);
  if (addresses.length === 1 && TARGET_WITH_SCHEME.test(first)) return { service, target: first, display: first, source };
  for (const address of addresses) {
    const match = HOST_PORT.exec(address);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535) throw new UsageError(`${describeSource(source)}: "${address}" is not HOST:PORT`);
  }
  if (addresses.length === 1) return { service, target: first, display: first, source };
  if (addresses.every((a) => IPV4_ADDRESS.test(a))) return { service, target: `ipv4:${addresses.join(",")}`, display: addresses.join(","), source };
  if (addresses.every((a) => IPV6_ADDRESS.test(a))) return { service, target: `ipv6:${addresses.join(",")}`, display: addresses.join(","), source };
  return { service, target: first, display: first, source };
}

/** The source as the user would look for it: the flag, `$VAR`, the file. */
export function describeSource(source: EndpointSource): string {
  if (source === "devstack") return ENDPOINTS_FILE;
  if (source === "default") return "the default endpoint";
  if (source.startsWith("--")) return source;
  return `$${source}`;
}

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The devstack's endpoints file as an object, or undefined when there is none. */
function readDevstackFile(repoRoot: string): Record<string, unknown> | undefined {
  const path = join(repoRoot, ENDPOINTS_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
}

/**
 * The service's addresses in the devstack's endpoints file, or undefined when there is no file.
 * A file without the service's list is an error, not a fall-back to the default: that devstack
 * does not run the service, and dialling a default port would only fail later, less clearly.
 */
function devstackAddresses(repoRoot: string, service: ServiceName): string[] | undefined {
  const path = join(repoRoot, ENDPOINTS_FILE);
  const parsed = readDevstackFile(repoRoot);
  if (parsed === undefined) return undefined;
  const list = parsed[service];
  if (!Array.isArray(list) || !list.every((a): a is string => typeof a === "string")) {
    throw new UsageError(`${path} has no "${service}" list of addresses (expected {"${service}": ["${SERVICE_SOURCES[service].defaultAddress}", …]}); set $${SERVICE_SOURCES[service].env} to reach it elsewhere`);
  }
  return list;
}

/** Resolves a service's endpoint (compute by default) from the sources, in priority order. */
export function resolveEndpoint(sources: EndpointSources): Endpoint {
  const service = sources.service ?? "compute";
  const spec = SERVICE_SOURCES[service];
  if (sources.flag !== undefined) return targetFor(splitList(sources.flag), `--${spec.flag}`, service);
  const env = sources.env[spec.env];
  if (env !== undefined && env.trim() !== "") return targetFor(splitList(env), spec.env as EndpointSource, service);
  const devstack = devstackAddresses(sources.repoRoot, service);
  if (devstack !== undefined) return targetFor(devstack, "devstack", service);
  return targetFor([spec.defaultAddress], "default", service);
}

/** Where the broker's bearer token came from: `--token`, the env var, or the devstack's file. */
export type TokenSource = "--token" | typeof BROKER_TOKEN_ENV | "devstack";

export interface TokenSources {
  flag?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  repoRoot: string;
}

/**
 * The bearer token broker calls carry (the broker maps it to a tenant): `--token`, else
 * `$STRATUM_BROKER_TOKEN`, else the devstack's dev token (`brokerToken` in its endpoints file).
 * None is a usage error: a call without one is refused anyway, and the user learns where to put it.
 */
export function resolveBrokerToken(sources: TokenSources): { token: string; source: TokenSource } {
  const check = (token: string, source: TokenSource) => {
    if (!/^[\x21-\x7e]+$/.test(token)) throw new UsageError(`the broker token from ${source === "devstack" ? ENDPOINTS_FILE : source === "--token" ? "--token" : `$${source}`} must be printable ASCII without spaces`);
    return { token, source };
  };
  if (sources.flag !== undefined) return check(sources.flag, "--token");
  const env = sources.env[BROKER_TOKEN_ENV];
  if (env !== undefined && env.trim() !== "") return check(env.trim(), BROKER_TOKEN_ENV);
  const token = readDevstackFile(sources.repoRoot)?.brokerToken;
  if (typeof token === "string" && token !== "") return check(token, "devstack");
  throw new UsageError(`no broker token: pass --token TOKEN or set $${BROKER_TOKEN_ENV} (the devstack's dev token is in ${ENDPOINTS_FILE}, "brokerToken")`);
}
