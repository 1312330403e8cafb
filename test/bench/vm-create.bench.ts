/**
 * `pnpm bench:vm`: VM creation throughput against a fresh devstack (zero agent latency), end to
 * end: each worker calls CreateVm (which answers once the VM is recorded and placed) and then
 * follows the VM through WatchVm until it is Running. Next to it, the ceiling of the same machine
 * measured in the same run:
 *   - no-op gRPC unary calls per second against a compute replica (grpc.health.v1 Check),
 *   - single-row INSERT + COMMIT transactions per second on the same Postgres, same settings.
 * The ceiling is the lower of the two. Last line: `vm create: X/s = Y% of ceiling`.
 *
 * Postgres runs with the devstack's durable settings (@stratum/testing DURABLE_SETTINGS: every
 * commit flushed, group commit), read back from the server and printed in the header; the bench
 * refuses to run against a Postgres that acknowledges commits before they are on disk, since
 * such a figure would not be one a real deployment can have.
 *
 * Options: --vms N (2000) --concurrency C (200) --replicas R (1) --hosts H (10, more if 2N VMs need them).
 * N creates are made first as a warm-up and not counted. The devstack registers each simulated
 * host with the capacity its agent reports (agent-sim: 32 CPUs, 128 GiB), so the default host
 * count is what the 2N one-CPU VMs need; with fewer the bench says so before it starts.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import postgres from "postgres";
import { Health } from "@stratum/proto/grpc/health/v1/health_pb";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { DURABLE_SETTINGS } from "@stratum/testing";
import { startDevstack } from "../support/devstack";
import { untilVmState } from "../../services/compute/test/watch";
import { drive, positive } from "./latencies";

const { values } = parseArgs({
  options: {
    vms: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "200" },
    replicas: { type: "string", default: "1" },
    hosts: { type: "string" },
  },
  strict: true,
});
const N = positive("vms", values.vms);
const C = positive("concurrency", values.concurrency);
const REPLICAS = positive("replicas", values.replicas);
/** CPUs of one simulated host: big ones, so placement is measured, not running out of hosts. */
const SIM_HOST_CPUS = 100_000;
const VM_SPEC = { cpu: 1, memoryBytes: 256n * 1024n * 1024n };
const HOSTS = values.hosts === undefined ? Math.max(10, Math.ceil((2 * N * VM_SPEC.cpu) / SIM_HOST_CPUS)) : positive("hosts", values.hosts);


/** Each of the C clients gets its own HTTP/2 connection, as C separate programs would. */
function ownChannel<T extends Parameters<typeof createClient>[0]>(service: T, address: string) {
  return createClient(service, address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 }, retry: false });
}


