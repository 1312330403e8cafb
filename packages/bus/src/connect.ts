import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Code, StratumError } from "@stratum/core";

export interface BusOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring (`compute/compute-0`). */
  name?: string;
  /**
   * Prefix of every stream, bucket and subject this bus creates. Tests give each file its own
   * so they can share one nats-server; production leaves the default.
   */
  prefix?: string;
  /** How long to keep trying to reach NATS at start before giving up with a clear error. */
  connectTimeoutMs?: number;
  /**
   * How many NATS servers keep a copy of each stream and KV bucket this bus creates (JetStream
   * `num_replicas`). Default 1, right for one server; 3 on a 3-node cluster, so a server's loss
   * loses no event, reply or heartbeat.
   */
  replicas?: number;
}

/** Default of {@link BusOptions.connectTimeoutMs}: long enough to ride out a NATS restart at boot. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** An open connection to NATS with JetStream, shared by events, job reports and membership. */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Namespace prefix; see {@link BusOptions.prefix}. */
  readonly prefix: string;
  /** Copies of every stream and bucket this bus creates; see {@link BusOptions.replicas}. */
  readonly replicas: number;
  close(): Promise<void>;
}

/**
 * Connects to NATS and checks JetStream is enabled. A dead NATS at start is retried for
 * `connectTimeoutMs` and then reported as one `NATS_UNAVAILABLE` error naming the servers, so a
 * service never crash-loops without saying why. Once connected, the client reconnects forever:
 * a NATS restart must not take the control plane down.
 */
export async function connectBus(options: BusOptions): Promise<Bus> {
  const servers = Array.isArray(options.servers) ? options.servers : [options.servers];
  const deadline = Date.now() + (options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  let nc: NatsConnection | undefined;
  let lastError: unknown;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      nc = await connect({
        servers,
        ...(options.name ? { name: options.name } : {}),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: Math.max(500, Math.min(5_000, deadline - Date.now())),
      });
      break;
    } catch (e) {
      lastError = e;
      if (Date.now() + delay >= deadline) break;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  if (!nc) {
    throw new StratumError(Code.UNAVAILABLE, `cannot connect to NATS at ${servers.join(", ")}: ${describe(lastError)}`, {
      reason: "NATS_UNAVAILABLE",
      cause: lastError,
    });
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (e) {
    await nc.close();
    throw new StratumError(Code.FAILED_PRECONDITION, `NATS at ${servers.join(", ")} has no JetStream: start nats-server with -js (${describe(e)})`, {
      reason: "JETSTREAM_DISABLED",
      cause: e,
    });
  }
  const js = jetstream(nc);
  const conn = nc;
  return {
    nc: conn,
    js,
    jsm,
    prefix: options.prefix ?? "",
    replicas: options.replicas ?? 1,
    async close() {
      if (!conn.isClosed()) await conn.drain().catch(() => conn.close());
    },
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) return (e as { code?: string }).code ? `${(e as { code?: string }).code}: ${e.message}` : e.message;
  return String(e);
}
