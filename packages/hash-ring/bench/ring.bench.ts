/**
 * Stratum's hash ring against the npm packages `hashring` (ketama) and `consistent-hash`, side by
 * side in one process on the same keys:
 *   - lookups/s for 16 nodes over 200,000 pre-generated UUIDs (warm-up, then timed passes taken
 *     round-robin so background noise hits every library alike; median and best reported),
 *   - balance: busiest node's keys ÷ mean over 1,000,000 UUIDs,
 *   - movement: fraction of those keys that change owner when a 17th node joins (ideal 1/17),
 *     and the fraction that moved somewhere other than onto the new node (ideal 0).
 * Every library runs with its default settings (read from its source): hashring = md5, 40 vnode
 * hashes × 4 points = 160 points per server, LRU cache of 5000 keys; consistent-hash = 40 random
 * control points per node in a ring of 100003 positions; ours = DEFAULT_VNODES per node.
 *
 * Run: pnpm bench:ring. The last line is `ring lookup ratio vs hashring: X` (median lookups/s,
 * ours ÷ hashring's).
 */
import ConsistentHash from "consistent-hash";
import HashRingKetama from "hashring";
import { DEFAULT_VNODES, HashRing } from "../src/index";
import { seededUuids } from "../src/seeded-uuids";

const NODE_COUNT = 16;
const LOOKUP_KEYS = 200_000;
const BALANCE_KEYS = 1_000_000;
const WARMUP_PASSES = 3;
const TIMED_ROUNDS = 9;
const BUILD_REPEATS = 5;

/** Replica addresses; hashring parses ids as host:port, so all three get the same real-looking ids. */
const nodeIds = Array.from({ length: NODE_COUNT }, (_, i) => `10.0.0.${i + 1}:7070`);
const joiner = `10.0.0.${NODE_COUNT + 1}:7070`;

interface Contender {
  readonly name: string;
  readonly config: string;
  readonly deterministic: string;
  /** Builds the 16-node ring, returning its lookup. */
  build(): void;
  /** One timed pass over the keys; returns a checksum so the work cannot be optimized away. */
  pass(keys: readonly string[]): number;
  owner(key: string): string;
  addJoiner(): void;
  buildMs: number;
  samples: number[];
}

// Each pass lives in its own function so every call site stays monomorphic: a shared loop taking
// a callback would be inlined for the first library and penalize the others.
function passOurs(ring: HashRing, keys: readonly string[]): number {
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum += ring.ownerOf(keys[i]!)!.length;
  return sum;
}

function passKetama(ring: HashRingKetama, keys: readonly string[]): number {
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum += ring.get(keys[i]!)!.length;
  return sum;
}

function passConsistentHash(ring: ConsistentHash<string>, keys: readonly string[]): number {
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum += ring.get(keys[i]!)!.length;
  return sum;
}

function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

function ours(): Contender {
  let ring = new HashRing();
  const c: Contender = {
    name: "@stratum/hash-ring",
    config: `murmur3, ${DEFAULT_VNODES} vnodes/node`,
    deterministic: "yes",
    build: () => {
      c.buildMs = timed(() => {
        ring = new HashRing({ nodes: nodeIds });
      });
    },
    pass: (keys) => passOurs(ring, keys),
    owner: (key) => ring.ownerOf(key)!,
    addJoiner: () => void ring.add(joiner),
    buildMs: 0,
    samples: [],
  };
  return c;
}

function ketama(): Contender {
  let ring = new HashRingKetama([]);
  const c: Contender = {
    name: "hashring",
    config: "md5 ketama, 160 points/node, LRU 5000",
    deterministic: "yes",
    build: () => {
      c.buildMs = timed(() => {
        ring = new HashRingKetama(nodeIds);
      });
    },
    pass: (keys) => passKetama(ring, keys),
    owner: (key) => ring.get(key)!,
    addJoiner: () => void ring.add(joiner),
    buildMs: 0,
    samples: [],
  };
  return c;
}

