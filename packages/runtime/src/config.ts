import { hostname } from "node:os";
import { Code, StratumError, type FieldViolation } from "@stratum/core";

/** Everything a replica is told from outside, all from environment variables (12-factor, k8s-friendly). */
export interface ServiceConfig {
  /** Service name, e.g. `compute`: its membership name and its Postgres schema. */
  readonly service: string;
  /** Stable id of this replica. Durable NATS consumers are named after it, so keep it across restarts. */
  readonly replicaId: string;
  /** Interface the gRPC server binds. */
  readonly host: string;
  /** gRPC port; 0 picks a free one. */
  readonly port: number;
  /** Host other replicas and clients reach this one on (with the bound port). */
  readonly advertiseHost: string;
  readonly natsUrl: string;
  readonly databaseUrl: string;
  /** Namespace of streams, buckets and subjects; empty in production, one per test. */
  readonly busPrefix: string;
  /** Membership heartbeat period. */
  readonly heartbeatMs: number;
  /** How long to keep trying to reach Postgres and NATS at start before failing with a clear error. */
  readonly connectTimeoutMs: number;
  /** Postgres connections of this replica. */
  readonly dbPoolSize: number;
  /** Port of the Prometheus `/metrics` endpoint (on `host`); 0 picks a free one. Default 0. */
  readonly metricsPort?: number;
  /** Copies of each NATS stream and KV bucket (JetStream replicas). Default 1. */
  readonly natsReplicas?: number;
}

/**
 * One environment variable: what it means (with its default, for `--help`-like listings and the
 * deployment manifests) and how its raw value is read. `parse` reports a bad value through
 * `bad` and returns the default, so every bad variable of a replica is reported at once.
 */
export interface EnvVar<T> {
  readonly doc: string;
  parse(raw: string | undefined, bad: (description: string) => void): T;
}

/** A table of variables: the runtime's ({@link RUNTIME_ENV}) and each service's own. */
export type EnvSpec = Readonly<Record<string, EnvVar<unknown>>>;

/** The values of a table of variables, by name. */
export type EnvValues<E extends EnvSpec> = { readonly [K in keyof E]: E[K] extends EnvVar<infer T> ? T : never };

