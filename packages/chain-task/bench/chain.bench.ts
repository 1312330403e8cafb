// Benchmark: chain-task queue vs p-queue (one PQueue of concurrency 1 per signature).
//
// Run: `pnpm bench:chain` (node --expose-gc --import tsx packages/chain-task/bench/chain.bench.ts).
// Env: CHAIN_BENCH_TASKS (tasks per scenario, default 200000), CHAIN_BENCH_ROUNDS (default 9),
// CHAIN_BENCH_WORK=1 to submit from inside an AsyncLocalStorage scope, as a service does (a work
// scope per call): that turns on Node's promise hooks for both sides, and makes every queued task
// of ours keep its submitter's context.
//
// Fairness: both sides get the same task function (a no-op async function), the same submission
// pattern (submit every task synchronously, then await all the promises), and fresh state per
// round (a new ChainTaskQueue; a new Map of PQueues created lazily per signature). p-queue's
// idle queues are NOT deleted from its Map during a round, which spares it work our queue does
// (deleting an idle signature's entry), so the comparison leans in p-queue's favour.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import PQueue from "p-queue";
import { ChainTaskQueue } from "../src/index";

const TASKS = Number(process.env.CHAIN_BENCH_TASKS ?? 200_000);
const ROUNDS = Number(process.env.CHAIN_BENCH_ROUNDS ?? 9);
const WARMUP_ROUNDS = 2;
const IN_WORK_SCOPE = process.env.CHAIN_BENCH_WORK === "1";
const workScope = new AsyncLocalStorage<{ requestId: string }>();

const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** The task both sides run. */
const noop = async (): Promise<void> => {};

type Impl = "chain-task" | "p-queue";
interface Scenario {
  readonly label: string;
  readonly signatures: readonly string[];
}

async function runChainTask(signatures: readonly string[], tasks: number): Promise<number> {
  const queue = new ChainTaskQueue({ maxPending: Number.POSITIVE_INFINITY });
  const promises: Promise<void>[] = new Array(tasks);
  const count = signatures.length;
  const start = performance.now();
  for (let i = 0; i < tasks; i++) {
    promises[i] = queue.submit({ signature: signatures[i % count] as string, name: "noop", run: noop });
  }
  await Promise.all(promises);
  const elapsed = performance.now() - start;
  if (queue.size !== 0 || queue.signatureCount !== 0) throw new Error("chain-task did not drain");
  return (tasks / elapsed) * 1000;
}

async function runPQueue(signatures: readonly string[], tasks: number): Promise<number> {
  const queues = new Map<string, PQueue>();
  const promises: Promise<void>[] = new Array(tasks);
  const count = signatures.length;
  const start = performance.now();
  for (let i = 0; i < tasks; i++) {
    const signature = signatures[i % count] as string;
    let queue = queues.get(signature);
    if (queue === undefined) {
      queue = new PQueue({ concurrency: 1 });
      queues.set(signature, queue);
    }
    promises[i] = queue.add(noop);
  }
  await Promise.all(promises);
  const elapsed = performance.now() - start;
  return (tasks / elapsed) * 1000;
}

function run(impl: Impl, scenario: Scenario): Promise<number> {
  gc?.();
  const go = () => (impl === "chain-task" ? runChainTask(scenario.signatures, TASKS) : runPQueue(scenario.signatures, TASKS));
  return IN_WORK_SCOPE ? workScope.run({ requestId: randomUUID() }, go) : go();
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<void> {
  const scenarios: Scenario[] = [
    { label: "1 signature", signatures: ["vm-" + randomUUID()] },
    { label: "10,000 signatures", signatures: Array.from({ length: 10_000 }, () => "vm-" + randomUUID()) },
  ];
  const impls: Impl[] = ["chain-task", "p-queue"];
  const results = new Map<string, number[]>();

  console.log(
    `chain-task vs p-queue: ${fmt(TASKS)} no-op async tasks per scenario, ${WARMUP_ROUNDS} warmup + ${ROUNDS} rounds, ` +
      `node ${process.version}, gc between runs: ${gc ? "yes" : "no (run with --expose-gc)"}` +
      (IN_WORK_SCOPE ? ", submitting inside an AsyncLocalStorage scope" : ""),
  );
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round++) {
    for (const scenario of scenarios) {
      // Alternate who goes first so neither side always runs on a freshly collected heap.
      const order = round % 2 === 0 ? impls : [...impls].reverse();
      for (const impl of order) {
        const rate = await run(impl, scenario);
        if (round < WARMUP_ROUNDS) continue;
        const key = `${scenario.label}|${impl}`;
        let list = results.get(key);
        if (list === undefined) results.set(key, (list = []));
        list.push(rate);
      }
    }
  }

  const rows: string[][] = [["scenario", "implementation", "median tasks/s", "min tasks/s", "max tasks/s"]];
  const medians = new Map<string, number>();
  for (const scenario of scenarios) {
    for (const impl of impls) {
      const list = results.get(`${scenario.label}|${impl}`) ?? [];
      const med = median(list);
      medians.set(`${scenario.label}|${impl}`, med);
      rows.push([scenario.label, impl, fmt(med), fmt(Math.min(...list)), fmt(Math.max(...list))]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  const line = (r: string[]) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ");
  console.log(line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows.slice(1)) console.log(line(r));
  for (const scenario of scenarios) {
    const ratio = medians.get(`${scenario.label}|chain-task`)! / medians.get(`${scenario.label}|p-queue`)!;
    // Same-round pairs ran seconds apart, so their ratio is less exposed to machine load drift.
    const ours = results.get(`${scenario.label}|chain-task`) ?? [];
    const theirs = results.get(`${scenario.label}|p-queue`) ?? [];
    const paired = median(ours.map((rate, i) => rate / (theirs[i] as number)));
    console.log(`ratio at ${scenario.label}: ${ratio.toFixed(2)} (ratio of medians), ${paired.toFixed(2)} (median of per-round ratios)`);
  }
  const headline = medians.get("10,000 signatures|chain-task")! / medians.get("10,000 signatures|p-queue")!;
  console.log(`chain-task ratio vs p-queue: ${headline.toFixed(2)}`);
}

await main();
