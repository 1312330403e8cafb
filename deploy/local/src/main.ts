import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { closeClient, Code, createClient, StratumError } from "@stratum/rpc";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@stratum/testing";
import { parseDevstackArgs, USAGE, type DevstackOptions } from "./args";
import { Child } from "./child";
import { goneAt } from "./liveness";
import { PidFile } from "./pid-file";
import { Supervisor, type Launch, type Run } from "./supervisor";
import { presentServices } from "./services-present";
import { registerDefaultStorages } from "./default-storages";
import { createDefaultNetworks } from "./default-networks";
import { osbPort, portClash, replicaPorts } from "./ports";
import { devBrokerAuth } from "./broker-auth";

const repoRoot = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

/** Everything the devstack started, stopped in reverse by `shutdown`. */
const stoppers: Array<() => Promise<unknown>> = [];
/** Every child's supervisor, halted all at once when shutdown begins. */
const supervisors: Supervisor[] = [];
let shuttingDown = false;
let stopped: Promise<void> | undefined;
let exitCode: number | undefined;

/**
 * Stops everything, once, and exits only when all of it is down — also when a second signal or a
 * failure during start-up asks again meanwhile (the first exit code wins).
 */
async function shutdown(code: number): Promise<never> {
  shuttingDown = true;
  for (const supervisor of supervisors) supervisor.halt();
  exitCode ??= code;
  stopped ??= (async () => {
    for (const stop of stoppers.reverse()) await stop().catch((e) => console.error(`stop failed: ${e instanceof Error ? e.message : e}`));
  })();
  await stopped;
  return process.exit(exitCode);
}