function consistentHash(): Contender {
  let ring = new ConsistentHash<string>();
  const c: Contender = {
    name: "consistent-hash",
    config: "PJW 24-bit, 40 random points/node",
    deterministic: "no (Math.random points)",
    build: () => {
      c.buildMs = timed(() => {
        ring = new ConsistentHash<string>();
        for (const id of nodeIds) ring.add(id);
        ring.get("warm"); // it sorts lazily on the first lookup; count that as building
      });
    },
    pass: (keys) => passConsistentHash(ring, keys),
    owner: (key) => ring.get(key)!,
    addJoiner: () => void ring.add(joiner),
    buildMs: 0,
    samples: [],
  };
  return c;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fmtRate(perSecond: number): string {
  return perSecond >= 1e6 ? `${(perSecond / 1e6).toFixed(2)} M/s` : `${(perSecond / 1e3).toFixed(0)} k/s`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

let blackhole = 0;

function main(): void {
  const contenders = [ours(), ketama(), consistentHash()];
  const lookupKeys = seededUuids(LOOKUP_KEYS, 1);
  const balanceKeys = seededUuids(BALANCE_KEYS, 2);

  // Build each ring a few times and keep the fastest, so the first (cold, unoptimized) build
  // does not decide the column.
  const buildMs = new Map<Contender, number>();
  for (let rep = 0; rep < BUILD_REPEATS; rep++) {
    for (const c of contenders) {
      c.build();
      buildMs.set(c, Math.min(buildMs.get(c) ?? Number.POSITIVE_INFINITY, c.buildMs));
    }
  }
  for (const c of contenders) c.buildMs = buildMs.get(c)!;

  // Lookups: warm up every library, then timed rounds, rotating who goes first.
  for (let w = 0; w < WARMUP_PASSES; w++) for (const c of contenders) blackhole += c.pass(lookupKeys);
  for (let round = 0; round < TIMED_ROUNDS; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length]!;
      const start = performance.now();
      blackhole += c.pass(lookupKeys);
      c.samples.push(LOOKUP_KEYS / ((performance.now() - start) / 1000));
    }
  }

  // Balance at 16 nodes, then movement when the 17th joins.
  const results = contenders.map((c) => {
    const before = new Array<string>(BALANCE_KEYS);
    const counts = new Map<string, number>();
    for (let i = 0; i < BALANCE_KEYS; i++) {
      const owner = c.owner(balanceKeys[i]!);
      before[i] = owner;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    const mean = BALANCE_KEYS / NODE_COUNT;
    const maxOverMean = Math.max(...counts.values()) / mean;
    const minOverMean = (counts.size < NODE_COUNT ? 0 : Math.min(...counts.values())) / mean;
    c.addJoiner();
    let moved = 0;
    let movedElsewhere = 0;
    for (let i = 0; i < BALANCE_KEYS; i++) {
      const owner = c.owner(balanceKeys[i]!);
      if (owner !== before[i]) {
        moved++;
        if (owner !== joiner) movedElsewhere++;
      }
    }
    return { c, maxOverMean, minOverMean, moved: moved / BALANCE_KEYS, movedElsewhere: movedElsewhere / BALANCE_KEYS };
  });

  const rows = results.map(({ c, maxOverMean, minOverMean, moved, movedElsewhere }) => [
    c.name,
    c.config,
    fmtRate(median(c.samples)),
    fmtRate(Math.max(...c.samples)),
    maxOverMean.toFixed(3),
    minOverMean.toFixed(3),
    pct(moved),
    pct(movedElsewhere),
    c.buildMs.toFixed(1),
    c.deterministic,
  ]);

  console.log(
    `hash ring benchmark: ${NODE_COUNT} nodes; lookups over ${LOOKUP_KEYS} UUIDs (${WARMUP_PASSES} warm-up + ` +
      `${TIMED_ROUNDS} timed passes each, round-robin); balance and movement over ${BALANCE_KEYS} UUIDs\n`,
  );
  console.log(
    table(
      [
        "library",
        "settings (defaults)",
        "lookups/s median",
        "lookups/s best",
        "max/mean",
        "min/mean",
        `moved ${NODE_COUNT}->${NODE_COUNT + 1}`,
        "moved not to new",
        "build ms (best of 5)",
        "same owners in every process",
      ],
      rows,
    ),
  );
  console.log(`\nideal movement when the ${NODE_COUNT + 1}th node joins: 1/${NODE_COUNT + 1} = ${pct(1 / (NODE_COUNT + 1))}; ideal max/mean = min/mean = 1`);
  if (blackhole === 42) console.log(""); // keeps the checksums alive

  const oursMedian = median(contenders[0]!.samples);
  const ketamaMedian = median(contenders[1]!.samples);
  console.log(`ring lookup ratio vs hashring: ${(oursMedian / ketamaMedian).toFixed(2)}`);
}

main();
