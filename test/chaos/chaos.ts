/**
 * `pnpm chaos`: a fresh devstack with 2 compute replicas, a bounded create/stop/start/destroy load
 * through the Stratum client (mutating retries, round robin over the replicas), and one fault
 * after another: kill -9 of a replica, SIGSTOP past the membership TTL and the lease then
 * SIGCONT, a replica joining (and leaving), a rolling restart (SIGTERM one at a time; the
 * devstack's supervisor starts each again), nats-server kill -9, Postgres kill -9.
 *
 * For each scenario it prints what a user of the control plane would check:
 * - takeover: from the fault until a VM the struck replica owned is served again (a reboot of a
 *   probe VM, retried with a 1 s deadline, succeeds); for NATS and Postgres, the time to recover;
 * - failed: client calls that failed after the client's own retries, and accepted operations
 *   that did not reach their target state (a call answers once its operation is accepted; the
 *   worker follows it through WatchVm, re-opened when its replica goes away);
 * - stuck: VMs still in a transient state 10 s after the load stopped;
 * - divergent: VMs whose state in Postgres disagrees with what the agents run;
 * - lost: VMs whose vm_state_changed events, read back from JetStream, do not chain from the
 *   create to the state Postgres has (a missing event breaks the chain);
 * - stale: commands of two replicas acting on one VM at once, as the agents saw them (fenced
 *   commands, which the agents refused, are counted apart).
 * The last line is `chaos: takeover max X s, failed calls F, stuck S, divergent D, events lost E,
 * stale writes W`.
 *
 * Options: --seconds N (load per scenario after the fault, default 12), --workers N (default 6),
 * --only name[,name] (a subset of: kill, pause, join, rolling, nats, postgres).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { connectBus, EventBus, MembershipView } from "@stratum/bus";
import { VmService, VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, StratumError, type Client } from "@stratum/rpc";
import { startDevstack, type Devstack } from "../support/devstack";
import { untilSettled } from "../../services/compute/test/watch";

const GIB = 1024n ** 3n;
const TRANSIENT = ["Created", "Starting", "Stopping", "Rebooting", "Destroying"];
const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const { values: opts } = parseArgs({
  options: { seconds: { type: "string", default: "12" }, workers: { type: "string", default: "6" }, only: { type: "string" } },
});
const LOAD_SECONDS = Number(opts.seconds);
const WORKERS = Number(opts.workers);

interface Tally {
  name: string;
  takeoverS: number | undefined;
  failed: number;
  stuck: number;
  divergent: number;
  lost: number;
  stale: number;
  fenced: number;
  calls: number;
  vms: string[];
  failures: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  log("chaos: starting a fresh devstack (2 compute replicas, 5 hosts)…");
  const stack = await startDevstack(["--replicas", "2", "--hosts", "5", "--reset"]);
  const tallies: Tally[] = [];
  const closers: Array<() => Promise<unknown> | unknown> = [];
  try {
    const { endpoints } = stack;
    const sql = postgres(endpoints.postgres, { max: 2, onnotice: () => {} });
    closers.push(() => sql.end({ timeout: 1 }));
    const bus = await connectBus({ servers: endpoints.nats, name: "chaos" });
    closers.push(() => bus.close());
    const view = await MembershipView.open(bus);
    closers.push(() => view.close());
    const target = `ipv4:${endpoints.compute.join(",")}`;
    const roundRobin = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };
    // The client a user would write: mutating calls retried with their request id, for long enough
    // to ride out a takeover (the lease is 5 s), with a deadline above the longest pause.
    const client = () => createClient(VmService, target, { retry: { mutating: true, maxAttempts: 30, initialBackoffMs: 100, maxBackoffMs: 1_000 }, defaultTimeoutMs: 60_000, channelOptions: roundRobin });
    const probeClient = createClient(VmService, target, { retry: false, channelOptions: roundRobin });
    closers.push(() => closeClient(probeClient));

    const agents = async () => {
      const res = await fetch(`${endpoints.agentSim}/state`);
      return ((await res.json()) as { hosts: Array<{ url: string; vms: Array<{ vmUuid: string; state: string }>; fencing: { refused: number; overlaps: number } }> }).hosts;
    };
    const fencing = async () => (await agents()).reduce((s, h) => ({ refused: s.refused + h.fencing.refused, overlaps: s.overlaps + h.fencing.overlaps }), { refused: 0, overlaps: 0 });
    const ownedBy = (replicaId: string) => {
      for (;;) {
        const uuid = randomUUID();
        if (view.ownerOf("compute", uuid)?.replicaId === replicaId) return uuid;
      }
    };
    const probe = async (replicaId: string) => {
      const uuid = ownedBy(replicaId);
      const c = client();
      await c.createVm({ uuid, name: `probe-${replicaId}`, cpu: 1, memoryBytes: GIB });
      // Running before the fault: the probe's reboots then measure the takeover, not the start.
      await untilSettled(c, uuid, 60_000);
      closeClient(c);
      return uuid;
    };
    /** Seconds from `t0` until a reboot of `uuid` succeeds (each try bounded by 1 s). */
    const servedAgain = async (uuid: string, t0: number) => {
      for (;;) {
        try {
          await probeClient.rebootVm({ uuid }, { timeoutMs: 1_000 });
          return (performance.now() - t0) / 1000;
        } catch {
          await sleep(50);
        }
      }
    };
    const allReplicasUp = (n = 2) => view.until((v) => v.members("compute").length >= n && v.alive("compute").every((m) => !m.draining), 60_000);

    let divergentBefore = new Set<string>();
    const scenario = async (name: string, fault: (t: Tally) => Promise<void>) => {
      if (opts.only && !opts.only.split(",").includes(name)) return;
      await allReplicasUp();
      const t: Tally = { name, takeoverS: undefined, failed: 0, stuck: 0, divergent: 0, lost: 0, stale: 0, fenced: 0, calls: 0, vms: [], failures: [] };
      const before = await fencing();
      let stop = false;
      const load = Array.from({ length: WORKERS }, (_, w) => lifecycleLoad(client(), `${name}-${w}`, () => stop, t));
      await sleep(2_000);
      await fault(t);
      await sleep(LOAD_SECONDS * 1000);
      stop = true;
      await Promise.all(load);
      // Nothing a live replica works on stays transient for long; what is, 10 s on, is stuck.
      const settleBy = performance.now() + 10_000;
      let transient = 0;
      while (performance.now() < settleBy) {
        transient = Number((await sql`SELECT count(*)::int AS n FROM compute.vms WHERE state::text = ANY(${TRANSIENT})`)[0]!.n);
        if (transient === 0) break;
        await sleep(200);
      }
      t.stuck = transient;
      // Divergence is a state: what this scenario added to it.
      const now = await divergence(sql, await agents());
      const added = [...now.keys()].filter((uuid) => !divergentBefore.has(uuid));
      t.divergent = added.length;
      for (const uuid of added.slice(0, 5)) log(`    divergent: ${now.get(uuid)}`);
      divergentBefore = new Set(now.keys());
      const after = await fencing();
      t.stale = after.overlaps - before.overlaps;
      t.fenced = after.refused - before.refused;
      tallies.push(t);
      log(`  ${name}: takeover ${t.takeoverS === undefined ? "-" : `${t.takeoverS.toFixed(1)} s`}, calls ${t.calls}, failed ${t.failed}, stuck ${t.stuck}, divergent ${t.divergent}, stale ${t.stale} (fenced ${t.fenced})`);
      for (const f of t.failures.slice(0, 5)) log(`    failed: ${f}`);
    };

    await scenario("kill", async (t) => {
      const uuid = await probe("compute-1");
      const t0 = performance.now();
      process.kill(stack.pidOf("compute-1"), "SIGKILL");
      t.takeoverS = await servedAgain(uuid, t0);
    });

    await scenario("pause", async (t) => {
      const uuid = await probe("compute-0");
      const pid = stack.pidOf("compute-0");
      const t0 = performance.now();
      process.kill(pid, "SIGSTOP");
      try {
        t.takeoverS = await servedAgain(uuid, t0);
        await sleep(Math.max(0, 8_000 - (performance.now() - t0))); // past the TTL (3 s) and the lease (5 s)
      } finally {
        process.kill(pid, "SIGCONT");
      }
    });

    let joiner: ChildProcess | undefined;
    // A join takes nothing over from anyone (no takeover time): what it must not do is act on a
    // VM its old owner is still working on, which the agents' overlap count shows.
    await scenario("join", async () => {
      joiner = startReplica(endpoints, "compute-2");
      const t0 = performance.now();
      await view.until((v) => v.members("compute").some((m) => m.replicaId === "compute-2"), 60_000);
      log(`    compute-2 joined after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    });
    if (joiner) {
      const exited = new Promise((r) => joiner!.once("exit", r));
      joiner.kill("SIGTERM");
      await exited;
    }

    await scenario("rolling", async (t) => {
      let worst = 0;
      for (const replicaId of ["compute-0", "compute-1"]) {
        const uuid = await probe(replicaId);
        const since = stack.output.length;
        const t0 = performance.now();
        process.kill(stack.pidOf(replicaId), "SIGTERM");
        worst = Math.max(worst, await servedAgain(uuid, t0));
        await stack.waitForLine(new RegExp(`${replicaId} restarted`), since, 60_000);
        await allReplicasUp();
      }
      t.takeoverS = worst;
    });

    await scenario("nats", async (t) => {
      const uuids = [await probe("compute-0"), await probe("compute-1")];
      const t0 = performance.now();
      process.kill(stack.pidOf("nats"), "SIGKILL");
      t.takeoverS = Math.max(...(await Promise.all(uuids.map((u) => servedAgain(u, t0)))));
    });

    await scenario("postgres", async (t) => {
      const uuid = await probe("compute-0");
      const t0 = performance.now();
      const since = stack.output.length;
      process.kill(stack.pidOf("postgres"), "SIGKILL");
      t.takeoverS = await servedAgain(uuid, t0);
      for (const line of stack.output.slice(since).filter((l) => /postgres/i.test(l)).slice(0, 4)) log(`    devstack: ${line}`);
    });

    // Events: everything the run changed, read back from the start of the stream.
    const lostBy = await lostEvents(bus, sql, tallies);
    for (const t of tallies) t.lost = lostBy.get(t.name) ?? 0;
    log("");
    for (const t of tallies) log(`chaos ${t.name}: takeover ${t.takeoverS === undefined ? "-" : `${t.takeoverS.toFixed(1)} s`}, failed ${t.failed}/${t.calls}, stuck ${t.stuck}, divergent ${t.divergent}, events lost ${t.lost}, stale ${t.stale} (fenced ${t.fenced})`);
    const sum = (f: (t: Tally) => number) => tallies.reduce((s, t) => s + f(t), 0);
    const takeover = Math.max(0, ...tallies.map((t) => t.takeoverS ?? 0));
    log(`chaos: takeover max ${takeover.toFixed(1)} s, failed calls ${sum((t) => t.failed)}, stuck ${sum((t) => t.stuck)}, divergent ${sum((t) => t.divergent)}, events lost ${sum((t) => t.lost)}, stale writes ${sum((t) => t.stale)}`);
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {});
    await stack.stop();
  }
}

/**
 * One worker: VM lifecycles until told to stop. Each call is followed to its outcome through
 * WatchVm; a call that failed (after retries) or an operation that did not end where it leads
 * (rolled back by a takeover, or failed on the agent) is counted, with why.
 */
async function lifecycleLoad(c: Client<typeof VmService>, name: string, stopped: () => boolean, t: Tally): Promise<void> {
  const call = async (what: string, target: VmState, fn: () => Promise<{ vm?: Vm }>): Promise<Vm | undefined> => {
    t.calls += 1;
    try {
      const { vm } = await fn();
      const end = await untilSettled(c, vm!.uuid, 60_000);
      if (end.state === target) return end;
      t.failed += 1;
      t.failures.push(`${what}: ended ${VmState[end.state]}, not ${VmState[target]}: ${end.lastError || "no error"}`);
      return undefined;
    } catch (e) {
      const err = StratumError.from(e);
      t.failed += 1;
      t.failures.push(`${what}: ${err.reason || err.code} ${err.message}`);
      return undefined;
    }
  };
  for (let n = 0; !stopped(); n++) {
    let uuid: string | undefined;
    const created = await call("CreateVm", VmState.RUNNING, async () => {
      const res = await c.createVm({ name: `${name}-${n}`, cpu: 1, memoryBytes: GIB });
      uuid = res.vm!.uuid;
      t.vms.push(uuid);
      return res;
    });
    if (!uuid) continue;
    const vm = uuid;
    // The next step only from where the last one led; a destroy, from wherever it is.
    if (created && (await call("StopVm", VmState.STOPPED, () => c.stopVm({ uuid: vm })))) await call("StartVm", VmState.RUNNING, () => c.startVm({ uuid: vm }));
    await call("DestroyVm", VmState.DESTROYED, () => c.destroyVm({ uuid: vm }));
  }
  closeClient(c);
}

/**
 * VMs whose state in Postgres is not what the agents run (Running ⇔ running on its host), each
 * with a line saying how they differ.
 */
async function divergence(sql: postgres.Sql, hosts: Array<{ url: string; vms: Array<{ vmUuid: string; state: string }> }>): Promise<Map<string, string>> {
  const rows = await sql`SELECT v.uuid, v.state::text AS state, h.agent_url AS host, v.last_error FROM compute.vms v LEFT JOIN compute.hosts h ON h.uuid = v.host_uuid WHERE v.state <> 'Destroyed'`;
  // Hosts are matched by agent URL: compute names a host by its own uuid, the agent by another.
  const onAgent = new Map<string, { host: string; state: string }>();
  for (const h of hosts) for (const v of h.vms) onAgent.set(v.vmUuid, { host: h.url.replace(/\/+$/, ""), state: v.state });
  const divergent = new Map<string, string>();
  const known = new Set<string>();
  for (const r of rows) {
    const uuid = r.uuid as string;
    known.add(uuid);
    const a = onAgent.get(uuid);
    const host = r.host === null ? undefined : String(r.host).replace(/\/+$/, "");
    const seen = `${uuid}: Postgres ${r.state} on ${host ?? "no host"} (${r.last_error || "no error"}), agent ${a ? `${a.state} on ${a.host}` : "has none"}`;
    if (r.state === "Running" && (a?.state !== "running" || a.host !== host)) divergent.set(uuid, seen);
    if (r.state === "Stopped" && a?.state === "running") divergent.set(uuid, seen);
  }
  // Runs on an agent, but Postgres has it destroyed (or never had it).
  for (const [uuid, a] of onAgent) if (a.state === "running" && !known.has(uuid)) divergent.set(uuid, `${uuid}: Postgres has it destroyed, agent ${a.state} on ${a.host}`);
  return divergent;
}

/**
 * Per scenario, the VMs whose events do not chain: read from the start of the stream, each VM's
 * vm_state_changed events must go from its create (from null) link by link (`from` = the previous
 * `to`) to the state Postgres has. Waits up to 30 s for the relays to catch up.
 */
async function lostEvents(bus: Awaited<ReturnType<typeof connectBus>>, sql: postgres.Sql, tallies: Tally[]): Promise<Map<string, number>> {
  const events = await EventBus.open(bus);
  const chains = new Map<string, Array<{ from: string | null; to: string }>>();
  const sub = await events.subscribe<{ vmUuid: string; from: string | null; to: string }>(
    "compute.vm_state_changed.>",
    (e) => {
      const list = chains.get(e.data.vmUuid) ?? [];
      list.push({ from: e.data.from, to: e.data.to });
      chains.set(e.data.vmUuid, list);
    },
    { from: "all" },
  );
  const states = new Map((await sql`SELECT uuid, state::text AS state FROM compute.vms`).map((r) => [r.uuid as string, r.state as string]));
  const broken = (uuid: string) => {
    const chain = chains.get(uuid) ?? [];
    if (chain.length === 0 || chain[0]!.from !== null) return true;
    for (let i = 1; i < chain.length; i++) if (chain[i]!.from !== chain[i - 1]!.to) return true;
    return chain[chain.length - 1]!.to !== states.get(uuid);
  };
  const all = tallies.flatMap((t) => t.vms);
  for (const deadline = performance.now() + 30_000; all.some(broken) && performance.now() < deadline; ) await sleep(250);
  await sub.stop();
  // Name what broke: a count alone sends the next reader back to rerun the whole thing.
  for (const uuid of all.filter(broken).slice(0, 5)) {
    const chain = (chains.get(uuid) ?? []).map((l) => `${l.from ?? "∅"}→${l.to}`).join(" ");
    log(`    events of ${uuid} (Postgres: ${states.get(uuid) ?? "gone"}): ${chain || "none"}`);
  }
  return new Map(tallies.map((t) => [t.name, t.vms.filter(broken).length]));
}

function startReplica(endpoints: Devstack["endpoints"], replicaId: string): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", resolve(repoRoot, "services/compute/src/main.ts")], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: endpoints.postgres, NATS_URL: endpoints.nats, STRATUM_REPLICA_ID: replicaId, STRATUM_GRPC_HOST: "127.0.0.1", STRATUM_GRPC_PORT: "0", STRATUM_METRICS_PORT: "0" },
    stdio: "ignore",
  });
}

main().catch((e) => {
  process.stderr.write(`chaos failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
