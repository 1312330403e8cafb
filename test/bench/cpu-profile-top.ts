/**
 * `tsx test/bench/cpu-profile-top.ts <file.cpuprofile> [--top N] [--inclusive] [--filter SUBSTR]`:
 * the functions a V8 CPU profile (node --cpu-prof, e.g. through STRATUM_NODE_ARGS on bench:vm)
 * spent the most time in, by self time (default) or inclusive time, summed per function + file so
 * the same function reached from many stacks is one row. Used to find what a VM create costs
 * compute, rather than guessing.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: "string" }, timeline: { type: "string" }, callers: { type: "string" }, depth: { type: "string", default: "4" }, top: { type: "string", default: "40" }, inclusive: { type: "boolean", default: false }, filter: { type: "string" } },
});
const file = positionals[0];
if (file === undefined) {
  console.error("usage: cpu-profile-top.ts <file.cpuprofile> [--top N] [--inclusive] [--filter SUBSTR]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const key = (f: CallFrame) => `${f.functionName || "(anonymous)"} ${f.url.replace(/^file:\/\//, "").replace(/.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, "~/").replace(/.*\/work\/main\//, "")}:${f.lineNumber + 1}`;
const stackHas = (id: number, part: string): boolean => {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) if (key(byId.get(cur)!.callFrame).includes(part)) return true;
  return false;
};
// --window A,B: only the samples taken A..B seconds after the profile started (a bench phase);
// --timeline PART: per second, the share of samples with PART on the stack, to find the phases.
const [from, to] = (values.window ?? "0,1e9").split(",").map(Number) as [number, number];
const selfUs = new Map<number, number>();
const perSecond = new Map<number, [number, number]>();
let t = 0;
profile.samples.forEach((id, i) => {
  t += profile.timeDeltas[i] ?? 0;
  if (values.timeline !== undefined) {
    const sec = Math.floor(t / 1e6);
    const b = perSecond.get(sec) ?? [0, 0];
    b[1]++;
    if (stackHas(id, values.timeline)) b[0]++;
    perSecond.set(sec, b);
  }
  if (t / 1e6 < from || t / 1e6 > to) return;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
if (values.timeline !== undefined) {
  for (const [sec, [hit, n]] of perSecond) console.log(`${String(sec).padStart(4)} s ${((100 * hit) / n).toFixed(0).padStart(4)}% ${"#".repeat(Math.round((40 * hit) / n))}`);
  process.exit(0);
}

const totals = new Map<string, number>();
if (values.callers !== undefined) {
  // --callers NAME: the stacks (DEPTH frames up) that time inside functions whose key contains NAME came from.
  for (const [id, us] of selfUs) {
    const chain: string[] = [];
    let cur: number | undefined = id;
    let hit: number | undefined;
    for (; cur !== undefined; cur = parent.get(cur)) if (key(byId.get(cur)!.callFrame).includes(values.callers)) hit = cur;
    if (hit === undefined) continue;
    for (cur = hit; cur !== undefined && chain.length < Number(values.depth); cur = parent.get(cur)) chain.push(key(byId.get(cur)!.callFrame));
    const k = chain.join(" < ");
    totals.set(k, (totals.get(k) ?? 0) + us);
  }
}
let all = 0;
for (const [id, us] of selfUs) {
  all += us;
  if (values.callers !== undefined) continue;
  const node = byId.get(id)!;
  if (!values.inclusive) {
    const k = key(node.callFrame);
    totals.set(k, (totals.get(k) ?? 0) + us);
    continue;
  }
  // Inclusive: every distinct function on the stack, once per sample (recursion counted once).
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key(byId.get(cur)!.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    totals.set(k, (totals.get(k) ?? 0) + us);
  }
}
const rows = [...totals].filter(([k]) => values.filter === undefined || k.includes(values.filter)).sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
console.log(`${file}: ${(all / 1e6).toFixed(2)} s sampled (${values.inclusive ? "inclusive" : "self"})`);
for (const [k, us] of rows) console.log(`${(us / 1e3).toFixed(0).padStart(8)} ms ${((100 * us) / all).toFixed(1).padStart(5)}%  ${k}`);
