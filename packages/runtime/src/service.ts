import { getTableName, is } from "drizzle-orm";
import { PgTable, pgSchema } from "drizzle-orm/pg-core";
import { EventBus, Membership, MembershipView, ServiceRouters, connectBus, type Bus } from "@stratum/bus";
import { ChainTaskQueue } from "@stratum/chain-task";
import { connect, migrate, requestsTable, type DbHandle, type LeasesTable } from "@stratum/db";
import { createLogger, createServer, ServingStatus, type Logger, type ServerInterceptor, type StratumServer } from "@stratum/rpc";
import { errorMessage, StratumError, type FieldViolation } from "@stratum/core";
import { readEnv, type EnvSpec, type EnvValues, type ServiceConfig } from "./config";
import { createReplicaMetrics, pgBackendsInUse, startMetricsServer, type ReplicaMetrics } from "@stratum/metrics";
import { precompileRules, sharedValidator } from "@stratum/validation";
import type { ServiceApi } from "./serving/api";
import { servingChain, type ProtoValidator } from "./serving/chain";
import { sweepRequests } from "./serving/idempotency";
import { OutboxRelay } from "./outbox-relay";
import { LEASE_TTL_HEARTBEATS, LeaseKeeper } from "./lease";
import { ownershipOf, type Ownership } from "./ownership";
import { DEFAULT_TASK_TIMEOUT_MS } from "./shutdown";
import { LIVENESS_SERVICE, natsCheck, postgresCheck, ReadinessWatcher } from "./readiness";

/** How often a replica forgets request outcomes past their retention. */
const REQUEST_SWEEP_INTERVAL_MS = 3_600_000;

/** What the runtime hands a service's domain: every shared facility, already connected. */
export interface ServiceContext<TTables extends Record<string, unknown> = Record<string, unknown>, TEnv extends EnvSpec = EnvSpec> {
  readonly config: ServiceConfig;
  /** The service's own settings, read from the variables its module declares (`env`). */
  readonly settings: EnvValues<TEnv>;
  readonly db: DbHandle<TTables>;
  readonly bus: Bus;
  readonly events: EventBus;
  /** Live replicas of every service, with their rings. */
  readonly view: MembershipView;
  /**
   * Clients to another service's replicas (or this one's), picked by resource UUID on its ring:
   * `ctx.peers("longjob").for(LongJobService).call(jobUuid, (c) => …)`. Closed at shutdown.
   */
  peers(service: string): ServiceRouters;
  /** This replica's own membership, once it has joined (after its server listens). */
  membership(): Membership | undefined;
  /** What this replica owns, its incarnation, and who else is alive: for takeover. */
  readonly ownership: Ownership;
  /** The replica's chain-task queue: every mutation of a resource runs in it, under the resource's signature. */
  readonly queue: ChainTaskQueue;
  readonly log: Logger;
  /** The replica's metrics; `metrics.onAgentCall` is the agent client's `onCall`. */
  readonly metrics: ReplicaMetrics;
  /**
   * Call after committing rows into the service's outbox (`outboxTable`): the replica's relay
   * publishes them at once instead of at its next interval.
   */
  readonly eventsWritten: () => void;
}

/** One domain service, as the runtime sees it. */
export interface ServiceModule<TTables extends Record<string, unknown> = Record<string, unknown>, TEnv extends EnvSpec = EnvSpec> {
  /** Membership name and Postgres schema, e.g. `compute`. */
  readonly name: string;
  /**
   * The service's own environment variables, read and checked with the runtime's (all bad ones
   * reported at once). Their values reach `setup` as `ctx.settings`.
   */
  readonly env?: TEnv;
  /** drizzle-kit output folder of the service, applied at start. */
  readonly migrationsFolder: string;
  readonly tables?: TTables;
  /**
   * Execution timeout of chain tasks: a task that never ends must not block its resource for
   * ever. Also how long a stop waits for running operations (see `shutdownBudget`). Default 2 min.
   */
  readonly taskTimeoutMs?: number;
  setup(ctx: ServiceContext<TTables, TEnv>): Promise<ServiceParts> | ServiceParts;
}

/** What a service's setup returns. */
export interface ServiceParts {
  /** The gRPC services, each with its methods' rules (see `serviceApi`). */
  readonly services: readonly ServiceApi[];
  /**
   * Who the caller is, for a service whose callers are tenants (broker): an interceptor run after
   * error conversion and before validation, so an unauthenticated call is refused before anything
   * else looks at it. It decides itself which services it guards (peers' internal calls pass).
   */
  readonly auth?: ServerInterceptor;
  /** Runs once the replica is in the ring (background work: pings, takeovers). */
  start?(): Promise<void> | void;
  /**
   * Runs at shutdown once the replica is off the ring, before the queue waits for its running
   * tasks: work that would outlast any drain (a long job) hands itself over here (see JobExecutor).
   */
  drain?(): Promise<void> | void;
  /** Runs at shutdown after the calls in flight drained and the queue finished its running tasks. */
  stop?(): Promise<void> | void;
}