/** An integer variable within [min, max]. */
export function envInt(doc: string, fallback: number, min: number, max: number): EnvVar<number> {
  return {
    doc,
    parse(raw, bad) {
      if (raw === undefined || raw === "") return fallback;
      const n = Number(raw);
      if (!Number.isInteger(n) || n < min || n > max) {
        bad(`must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
        return fallback;
      }
      return n;
    },
  };
}

/** A URL variable with one of `protocols`. */
export function envUrl(doc: string, fallback: string, protocols: readonly string[]): EnvVar<string> {
  return {
    doc,
    parse(raw, bad) {
      const value = raw || fallback;
      try {
        const parsed = new URL(value);
        if (!protocols.includes(parsed.protocol)) bad(`must be a ${protocols.join(" or ")} URL, got ${parsed.protocol}`);
      } catch {
        bad(`must be a URL, got ${JSON.stringify(value)}`);
      }
      return value;
    },
  };
}

/** A string variable, optionally matching `pattern` when set. */
export function envString(doc: string, fallback: string, pattern?: RegExp): EnvVar<string> {
  return {
    doc,
    parse(raw, bad) {
      const value = raw || fallback;
      if (pattern && value && !pattern.test(value)) bad(`must match ${pattern}, got ${JSON.stringify(value)}`);
      return value;
    },
  };
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Postgres connections per replica. A replica keeps hundreds of operations in flight, each a few
 * short statements; with too few connections they queue in the client while Postgres idles.
 * Mind `max_connections` (the devstack's Postgres allows 300) when running many replicas.
 */
export const DEFAULT_DB_POOL_SIZE = 32;

/**
 * The variables every replica reads. The defaults are the devstack's embedded NATS and Postgres
 * ports, so a replica started by hand next to `pnpm start` just works.
 */
export const RUNTIME_ENV = {
  STRATUM_REPLICA_ID: envString("this replica's id (default: <service>-<hostname>)", "", TOKEN),
  STRATUM_GRPC_HOST: envString("bind address (default 0.0.0.0)", "0.0.0.0"),
  STRATUM_GRPC_PORT: envInt("gRPC port (default 0: any free port)", 0, 0, 65535),
  STRATUM_ADVERTISE_HOST: envString("host others reach this replica on (default 127.0.0.1, or $POD_IP)", ""),
  NATS_URL: envUrl("NATS server (default nats://127.0.0.1:4222)", "nats://127.0.0.1:4222", ["nats:", "tls:"]),
  DATABASE_URL: envUrl("PostgreSQL (default postgres://postgres@127.0.0.1:5432/stratum)", "postgres://postgres@127.0.0.1:5432/stratum", ["postgres:", "postgresql:"]),
  STRATUM_BUS_PREFIX: envString("namespace of NATS streams, buckets and subjects (default none)", "", TOKEN),
  STRATUM_HEARTBEAT_MS: envInt("membership heartbeat period (default 1000)", 1_000, 50, 60_000),
  STRATUM_CONNECT_TIMEOUT_MS: envInt("how long to wait for Postgres and NATS at start (default 30000)", 30_000, 100, 3_600_000),
  STRATUM_DB_POOL_SIZE: envInt(`Postgres connections per replica (default ${DEFAULT_DB_POOL_SIZE})`, DEFAULT_DB_POOL_SIZE, 1, 1_000),
  STRATUM_NATS_REPLICAS: envInt("copies of each NATS stream and KV bucket (default 1; 3 on a 3-node JetStream cluster)", 1, 1, 5),
  STRATUM_METRICS_PORT: envInt("Prometheus /metrics port (default 0: any free port, printed in the ready line)", 0, 0, 65535),
} as const satisfies EnvSpec;

/** What each runtime variable means, by name. */
export const ENV: Readonly<Record<keyof typeof RUNTIME_ENV, string>> = Object.fromEntries(Object.entries(RUNTIME_ENV).map(([k, v]) => [k, v.doc])) as never;

/**
 * Reads a table of variables, collecting every bad one into `violations` (by name).
 */
export function readEnv<E extends EnvSpec>(spec: E, env: Readonly<Record<string, string | undefined>>, violations: FieldViolation[]): EnvValues<E> {
  const values: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(spec)) values[name] = v.parse(env[name], (description) => violations.push({ field: name, description }));
  return values as EnvValues<E>;
}

/**
 * Reads and validates the configuration: the runtime's variables and the service's own
 * (`serviceEnv`, declared by its module), in one pass. Every bad variable is reported at once,
 * by name, in one INVALID_ARGUMENT error, so a misconfigured pod says what to fix instead of
 * crash-looping on one variable after another.
 */
export function configFromEnv(service: string, env: Readonly<Record<string, string | undefined>> = process.env): ServiceConfig {
  return loadConfig(service, {}, env).config;
}

/** {@link configFromEnv} plus the service's own settings. */
export function loadConfig<E extends EnvSpec>(service: string, serviceEnv: E, env: Readonly<Record<string, string | undefined>> = process.env): { config: ServiceConfig; settings: EnvValues<E> } {
  const violations: FieldViolation[] = [];
  for (const name of Object.keys(serviceEnv)) if (name in RUNTIME_ENV) throw new TypeError(`${service} declares ${name}, a runtime variable`);
  const r = readEnv(RUNTIME_ENV, env, violations);
  const settings = readEnv(serviceEnv, env, violations);
  const replicaId = r.STRATUM_REPLICA_ID || `${service}-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`.slice(0, 64);
  const config: ServiceConfig = {
    service,
    replicaId,
    host: r.STRATUM_GRPC_HOST,
    port: r.STRATUM_GRPC_PORT,
    advertiseHost: r.STRATUM_ADVERTISE_HOST || env.POD_IP || "127.0.0.1",
    natsUrl: r.NATS_URL,
    databaseUrl: r.DATABASE_URL,
    busPrefix: r.STRATUM_BUS_PREFIX,
    heartbeatMs: r.STRATUM_HEARTBEAT_MS,
    connectTimeoutMs: r.STRATUM_CONNECT_TIMEOUT_MS,
    dbPoolSize: r.STRATUM_DB_POOL_SIZE,
    metricsPort: r.STRATUM_METRICS_PORT,
    natsReplicas: r.STRATUM_NATS_REPLICAS,
  };
  if (violations.length > 0) {
    const summary = violations.map((v) => `${v.field} ${v.description}`).join("; ");
    throw new StratumError(Code.INVALID_ARGUMENT, `invalid ${service} configuration: ${summary}`, { reason: "INVALID_CONFIGURATION", violations });
  }
  return { config, settings };
}
