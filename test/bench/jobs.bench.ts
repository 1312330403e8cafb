/**
 * `pnpm bench:jobs`: long-job throughput against a fresh devstack, next to the ceiling of the
 * same nats-server measured in the same run (issue 9):
 *   - N `longjob.noop` jobs submitted by C concurrent clients, each watched to its end:
 *     jobs/s, and submit→done latency, from sending SubmitJob to the Succeeded message on the
 *     WatchJob stream opened as soon as the submit answered;
 *   - the ceiling: C publishers doing JetStream publish → durable explicit-ack consume → ack
 *     round trips on the devstack's nats-server (the path every job report takes);
 *   - cancel→stopped: M `longjob.sleep` jobs (60 s in 600 steps), each cancelled once its watch
 *     shows it Running, timed from sending CancelJob to the Canceled message on the watch.
 * Last line: `jobs: X/s = Y% of ceiling, submit-to-done p99 P ms, cancel p99 C ms`.
 *
 * Options: --jobs N (20000) --clients C (64) --cancels M (200) --replicas R (1)
 * --warmup W (N/4 jobs, and min(M, 20) cancels) --logs DIR (copy the devstack's logs there before
 * it is removed, to read the replicas' warnings after a run). The devstack's --replicas is one count for every
 * service, so R is longjob's count and compute's too (compute is idle here); the devstack starts
 * one simulated host, the fewest agent-sim takes, since no job here needs one. The warm-up (connections, prepared statements,
 * the JIT of every process) is run first and is in no figure.
 */
import { cpSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { WATCH_RESYNC_MS } from "@stratum/bus";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { startDevstack } from "../support/devstack";
import { jetstreamCeiling } from "./jetstream-ceiling";
import { atLeast, describeError, drive, type PhaseFigures, positive } from "./latencies";
import { cpuSeconds, treeCpuSeconds } from "./proc-cpu";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "20000" },
    clients: { type: "string", default: "64" },
    cancels: { type: "string", default: "200" },
    replicas: { type: "string", default: "1" },
    warmup: { type: "string" },
    logs: { type: "string" },
  },
  strict: true,
});
const N = positive("jobs", values.jobs);
const C = positive("clients", values.clients);
const M = positive("cancels", values.cancels);
const REPLICAS = positive("replicas", values.replicas);
const WARMUP = values.warmup === undefined ? Math.ceil(N / 4) : positive("warmup", values.warmup);
const CANCEL_WARMUP = Math.min(M, 20);
/** The sleeping job cancelled: long enough never to finish first, short steps so it is often at a checkpoint. */
const SLEEP_PARAMS = { durationMs: 60_000, steps: 600 };


type Jobs = Client<typeof LongJobService>;

/** Each of the C clients gets its own HTTP/2 connection, as C separate programs would. */
function ownChannel(address: string): Jobs {
  return createClient(LongJobService, address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 }, retry: false });
}

/** A job's state name for error messages (`JOB_STATE_FAILED` → `FAILED`). */
function stateName(state: JobState | undefined): string {
  return state === undefined ? "nothing" : (JobState[state] ?? String(state)).replace(/^JOB_STATE_/, "");
}

/**
 * Per job, ms from the final state's commit (its `finish_time`, Postgres's clock, the same
 * machine's) to its arrival on the watch: splits a slow job into a slow pipeline and a slow or
 * missed watch event (then the watch sees it only at its resync read).
 */
type Lags = number[] | undefined;

function lagOf(finish: { seconds: bigint; nanos: number } | undefined): number {
  return finish === undefined ? NaN : Date.now() - (Number(finish.seconds) * 1000 + finish.nanos / 1e6);
}

/** Submits a no-op job and watches it to Succeeded; resolves when the Succeeded message arrives. */
async function noopJob(client: Jobs, lags: Lags): Promise<void> {
  const { job } = await client.submitJob({ type: "longjob.noop" });
  let last: JobState | undefined;
  for await (const { job: now } of client.watchJob({ uuid: job!.uuid })) {
    last = now?.state;
    if (last === JobState.SUCCEEDED) {
      lags?.push(lagOf(now!.finishTime));
      return;
    }
  }
  throw new Error(`no-op job ${job!.uuid} ended ${stateName(last)}, not SUCCEEDED`);
}

/**
 * Submits a sleeping job, cancels it once its watch shows it Running, and returns the ms from
 * sending CancelJob to the Canceled message on the same watch.
 */
async function cancelledJob(client: Jobs, lags: Lags): Promise<number> {
  const { job } = await client.submitJob({ type: "longjob.sleep", parameters: SLEEP_PARAMS });
  const uuid = job!.uuid;
  let cancelSent: number | undefined;
  let cancel: Promise<unknown> | undefined;
  let last: JobState | undefined;
  try {
    for await (const { job: now } of client.watchJob({ uuid })) {
      last = now?.state;
      if (last === JobState.RUNNING && cancelSent === undefined) {
        cancelSent = performance.now();
        // Not awaited here: the watch keeps reading, so Canceled is timed when it arrives.
        cancel = client.cancelJob({ uuid });
        cancel.catch(() => {});
      }
      if (last === JobState.CANCELED && cancelSent !== undefined) {
        const ms = performance.now() - cancelSent;
        lags?.push(lagOf(now!.finishTime));
        await cancel;
        return ms;
      }
    }
  } finally {
    // A failed run must not leave a job sleeping for a minute under the next phase.
    if (cancelSent === undefined) await client.cancelJob({ uuid }).catch(() => {});
  }
  await cancel;
  throw new Error(`sleeping job ${uuid} ended ${stateName(last)}${cancelSent === undefined ? " before it was seen Running" : " after its cancel, not CANCELED"}`);
}

