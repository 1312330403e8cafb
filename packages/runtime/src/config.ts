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
}

/**
 * The environment variables a service reads, with their defaults. The defaults are the devstack's
 * embedded NATS and Postgres ports, so a replica started by hand next to `pnpm start` just works.
 */
export const ENV = {
  STRATUM_REPLICA_ID: "this replica's id (default: <service>-<hostname>)",
  STRATUM_GRPC_HOST: "bind address (default 0.0.0.0)",
  STRATUM_GRPC_PORT: "gRPC port (default 0: any free port)",
  STRATUM_ADVERTISE_HOST: "host others reach this replica on (default 127.0.0.1, or $POD_IP)",
  NATS_URL: "NATS server (default nats://127.0.0.1:4222)",
  DATABASE_URL: "PostgreSQL (default postgres://postgres@127.0.0.1:5432/stratum)",
  STRATUM_BUS_PREFIX: "namespace of NATS streams, buckets and subjects (default none)",
  STRATUM_HEARTBEAT_MS: "membership heartbeat period (default 1000)",
  STRATUM_CONNECT_TIMEOUT_MS: "how long to wait for Postgres and NATS at start (default 30000)",
  STRATUM_DB_POOL_SIZE: "Postgres connections per replica (default 32)",
} as const;

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Postgres connections per replica. A replica keeps hundreds of operations in flight, each a few
 * short statements; with too few connections they queue in the client while Postgres idles.
 * Mind `max_connections` (the devstack's Postgres allows 300) when running many replicas.
 */
export const DEFAULT_DB_POOL_SIZE = 32;

/**
 * Reads and validates the configuration. Every bad variable is reported at once, by name, in one
 * INVALID_ARGUMENT error, so a misconfigured pod says what to fix instead of crash-looping.
 */
export function configFromEnv(service: string, env: Readonly<Record<string, string | undefined>> = process.env): ServiceConfig {
  const violations: FieldViolation[] = [];
  const bad = (field: string, description: string) => violations.push({ field, description });
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) bad(name, `must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return n;
  };
  const url = (name: string, fallback: string, protocols: string[]): string => {
    const raw = env[name] || fallback;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) bad(name, `must be a ${protocols.join(" or ")} URL, got ${parsed.protocol}`);
    } catch {
      bad(name, `must be a URL, got ${JSON.stringify(raw)}`);
    }
    return raw;
  };
  const replicaId = env.STRATUM_REPLICA_ID || `${service}-${hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`.slice(0, 64);
  if (!TOKEN.test(replicaId)) bad("STRATUM_REPLICA_ID", `must match ${TOKEN}, got ${JSON.stringify(replicaId)}`);
  const busPrefix = env.STRATUM_BUS_PREFIX ?? "";
  if (busPrefix && !TOKEN.test(busPrefix)) bad("STRATUM_BUS_PREFIX", `must match ${TOKEN}, got ${JSON.stringify(busPrefix)}`);
  const config: ServiceConfig = {
    service,
    replicaId,
    host: env.STRATUM_GRPC_HOST || "0.0.0.0",
    port: int("STRATUM_GRPC_PORT", 0, 0, 65535),
    advertiseHost: env.STRATUM_ADVERTISE_HOST || env.POD_IP || "127.0.0.1",
    natsUrl: url("NATS_URL", "nats://127.0.0.1:4222", ["nats:", "tls:"]),
    databaseUrl: url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stratum", ["postgres:", "postgresql:"]),
    busPrefix,
    heartbeatMs: int("STRATUM_HEARTBEAT_MS", 1_000, 50, 60_000),
    connectTimeoutMs: int("STRATUM_CONNECT_TIMEOUT_MS", 30_000, 100, 3_600_000),
    dbPoolSize: int("STRATUM_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE, 1, 1_000),
  };
  if (violations.length > 0) {
    const summary = violations.map((v) => `${v.field} ${v.description}`).join("; ");
    throw new StratumError(Code.INVALID_ARGUMENT, `invalid ${service} configuration: ${summary}`, { reason: "INVALID_CONFIGURATION", violations });
  }
  return config;
}