async function main(): Promise<void> {
  let options: DevstackOptions | "help";
  try {
    options = parseDevstackArgs(process.argv.slice(2), repoRoot);
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : e}\n${USAGE}`);
    process.exit(2);
  }
  if (options === "help") {
    console.log(USAGE);
    return;
  }
  // `on`, not `once`: the listener must stay registered while it runs, or @stratum/testing's
  // fallback hook sees no handler, kills the servers and re-raises the signal under our feet.
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));

  const services = presentServices(repoRoot);
  const clash = portClash({ services, replicas: options.replicas, basePort: options.basePort, agentBasePort: options.agentBasePort, hosts: options.hosts });
  if (clash) {
    console.error(`${clash}\n${USAGE}`);
    process.exit(2);
  }

  if (options.reset) rmSync(options.dataDir, { recursive: true, force: true });
  const logDir = join(options.dataDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const endpoints: Record<string, string | string[]> = {};
  const print = (name: string, value: string) => console.log(`${name.padEnd(14)} ${value}`);

  const pids = new PidFile(join(options.dataDir, "pids.json"));
  /** Every child runs under a Supervisor, stopped with the rest on shutdown (also mid-start). */
  const supervise = (name: string, launch: Launch, noRestart?: string): Promise<Run> => {
    const supervisor = new Supervisor(name, launch, {
      log: (line) => console.error(line),
      onPid: (pid) => pids.set(name, pid),
      ...(noRestart ? { noRestart } : {}),
    });
    supervisors.push(supervisor);
    stoppers.push(() => supervisor.stop());
    return supervisor.start();
  };

  // NATS with JetStream, embedded unless NATS_URL points elsewhere. A restart reuses its ports
  // and store dir (NatsServer.restart), and the replicas' clients reconnect on their own.
  let natsUrl = process.env.NATS_URL;
  if (!natsUrl) {
    let nats: NatsServer | undefined;
    await supervise("nats", async () => {
      if (!nats) nats = await startNats({ ...(options.natsPort ? { port: options.natsPort } : {}), storeDir: join(options.dataDir, "nats") });
      else await nats.restart();
      return serverRun(nats, nats.url);
    });
    natsUrl = nats!.url;
  }
  endpoints.nats = natsUrl;
  print("nats", natsUrl);

  // PostgreSQL, embedded unless DATABASE_URL points elsewhere; data kept in the data dir. A
  // restart (PostgresServer.resume) reuses its port and data dir and recovers from the WAL.
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    let pg: PostgresServer | undefined;
    await supervise("postgres", async () => {
      // The data outlives the devstack and compute acts on agents once a commit returns, so every
      // commit must be on disk: fast: false is @stratum/testing's DURABLE_SETTINGS (group commit, no
      // synchronous_commit=off), the settings bench:vm measures too.
      if (!pg) pg = await startPostgres({ ...(options.postgresPort ? { port: options.postgresPort } : {}), dataDir: join(options.dataDir, "postgres"), fast: false });
      else await pg.resume();
      return serverRun(pg, pg.url.replace(/\/\/[^@/]*@/, "//"));
    });
    databaseUrl = await ensureDatabase(pg!.url, "stratum");
  }
  // The file keeps the full URL (tools and benchmarks connect with it); the screen does not show credentials.
  endpoints.postgres = databaseUrl;
  print("postgres", databaseUrl.replace(/\/\/[^@/]*@/, "//"));

  // The agent simulator: the hypervisors. Restarted it comes back with no VMs, like rebooted
  // hosts, which compute's reconnect handshake reconciles. Only on fixed ports, though: on free
  // ones (--agent-port 0) its hosts' ports are not consecutive, a new agent-sim cannot be given
  // them back, and compute would keep calling the old addresses.
  const simPorts = options.agentBasePort ? ["--base-port", String(options.agentBasePort), "--control-port", String(options.agentBasePort - 1)] : ["--control-port", "0"];
  const agentUrls: string[] = [];
  let simReady = "";
  await supervise(
    "agent-sim",
    async (signal) => {
      const urls: string[] = [];
      const { child, ready } = await launchChild(signal, "agent-sim", "services/agent-sim/src/main.ts", [
        "--hosts", String(options.hosts), "--cpu", String(options.hostCpu), "--memory-gib", String(options.hostMemoryGiB), ...simPorts, "--latency-ms", String(options.agentLatencyMs),
        ...(options.volumeTaskMs === undefined ? [] : ["--volume-task-duration-ms", String(options.volumeTaskMs)]),
        ...(options.migrateMs === undefined ? [] : ["--migrate-duration-ms", String(options.migrateMs)]),
      ], {}, join(logDir, "agent-sim.log"), (j) => {
        if (typeof j.url === "string") urls.push(j.url);
        return j.ready === true ? (j.controlUrl as string) : undefined;
      }, 30_000);
      if (agentUrls.length === 0) agentUrls.push(...urls);
      simReady = ready;
      return childRun(child, ready);
    },
    options.agentBasePort ? undefined : "its hosts were on free ports (--agent-port 0), which a new agent-sim cannot be given back; its hosts stay disconnected",
  );
  endpoints.agentSim = simReady;
  print("agent-sim", `${simReady} (control), ${agentUrls.length} hosts from ${agentUrls[0] ?? "-"}`);

  // Every service that exists, N replicas each, in SERVICE_ORDER; each on its port slot
  // (ports.ts). A replica comes back like a StatefulSet pod: same id, environment and ports (the
  // ones it first bound, also when they were chosen free).
  const startReplicas = async (service: string, extraEnv: Record<string, string> = {}): Promise<void> => {
    const addresses: string[] = [];
    const metricsUrls: string[] = [];
    const osbUrls: string[] = [];
    // The broker also serves the OSB API over HTTP, on a port of its own (ports.ts).
    const osb = service === "broker";
    for (let i = 0; i < options.replicas; i++) {
      const replicaId = `${service}-${i}`;
      let { grpc: grpcPort, metrics: metricsPort } = replicaPorts(service, i, options.basePort);
      let httpPort = osbPort(i, options.basePort);
      let first: { address: string; metrics: string; osb: string } | undefined;
      await supervise(replicaId, async (signal) => {
        let osbUrl = "";
        let seen: { address: string; metrics: string } | undefined;
        const { child, ready } = await launchChild(signal, replicaId, join("services", service, "src/main.ts"), [], {
          STRATUM_REPLICA_ID: replicaId,
          STRATUM_GRPC_HOST: "127.0.0.1",
          STRATUM_GRPC_PORT: String(grpcPort),
          STRATUM_METRICS_PORT: String(metricsPort),
          STRATUM_ADVERTISE_HOST: "127.0.0.1",
          NATS_URL: natsUrl,
          DATABASE_URL: databaseUrl,
          ...(osb ? { STRATUM_BROKER_OSB_PORT: String(httpPort) } : {}),
          ...extraEnv,
        }, join(logDir, `${replicaId}.log`), (j) => {
          if (j.msg === "osb listening" && typeof j.url === "string") osbUrl = j.url;
          if (j.msg === "ready") seen = { address: j.address as string, metrics: j.metrics as string };
          // The broker logs its OSB URL while it starts, before `ready`; wait for both either way.
          return seen && (!osb || osbUrl) ? { ...seen, osb: osbUrl } : undefined;
        }, 60_000);
        if (!first) {
          first = ready;
          grpcPort = portOf(`http://${ready.address}`);
          metricsPort = portOf(ready.metrics);
          if (osb) httpPort = portOf(ready.osb);
        }
        return childRun(child, `grpc ${ready.address}  metrics ${ready.metrics}${osb ? `  osb ${ready.osb}` : ""}`);
      });
      addresses.push(first!.address);
      metricsUrls.push(first!.metrics);
      if (osb) osbUrls.push(first!.osb);
      print(replicaId, `grpc ${first!.address}  metrics ${first!.metrics}${osb ? `  osb ${first!.osb}` : ""}`);
    }
    endpoints[service] = addresses;
    endpoints[`${service}Metrics`] = metricsUrls;
    if (osb) endpoints.brokerOsb = osbUrls;
  };
  // The broker provisions VMs with NICs on the default networks: it starts once they exist.
  for (const service of services.filter((s) => s !== "broker")) await startReplicas(service);

  if (endpoints.compute) await registerHosts((endpoints.compute as string[])[0]!, simReady, agentUrls, options);
  if (endpoints.storage) {
    const { primaryStorageUuid, backupStorageUuid } = await registerDefaultStorages((endpoints.storage as string[])[0]!);
    endpoints.primaryStorage = primaryStorageUuid;
    endpoints.backupStorage = backupStorageUuid;
    print("storage", `primary ${primaryStorageUuid} (shared), backup ${backupStorageUuid}`);
  }
  if (endpoints.network) {
    const created = await createDefaultNetworks((endpoints.network as string[])[0]!);
    endpoints.privateL3Network = created.private.network.uuid;
    endpoints.publicL3Network = created.public.network.uuid;
    for (const [kind, { network, range }] of Object.entries(created)) {
      print("network", `${kind.padEnd(7)} ${network.uuid} ${network.cidr} range ${range.startIp}–${range.endIp}${network.public ? " (public: VIPs)" : ""}`);
    }
  }
  if (services.includes("broker")) {
    const auth = devBrokerAuth(options.dataDir);
    // By UUID, not the broker's default names: exactly the networks this devstack made.
    const networks: Record<string, string> = endpoints.privateL3Network ? { STRATUM_BROKER_NETWORK: endpoints.privateL3Network as string, STRATUM_BROKER_PUBLIC_NETWORK: endpoints.publicL3Network as string } : {};
    await startReplicas("broker", { STRATUM_BROKER_AUTH_FILE: auth.file, ...networks });
    endpoints.brokerTenant = auth.tenant;
    endpoints.brokerToken = auth.token;
    endpoints.brokerOsbUsername = auth.osbUsername;
    endpoints.brokerOsbPassword = auth.osbPassword;
    endpoints.brokerAuthFile = auth.file;
    print("broker", `tenant ${auth.tenant}  token ${auth.token}  (gRPC: authorization: Bearer <token>)`);
    print("broker osb", `user ${auth.osbUsername}  password ${auth.osbPassword}  (HTTP basic auth, X-Broker-API-Version: 2.17; ${auth.file})`);
  }
  endpoints.pids = pids.path;
  writeFileSync(join(options.dataDir, "endpoints.json"), `${JSON.stringify(endpoints, null, 2)}\n`);
  print("logs", logDir);
  console.log("Stratum is ready (Ctrl-C stops it)");
}

