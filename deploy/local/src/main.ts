import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { closeClient, Code, createClient, StratumError } from "@stratum/rpc";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@stratum/testing";
import { parseDevstackArgs, USAGE, type DevstackOptions } from "./args";
import { Child } from "./child";
import { presentServices, SERVICE_ORDER } from "./services-present";

const repoRoot = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

/** Everything the devstack started, stopped in reverse by `shutdown`. */
const stoppers: Array<() => Promise<unknown>> = [];
let shuttingDown = false;
let stopped: Promise<void> | undefined;
let exitCode: number | undefined;

/**
 * Stops everything, once, and exits only when all of it is down — also when a second signal or a
 * failure during start-up asks again meanwhile (the first exit code wins).
 */
async function shutdown(code: number): Promise<never> {
  shuttingDown = true;
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

  if (options.reset) rmSync(options.dataDir, { recursive: true, force: true });
  const logDir = join(options.dataDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const endpoints: Record<string, string | string[]> = {};
  const print = (name: string, value: string) => console.log(`${name.padEnd(14)} ${value}`);

  // NATS with JetStream, embedded unless NATS_URL points elsewhere.
  let natsUrl = process.env.NATS_URL;
  if (!natsUrl) {
    const nats: NatsServer = await startNats({ ...(options.natsPort ? { port: options.natsPort } : {}), storeDir: join(options.dataDir, "nats") });
    stoppers.push(() => nats.stop());
    natsUrl = nats.url;
  }
  endpoints.nats = natsUrl;
  print("nats", natsUrl);

  // PostgreSQL, embedded unless DATABASE_URL points elsewhere; data kept in the data dir.
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    // The data outlives the devstack and compute acts on agents once a commit returns, so every
    // commit must be on disk: fast: false is @stratum/testing's DURABLE_SETTINGS (group commit, no
    // synchronous_commit=off), the settings bench:vm measures too.
    const pg: PostgresServer = await startPostgres({
      ...(options.postgresPort ? { port: options.postgresPort } : {}),
      dataDir: join(options.dataDir, "postgres"),
      fast: false,
    });
    stoppers.push(() => pg.stop());
    databaseUrl = await ensureDatabase(pg.url, "stratum");
  }
  // The file keeps the full URL (tools and benchmarks connect with it); the screen does not show credentials.
  endpoints.postgres = databaseUrl;
  print("postgres", databaseUrl.replace(/\/\/[^@/]*@/, "//"));

  // The agent simulator: the hypervisors.
  const simPorts = options.agentBasePort ? ["--base-port", String(options.agentBasePort), "--control-port", String(options.agentBasePort - 1)] : ["--control-port", "0"];
  const sim = new Child("agent-sim", join(repoRoot, "services/agent-sim/src/main.ts"), [
    "--hosts", String(options.hosts), "--cpu", String(options.hostCpu), "--memory-gib", String(options.hostMemoryGiB), ...simPorts, "--latency-ms", String(options.agentLatencyMs),
  ], {}, join(logDir, "agent-sim.log"));
  stoppers.push(() => sim.stop());
  const agentUrls: string[] = [];
  const simReady = await sim.waitFor((j) => {
    if (typeof j.url === "string") agentUrls.push(j.url);
    return j.ready === true ? (j.controlUrl as string) : undefined;
  }, 30_000);
  watch(sim);
  endpoints.agentSim = simReady;
  print("agent-sim", `${simReady} (control), ${agentUrls.length} hosts from ${agentUrls[0] ?? "-"}`);

  // Every service that exists, N replicas each.
  for (const service of presentServices(repoRoot)) {
    const k = SERVICE_ORDER.indexOf(service as (typeof SERVICE_ORDER)[number]);
    const addresses: string[] = [];
    const metricsUrls: string[] = [];
    for (let i = 0; i < options.replicas; i++) {
      const replicaId = `${service}-${i}`;
      const port = options.basePort ? options.basePort + 100 * k + i + 1 : 0;
      const child = new Child(replicaId, join(repoRoot, "services", service, "src/main.ts"), [], {
        STRATUM_REPLICA_ID: replicaId,
        STRATUM_GRPC_HOST: "127.0.0.1",
        STRATUM_GRPC_PORT: String(port),
        STRATUM_METRICS_PORT: String(port ? port + 50 : 0),
        STRATUM_ADVERTISE_HOST: "127.0.0.1",
        NATS_URL: natsUrl,
        DATABASE_URL: databaseUrl,
      }, join(logDir, `${replicaId}.log`));
      stoppers.push(() => child.stop());
      const ready = await child.waitFor((j) => (j.msg === "ready" ? { address: j.address as string, metrics: j.metrics as string } : undefined), 60_000);
      watch(child);
      addresses.push(ready.address);
      metricsUrls.push(ready.metrics);
      print(replicaId, `grpc ${ready.address}  metrics ${ready.metrics}`);
    }
    endpoints[service] = addresses;
    endpoints[`${service}Metrics`] = metricsUrls;
  }

  if (endpoints.compute) await registerHosts((endpoints.compute as string[])[0]!, simReady, agentUrls, options);
  writeFileSync(join(options.dataDir, "endpoints.json"), `${JSON.stringify(endpoints, null, 2)}\n`);
  print("logs", logDir);
  console.log("Stratum is ready (Ctrl-C stops it)");
}

/** A service that dies on its own takes the devstack down with its last words on screen, instead of leaving a half-stack. */
function watch(child: Child): void {
  void child.exited.then((code) => {
    if (child.stopping || shuttingDown) return;
    console.error(`${child.name} exited unexpectedly (code ${code}); last output:\n  ${child.tail().join("\n  ")}`);
    void shutdown(1);
  });
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
