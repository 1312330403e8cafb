/**
 * `@stratum/runtime/testing`: starts one service's replicas the way production does — the same
 * `startService`, on a fresh database of the run's real Postgres and an own namespace on the
 * run's real nats-server (both from the vitest global setup) — with an agent simulator in front
 * when the service drives hosts. A service's integration tests then only add their clients.
 */
import { startAgentSim, type AgentSim, type AgentSimOptions } from "@stratum/agent-sim";
import { testDatabase, testNatsUrl, uniquePrefix } from "@stratum/testing";
import type { EnvSpec, EnvValues, ServiceConfig } from "./config";
import { startService, type RunningService, type ServiceModule, type StartOptions } from "./service";

export interface TestServiceOptions<TEnv extends EnvSpec> {
  /** Replicas to start. Default 1. */
  replicas?: number;
  /** Start an agent simulator first (its hosts are `sim.hosts`). */
  agentSim?: AgentSimOptions;
  /** The service's settings; default: its variables' defaults. */
  settings?: Partial<EnvValues<TEnv>>;
  /** Per replica, e.g. observers that count what a replica received. */
  startOptions?: (replica: number) => Omit<StartOptions<TEnv>, "settings">;
  /** A database of one's own (e.g. on a cluster the test halts); default: a fresh one on the run's Postgres. */
  databaseUrl?: string;
  /** A nats-server of one's own (e.g. one the test takes down); default: the run's. */
  natsUrl?: string;
  /** The NATS namespace: another stack's, so that services talk to each other; default a fresh one. */
  busPrefix?: string;
  /** Changes to each replica's config (heartbeat 200 ms, pool of 8 by default). */
  config?: (replica: number) => Partial<ServiceConfig>;
}

export interface TestService<TTables extends Record<string, unknown>> {
  readonly replicas: RunningService<TTables>[];
  readonly sim: AgentSim | undefined;
  readonly databaseUrl: string;
  readonly natsUrl: string;
  readonly busPrefix: string;
  /** Starts one more replica (the next index) and waits until every replica sees it. */
  addReplica(): Promise<RunningService<TTables>>;
  /** Stops every replica, then the simulator. */
  stop(): Promise<void>;
}

export async function startTestService<TTables extends Record<string, unknown>, TEnv extends EnvSpec>(
  module: ServiceModule<TTables, TEnv>,
  options: TestServiceOptions<TEnv> = {},
): Promise<TestService<TTables>> {
  const databaseUrl = options.databaseUrl ?? (await testDatabase(module.name));
  const natsUrl = options.natsUrl ?? (await testNatsUrl());
  const busPrefix = options.busPrefix ?? uniquePrefix(module.name.slice(0, 1));
  const sim = options.agentSim ? await startAgentSim(options.agentSim) : undefined;
  const defaults = Object.fromEntries(Object.entries(module.env ?? {}).map(([k, v]) => [k, v.parse(undefined, () => {})]));
  const settings = { ...defaults, ...options.settings } as EnvValues<TEnv>;
  const replicas: RunningService<TTables>[] = [];
  const start = async (i: number) => {
    const config: ServiceConfig = {
      service: module.name,
      replicaId: `${module.name}-${i}`,
      host: "127.0.0.1",
      port: 0,
      advertiseHost: "127.0.0.1",
      natsUrl,
      databaseUrl,
      busPrefix,
      heartbeatMs: 200,
      connectTimeoutMs: 10_000,
      dbPoolSize: 8,
      ...options.config?.(i),
    };
    const replica = await startService(module, config, { ...options.startOptions?.(i), settings });
    replicas.push(replica);
    for (const r of replicas) await r.ctx.view.until((v) => v.members(module.name).length === replicas.length);
    return replica;
  };
  try {
    for (let i = 0; i < (options.replicas ?? 1); i++) await start(i);
  } catch (e) {
    for (const r of replicas) await r.stop();
    await sim?.close();
    throw e;
  }
  return {
    replicas,
    sim,
    databaseUrl,
    natsUrl,
    busPrefix,
    addReplica: () => start(replicas.length),
    async stop() {
      for (const r of replicas) await r.stop();
      await sim?.close();
    },
  };
}

export { startChildReplica, kill9, exitOf, outputOf } from "./child-replica";
export type { ChildReplicaOptions } from "./child-replica";