async function main(): Promise<void> {
  console.log(`starting a fresh devstack: ${REPLICAS} compute replica(s), ${HOSTS} simulated hosts, zero agent latency…`);
  const stack = await startDevstack(["--replicas", String(REPLICAS), "--hosts", String(HOSTS), "--host-cpu", String(SIM_HOST_CPUS), "--host-memory", "1000000", "--agent-latency", "0"]);
  const addresses = stack.endpoints.compute;
  const clients: Client<typeof VmService>[] = Array.from({ length: C }, (_, i) => ownChannel(VmService, addresses[i % addresses.length]!));
  const health = Array.from({ length: C }, () => ownChannel(Health, addresses[0]!));
  const sql = postgres(stack.endpoints.postgres, { max: Math.min(C, 100), onnotice: () => {} });
  try {
    await assertCapacity(addresses[0]!, 2 * N);
    const settings = await postgresSettings(sql);
    const header = `postgres: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(" ")}`;
    console.log(header);
    if (settings.fsync !== "on" || settings.synchronous_commit !== "on") {
      throw new Error(`refusing to benchmark a Postgres that does not flush commits (${header})`);
    }
    const spec = VM_SPEC;
    // Warm-up, not counted, as many creates as are measured: connections, prepared statements,
    // the JIT of every process. A control plane runs for days; its steady state is what counts.
    const warmup = N;
    const createRunning = async (c: Client<typeof VmService>, name: string): Promise<number> => {
      const t0 = performance.now();
      const res = await c.createVm({ name, ...spec });
      const accepted = performance.now() - t0;
      // Throws, naming the state and last_error, if the VM ends anywhere but Running.
      await untilVmState(c, res.vm!.uuid, VmState.RUNNING, 60_000);
      return accepted;
    };
    await drive(warmup, C, async (w, i) => void (await createRunning(clients[w]!, `warm-${i}`)));

    const computePids = addresses.map((_, i) => stack.pidOf(`compute-${i}`));
    const cpuBefore = computePids.map(cpuSeconds);
    const acceptedMs: number[] = [];
    const vm = await drive(N, C, async (w, i) => void acceptedMs.push(await createRunning(clients[w]!, `bench-${i}`)));
    // Read right after the last VM was seen Running: the relay may still be publishing the last
    // events, a few ms of the total, so the figure is the creates' cost and not the ceiling runs'.
    const computeCpu = computePids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpuBefore[i]!, 0);

    const grpcCeiling = await drive(Math.max(N * 5, 20_000), C, async (w) => void (await health[w]!.check({ service: "" })));

    await sql`CREATE TABLE IF NOT EXISTS public.bench_ceiling (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`;
    const pgCeiling = await drive(Math.max(N * 5, 20_000), C, async (_, i) => void (await sql`INSERT INTO public.bench_ceiling (name) VALUES (${`row-${i}`})`));
    await sql`DROP TABLE public.bench_ceiling`;

    const ceiling = Math.min(grpcCeiling.perSecond, pgCeiling.perSecond);
    const row = (name: string, r: Awaited<ReturnType<typeof drive>>) =>
      console.log(`${name.padEnd(34)} ${r.perSecond.toFixed(0).padStart(8)}/s   p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(7)} ms   errors ${r.errors}`);
    console.log(`\nN=${N} C=${C} replicas=${REPLICAS} hosts=${HOSTS}, after ${warmup} warm-up creates (${availableParallelism()} cores, everything on one machine)`);
    console.log(header);
    row("vm create (gRPC → running, watched)", vm);
    acceptedMs.sort((a, b) => a - b);
    const acceptedPct = (p: number) => acceptedMs[Math.min(acceptedMs.length - 1, Math.floor((p / 100) * acceptedMs.length))] ?? NaN;
    console.log(`${"  of which CreateVm's answer".padEnd(34)} ${"".padStart(10)}   p50 ${acceptedPct(50).toFixed(1).padStart(6)} ms   p99 ${acceptedPct(99).toFixed(1).padStart(7)} ms`);
    row("ceiling: no-op gRPC unary", grpcCeiling);
    row("ceiling: Postgres insert+commit", pgCeiling);
    if (vm.firstError) console.log(`first vm create error: ${vm.firstError instanceof Error ? vm.firstError.message : String(vm.firstError)}`);
    console.log(`compute CPU per create: ${((1000 * computeCpu) / N).toFixed(3)} ms (${computeCpu.toFixed(2)} CPU-s over ${N} measured creates, all replicas)`);
    console.log(`vm create: ${vm.perSecond.toFixed(0)}/s = ${((100 * vm.perSecond) / ceiling).toFixed(1)}% of ceiling`);
  } finally {
    await sql.end();
    for (const c of [...clients, ...health]) closeClient(c);
    await stack.stop();
  }
}

/** CPU-seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks; USER_HZ is 100 on Linux
}

/** Fails before measuring when the registered hosts cannot hold `vms` VMs: every create would fail. */
async function assertCapacity(address: string, vms: number): Promise<void> {
  const hosts = createClient(HostService, address);
  try {
    const { hosts: list } = await hosts.listHosts({ pageSize: 1000 });
    let fit = 0;
    for (const h of list) {
      const free = h.cpuCapacity - h.cpuUsed;
      const freeMemory = h.memoryCapacityBytes - h.memoryUsedBytes;
      fit += Math.max(0, Math.min(Math.floor(free / VM_SPEC.cpu), Number(freeMemory / VM_SPEC.memoryBytes)));
    }
    if (fit < vms) {
      throw new Error(`the ${list.length} registered hosts hold ${fit} VMs of ${VM_SPEC.cpu} CPU, but the bench creates ${vms} (warm-up + measured): pass a larger --hosts`);
    }
  } finally {
    closeClient(hosts);
  }
}

/** The server's own values of the durable settings (and how it flushes), as it runs them. */
async function postgresSettings(sql: postgres.Sql): Promise<Record<string, string>> {
  const names = [...Object.keys(DURABLE_SETTINGS), "wal_sync_method"];
  const rows = await sql<{ name: string; setting: string; unit: string | null }[]>`
    SELECT name, setting, unit FROM pg_settings WHERE name = ANY(${names})`;
  const byName = new Map(rows.map((r) => [r.name, r.unit && r.unit !== "" ? `${r.setting}${r.unit}` : r.setting]));
  return Object.fromEntries(names.map((n) => [n, byName.get(n) ?? "?"]));
}

await main();
