import postgres from "postgres";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerService, InstanceState, type Instance } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { bearerToken, closeClient, createClient, type Client } from "@stratum/rpc";
import { startTestService, type TestService } from "@stratum/runtime/testing";
import { startNetworkStack, type NetworkStack, type NetworkStackOptions } from "../../network/test/stack";
import { brokerModule } from "../src/module";
import type { tables } from "../src/store/schema";

export const SERVICE_ID = "a3c7e0d2-5b1f-4c7e-9a10-6f2b8d4e1c01";
export const SMALL = "vm-small";

/** Two tenants, each with a gRPC token and an OSB platform identity. */
export const TENANTS = {
  acme: { token: "acme-token-0123456789abcdef", username: "acme-cf", password: "acme-secret-1" },
  globex: { token: "globex-token-0123456789abcdef", username: "globex-k8s", password: "globex-secret-1" },
} as const;
export type TenantName = keyof typeof TENANTS;

export interface BrokerStackOptions extends NetworkStackOptions {
  /** Broker replicas. Default 2. */
  brokerReplicas?: number;
}

export interface BrokerStack {
  net: NetworkStack;
  broker: TestService<typeof tables>;
  /** The OSB base URL of each broker replica, by replica index. */
  osb: string[];
  /** The stack's database (every service's schema), for assertions on what was recorded. */
  sql: postgres.Sql;
  /** The auth file the replicas read (for a child replica started beside them). */
  authFile: string;
  /** A BrokerService client of replica `replica` that calls as `tenant` (no token: undefined). */
  client(tenant?: TenantName, replica?: number): Client<typeof BrokerService>;
  /** Headers of an OSB call as `tenant`'s platform. */
  osbHeaders(tenant?: TenantName): Record<string, string>;
  /** Polls GetInstance until `pick` accepts it. */
  untilInstance(tenant: TenantName, instanceId: string, pick: (i: Instance) => boolean, what?: string, timeoutMs?: number): Promise<Instance>;
  stop(): Promise<void>;
}

/**
 * Network's stack (longjob, compute, storage, network, agent-sim; a private network named
 * `private` and a public one `public`) with broker replicas beside it, configured to give their
 * VMs NICs on those networks — every part a provision touches, real but the hypervisors.
 */
export async function startBrokerStack(o: BrokerStackOptions = {}): Promise<BrokerStack> {
  const net = await startNetworkStack(o);
  const dir = mkdtempSync(join(tmpdir(), "stratum-broker-"));
  const authFile = join(dir, "auth.json");
  writeFileSync(
    authFile,
    JSON.stringify({
      tokens: Object.entries(TENANTS).map(([tenant, t]) => ({ token: t.token, tenant })),
      platforms: Object.entries(TENANTS).map(([tenant, t]) => ({ username: t.username, password: t.password, tenant })),
    }),
  );
  const osbByReplica = new Map<string, string>();
  let broker: TestService<typeof tables>;
  try {
    broker = await startTestService(brokerModule({ onOsbListening: (url, replicaId) => void osbByReplica.set(replicaId, url) }), {
      databaseUrl: net.base.longjob.databaseUrl,
      natsUrl: net.base.longjob.natsUrl,
      busPrefix: net.base.longjob.busPrefix,
      replicas: o.brokerReplicas ?? 2,
      settings: { STRATUM_BROKER_AUTH_FILE: authFile, STRATUM_BROKER_NETWORK: "private", STRATUM_BROKER_PUBLIC_NETWORK: "public", STRATUM_BROKER_SWEEP_INTERVAL_MS: 200 },
    });
  } catch (e) {
    await net.stop();
    throw e;
  }
  const clients: Client<typeof BrokerService>[] = [];
  const sql = postgres(net.base.longjob.databaseUrl, { max: 4, onnotice: () => {} });
  const stack: BrokerStack = {
    net,
    broker,
    sql,
    authFile,
    get osb() {
      return broker.replicas.map((r) => osbByReplica.get(r.ctx.config.replicaId) ?? "");
    },
    client(tenant, replica = 0) {
      const token = tenant ? TENANTS[tenant].token : undefined;
      const c = createClient(BrokerService, broker.replicas[replica]!.address, token ? { interceptors: [bearerToken(token)] } : {});
      clients.push(c);
      return c;
    },
    osbHeaders(tenant) {
      const h: Record<string, string> = { "X-Broker-API-Version": "2.17", "content-type": "application/json" };
      if (tenant) h.authorization = `Basic ${Buffer.from(`${TENANTS[tenant].username}:${TENANTS[tenant].password}`).toString("base64")}`;
      return h;
    },
    async untilInstance(tenant, instanceId, pick, what = "the wanted state", timeoutMs = 60_000) {
      const c = stack.client(tenant);
      const deadline = Date.now() + timeoutMs;
      let last: Instance | undefined;
      for (;;) {
        last = (await c.getInstance({ instanceId })).instance;
        if (last && pick(last)) return last;
        if (Date.now() > deadline) throw new Error(`instance ${instanceId} never reached ${what}: last ${last ? InstanceState[last.state] : "none"} ${last?.error?.message ?? ""}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      for (const c of clients) closeClient(c);
      await sql.end();
      await broker.stop();
      await net.stop();
    },
  };
  return stack;
}