async function main(): Promise<void> {
  console.log(`starting a fresh devstack: ${REPLICAS} replica(s) of each service, one simulated host (no job here needs one)…`);
  const stack = await startDevstack(["--replicas", String(REPLICAS), "--hosts", "1"]);
  const endpoints = stack.endpoints as unknown as Record<string, unknown>;
  const addresses = endpoints.longjob as string[] | undefined;
  if (!addresses?.length) {
    await stack.stop();
    throw new Error(`the devstack started no longjob replica (endpoints: ${Object.keys(endpoints).join(", ")})`);
  }
  const clients = Array.from({ length: C }, (_, i) => ownChannel(addresses[i % addresses.length]!));
  try {
    const header = `N=${N} jobs, C=${C} clients, M=${M} cancels, ${addresses.length} longjob replica(s); warm-up ${WARMUP} jobs + ${CANCEL_WARMUP} cancels, not counted (${availableParallelism()} cores, everything on one machine)`;
    console.log(header);

    const warm = await drive(WARMUP, C, (w) => noopJob(clients[w]!, undefined));
    if (warm.errors > 0) console.log(`warm-up: ${warm.errors} of ${WARMUP} jobs failed, first: ${describeError(warm.firstError)}`);

    const longjobPids = addresses.map((_, i) => stack.pidOf(`longjob-${i}`));
    const natsPid = stack.pidOf("nats");
    const postgresPid = stack.pidOf("postgres");
    const cpu = () => ({
      longjob: longjobPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
      nats: cpuSeconds(natsPid),
      postgres: treeCpuSeconds(postgresPid),
      bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
    });
    const before = cpu();
    const jobLags: number[] = [];
    const jobs = await drive(N, C, (w) => noopJob(clients[w]!, jobLags));
    const after = cpu();
    // Everything shares the machine (other processes too): the load says how much of it the run had.
    const load = loadavg()[0]!.toFixed(2);

    await drive(CANCEL_WARMUP, C, (w) => cancelledJob(clients[w]!, undefined));
    const cancelLags: number[] = [];
    const cancels = await drive(M, C, (w) => cancelledJob(clients[w]!, cancelLags));

    const ceiling = await jetstreamCeiling(endpoints.nats as string, Math.max(N, 20_000), 5_000, C);

    const row = (name: string, r: PhaseFigures) =>
      console.log(`${name.padEnd(40)} ${r.perSecond.toFixed(0).padStart(8)}/s   p50 ${r.p50.toFixed(1).padStart(7)} ms   p99 ${r.p99.toFixed(1).padStart(7)} ms   max ${r.max.toFixed(0).padStart(6)} ms   errors ${r.errors}`);
    console.log(`\n${header}; 1-min load average after the measured jobs: ${load}`);
    row("jobs: no-op, submit → Succeeded watched", jobs);
    row("cancel → Canceled watched (sleeping)", cancels);
    row("ceiling: JetStream publish→consume→ack", ceiling);
    for (const [name, r] of [["job", jobs], ["cancel", cancels], ["ceiling", ceiling]] as const) {
      if (r.firstError) console.log(`first ${name} error (${r.errors} in all): ${describeError(r.firstError)}`);
    }
    // A watch whose event was lost (core NATS) or late sees the change only on its resync read.
    console.log(`watched jobs that took ≥ the watch resync (${WATCH_RESYNC_MS} ms): ${atLeast(jobs, WATCH_RESYNC_MS)} of ${jobs.count} no-op, ${atLeast(cancels, WATCH_RESYNC_MS)} of ${cancels.count} cancels`);
    for (const [name, lags] of [["no-op Succeeded", jobLags], ["cancel Canceled", cancelLags]] as const) {
      const sorted = lags.filter((l) => !Number.isNaN(l)).sort((a, b) => a - b);
      const pct = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN).toFixed(1);
      const late = sorted.filter((l) => l >= WATCH_RESYNC_MS - 100).length;
      console.log(`${name}: commit (finish_time) → on the watch p50 ${pct(50)} ms, p99 ${pct(99)} ms; ${late} of ${sorted.length} ≥ ${WATCH_RESYNC_MS - 100} ms`);
    }
    const perJob = (k: keyof typeof before) => `${((1000 * (after[k] - before[k])) / N).toFixed(3)} ms`;
    console.log(
      `CPU per measured job: longjob ${perJob("longjob")} (${(after.longjob - before.longjob).toFixed(2)} CPU-s, all replicas), nats-server ${perJob("nats")}, postgres ${perJob("postgres")}, bench clients ${perJob("bench")}`,
    );
    console.log(
      `jobs: ${jobs.perSecond.toFixed(0)}/s = ${((100 * jobs.perSecond) / ceiling.perSecond).toFixed(1)}% of ceiling, submit-to-done p99 ${jobs.p99.toFixed(1)} ms, cancel p99 ${cancels.p99.toFixed(1)} ms`,
    );
  } finally {
    for (const c of clients) closeClient(c);
    if (values.logs !== undefined) {
      cpSync(join(dirname(stack.endpoints.pids), "logs"), values.logs, { recursive: true });
      console.log(`devstack logs copied to ${values.logs}`);
    }
    await stack.stop();
  }
}

await main();