export interface RunningService<TTables extends Record<string, unknown> = Record<string, unknown>> {
  readonly ctx: ServiceContext<TTables>;
  readonly server: StratumServer;
  /** `host:port` others reach this replica on. */
  readonly address: string;
  /** Its Prometheus endpoint, `http://host:port/metrics`. */
  readonly metricsUrl: string;
  /** Leaves the ring, drains calls, closes NATS and Postgres. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts one replica in the order that keeps it correct: Postgres and migrations first (a
 * replica never serves an old schema), then NATS, then the gRPC server, and only then joins the
 * ring, so no call is routed to it before it can answer. Shutdown runs the other way round:
 * leave the ring first so callers re-route, then drain.
 */
/** What a replica is started with besides its module and config. */
export interface StartOptions<TEnv extends EnvSpec = EnvSpec> {
  /** The service's settings; default: read from the process environment with the module's `env`. */
  settings?: EnvValues<TEnv>;
  /** Checks of the limits declared in the proto. Default: protovalidate (`@stratum/validation`). */
  protoValidator?: ProtoValidator;
  /** Interceptors that observe every call (metrics), outside the kit's own. */
  observers?: readonly ServerInterceptor[];
}

export async function startService<TTables extends Record<string, unknown>, TEnv extends EnvSpec = EnvSpec>(
  module: ServiceModule<TTables, TEnv>,
  config: ServiceConfig,
  options: StartOptions<TEnv> = {},
): Promise<RunningService<TTables>> {
  const log = createLogger({ service: config.service, replicaId: config.replicaId });
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (e) {
        log.warn("shutdown step failed", { error: errorMessage(e) });
      }
    }
  };
  try {
    const applicationName = `${config.service}/${config.replicaId}`;
    const db = await connect<TTables>({ url: config.databaseUrl, schema: module.name, ...(module.tables ? { tables: module.tables } : {}), applicationName, connectTimeoutMs: config.connectTimeoutMs, max: config.dbPoolSize });
    closers.push(() => db.close());
    await migrate(db, { migrationsFolder: module.migrationsFolder });

    const bus = await connectBus({ servers: config.natsUrl, name: `${config.service}/${config.replicaId}`, prefix: config.busPrefix, connectTimeoutMs: config.connectTimeoutMs, replicas: config.natsReplicas ?? 1 });
    closers.push(() => bus.close());
    const view = await MembershipView.open(bus, { heartbeatMs: config.heartbeatMs });
    closers.push(() => view.close());
    const events = await EventBus.open(bus);
    const queue = new ChainTaskQueue({ executionTimeoutMs: module.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS });
    const metrics = createReplicaMetrics({ service: config.service, replicaId: config.replicaId, queue, view, dbInUse: pgBackendsInUse(db.sql, applicationName), dbPoolMax: config.dbPoolSize });
    closers.push(() => metrics.close());
    const metricsServer = await startMetricsServer({ host: config.host, port: config.metricsPort ?? 0, registry: metrics.registry });
    closers.push(() => metricsServer.close());

    let membership: Membership | undefined;
    const settings = options.settings ?? (readModuleEnv(module) as EnvValues<TEnv>);
    const relay = hasOutbox(module.tables) ? new OutboxRelay({ sql: db.sql, schema: module.name, events, log }) : undefined;
    const eventsWritten = () => relay?.kick();
    // The incarnation is fixed before anything is written: the lease, every row's actor and the
    // membership entry all name the same `<replicaId>@<startedAt>`.
    const startedAt = Date.now();
    const leases = tableNamed<LeasesTable>(module.tables, "leases");
    const lease = leases
      ? new LeaseKeeper({ sql: db.sql, leases, holder: `${config.replicaId}@${startedAt}`, replicaId: config.replicaId, renewMs: config.heartbeatMs, ttlMs: config.heartbeatMs * LEASE_TTL_HEARTBEATS, log })
      : undefined;
    const ownership = ownershipOf(config.service, config.replicaId, startedAt, view, () => membership);
    const peerRouters = new Map<string, ServiceRouters>();
    closers.push(() => {
      for (const r of peerRouters.values()) r.close();
    });
    const peers = (service: string) => {
      let r = peerRouters.get(service);
      if (!r) peerRouters.set(service, (r = new ServiceRouters(view, service)));
      return r;
    };
    const ctx: ServiceContext<TTables, TEnv> = { config, settings, db, bus, events, view, peers, membership: () => membership, ownership, queue, log, metrics, eventsWritten };
    const parts = await module.setup(ctx);
    const routers = new ServiceRouters(view, config.service);
    closers.push(() => routers.close());
    // Gone from the membership only once its queued work is done and its events are out (below).
    closers.push(() => membership?.leave());
    // The lease goes with the last write: nothing of this replica's is left for anyone to take over.
    if (lease) closers.push(() => lease.release());
    // The domain's own resources (agent clients…) close after its queued work has finished.
    if (parts.stop) closers.push(() => parts.stop?.());
    // After the queue's last operations wrote their events: publish them, then let NATS close.
    if (relay) closers.push(async () => {
      await relay.drain();
      await relay.stop();
    });
    // Refuses what is still waiting and lets running operations finish, before their clients close.
    closers.push(() => queue.close());
    if (parts.drain) closers.push(() => parts.drain?.());

    const requests = requestsTable(pgSchema(module.name));
    // Compiling a message type's rules takes tens of ms: done now, not on a caller's first request.
    const protoValidator = options.protoValidator ?? sharedValidator();
    precompileRules(parts.services.map((api) => api.registration.service), protoValidator);
    const interceptors = servingChain({
      serviceName: config.service,
      apis: parts.services,
      membership: () => membership,
      routers,
      db: db.db as never,
      requests,
      protoValidator,
      observers: [metrics.rpcInterceptor, ...(options.observers ?? [])],
      ...(parts.auth ? { auth: parts.auth } : {}),
      holder: { self: ownership.incarnation, isLive: ownership.isLive, ...(leases ? { leases } : {}) },
      ...(module.taskTimeoutMs !== undefined ? { staleRequestMs: 2 * module.taskTimeoutMs } : {}),
    });
    const registrations = parts.services.map((api) => api.registration);
    // Not in the ring yet: a probe must not send traffic before the replica has joined.
    const server = await createServer({ host: config.host, port: config.port, services: registrations, interceptors, logger: log, initialHealth: ServingStatus.NOT_SERVING });
    closers.push(() => server.shutdown());
    server.health.set(LIVENESS_SERVICE, ServingStatus.SERVING); // liveness: listening, whatever Postgres and NATS do
    const setServing = (status: ServingStatus) => {
      server.health.set("", status);
      for (const { service } of registrations) server.health.set(service.typeName, status);
    };
    const address = `${config.advertiseHost}:${server.port}`;
    // Held before the replica is on the ring, so its first write as owner passes the fence.
    await lease?.acquire();
    membership = await Membership.join(view, { service: config.service, replicaId: config.replicaId, address, startedAt });
    const joined = membership;
    // First on stop: off the ring (callers re-route at once), but alive until drained.
    closers.push(() => joined.drain());
    await relay?.start();
    await parts.start?.();
    setServing(ServingStatus.SERVING);
    const readiness = new ReadinessWatcher({ checks: [postgresCheck(db.sql), natsCheck(bus.nc)], setServing: (ok) => setServing(ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING), log });
    readiness.start();
    closers.push(() => readiness.stop());
    if (parts.services.some((api) => [...api.rules.values()].some((r) => r.requestId))) {
      const sweep = () => sweepRequests(db.db as never, requests).catch((e) => log.warn("request sweep failed", { error: errorMessage(e) }));
      void sweep();
      const timer = setInterval(sweep, REQUEST_SWEEP_INTERVAL_MS);
      timer.unref();
      closers.push(() => clearInterval(timer));
    }

    let stopping: Promise<void> | undefined;
    return {
      ctx,
      server,
      address,
      metricsUrl: metricsServer.url.replace(/\/\/(0\.0\.0\.0|\[::\])(?=:)/, `//${config.advertiseHost}`),
      // NOT_SERVING, leave the ring (callers re-route at once), drain the calls in flight, close
      // the queue (running operations finish), the domain's resources, NATS, Postgres.
      stop: () => (stopping ??= (async () => {
        void readiness.stop(); // synchronously: no round turns it SERVING again; closeAll awaits the round
        setServing(ServingStatus.NOT_SERVING);
        await closeAll();
      })()),
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** The module's settings from the process environment (tests pass `settings` instead). */
function readModuleEnv(module: ServiceModule<any, any>): EnvValues<EnvSpec> {
  const violations: FieldViolation[] = [];
  const settings = readEnv(module.env ?? {}, process.env, violations);
  if (violations.length > 0) throw StratumError.invalidArgument(violations);
  return settings;
}

/** True when the service's schema has the kit's outbox (`outboxTable`), whose rows the runtime relays. */
function hasOutbox(tables: Record<string, unknown> | undefined): boolean {
  return tableNamed(tables, "outbox") !== undefined;
}

/** The service's kit table of that name (`outboxTable`, `leasesTable`), if its schema has one. */
function tableNamed<T extends PgTable>(tables: Record<string, unknown> | undefined, name: string): T | undefined {
  return Object.values(tables ?? {}).find((t) => is(t, PgTable) && getTableName(t) === name) as T | undefined;
}