/**
 * Spawns a child and resolves once it printed the line `ready` picks; a child that exits, does
 * not get ready in time or is aborted by a shutdown meanwhile is stopped and the launch fails.
 */
async function launchChild<T>(
  signal: AbortSignal,
  name: string,
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  logFile: string,
  ready: (json: Record<string, unknown>) => T | undefined,
  timeoutMs: number,
): Promise<{ child: Child; ready: T }> {
  const child = new Child(name, join(repoRoot, script), args, env, logFile);
  const abort = () => void child.stop();
  signal.addEventListener("abort", abort, { once: true });
  try {
    return { child, ready: await child.waitFor(ready, timeoutMs) };
  } catch (e) {
    await child.stop();
    throw e;
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

function childRun(child: Child, describe: string): Run {
  return { pid: child.pid, exited: child.exited, stop: () => child.stop(), describe, lastWords: () => child.tail() };
}

/** A server of @stratum/testing: only its pid is known, so its death is seen by a liveness probe. */
function serverRun(server: { pid: number; stop(): Promise<void>; output(): string }, describe: string): Run {
  const pid = server.pid;
  return { pid, exited: goneAt(pid), stop: () => server.stop(), describe, lastWords: () => server.output().trim().split("\n").slice(-10) };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`;
    if (!row) await sql.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await sql.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Registers the simulated hosts; the request id makes it a no-op on a restart that kept the data.
 * A host's capacity is what its agent reports (compute refuses more than that), capped by
 * `--host-cpu` / `--host-memory` when those ask for less.
 */
async function registerHosts(computeAddress: string, simControlUrl: string, agentUrls: string[], options: DevstackOptions): Promise<void> {
  const listed = (await (await fetch(`${simControlUrl}/hosts`)).json()) as { hosts: Array<{ url: string; cpuNum: number; memoryBytes: number }> };
  const facts = new Map(listed.hosts.map((h) => [h.url, h]));
  const hosts = createClient(HostService, computeAddress);
  try {
    for (const [i, agentUrl] of agentUrls.entries()) {
      const reported = facts.get(agentUrl);
      if (!reported) throw new Error(`agent-sim does not list ${agentUrl}`);
      // A host offers what its agent reports (compute refuses more).
      const cpuCapacity = reported.cpuNum;
      const memoryCapacityBytes = BigInt(reported.memoryBytes);
      // A kept data dir already has the host once its request id's outcome has expired: keep it.
      const host = await hosts
        .addHost({ name: `sim-host-${i}`, agentUrl, cpuCapacity, memoryCapacityBytes, clientRequestId: `devstack-host-${agentUrl}` })
        .then((r) => r.host, async (e: unknown) => {
          const known = e instanceof StratumError && e.code === Code.ALREADY_EXISTS ? e.resources.hostUuid : undefined;
          if (!known) throw e;
          return (await hosts.getHost({ uuid: known })).host;
        });
      console.log(`${"host".padEnd(14)} ${host!.name} ${host!.uuid} ${agentUrl}`);
    }
  } finally {
    closeClient(hosts);
  }
}

main().catch(async (e) => {
  if (!shuttingDown) console.error(`devstack failed: ${e instanceof Error ? e.message : String(e)}`);
  await shutdown(1);
});
