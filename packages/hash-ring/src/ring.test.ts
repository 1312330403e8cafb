import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { murmur3 } from "./hash";
import { DEFAULT_VNODES, HashRing, type NodeSpec } from "./ring";
import { seededUuids } from "./seeded-uuids";

const KEYS = seededUuids(2000, 42);

/**
 * The ring as its documentation defines it, written the slow obvious way: every vnode of every
 * node as (murmur3(`${id}#${i}`), id), sorted by position then id; a key belongs to the first
 * vnode at or after its hash, wrapping around. HashRing must agree with it exactly.
 */
class ReferenceRing {
  readonly points: { position: number; id: string }[] = [];

  constructor(members: ReadonlyMap<string, number>, vnodes: number) {
    for (const [id, weight] of members) {
      const count = Math.max(1, Math.round(vnodes * weight));
      for (let i = 0; i < count; i++) this.points.push({ position: murmur3(`${id}#${i}`), id });
    }
    this.points.sort((a, b) => a.position - b.position || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  ownersOf(key: string, n: number): string[] {
    const h = murmur3(key);
    let start = this.points.findIndex((p) => p.position >= h);
    if (start < 0) start = 0;
    const out: string[] = [];
    for (let k = 0; k < this.points.length && out.length < n; k++) {
      const id = this.points[(start + k) % this.points.length]!.id;
      if (!out.includes(id)) out.push(id);
    }
    return out;
  }
}

function owners(ring: HashRing, keys: readonly string[] = KEYS): (string | undefined)[] {
  return keys.map((k) => ring.ownerOf(k));
}

/** Everything observable about a ring, to prove that a rejected call changed nothing. */
function snapshot(ring: HashRing) {
  return {
    epoch: ring.epoch,
    fingerprint: ring.fingerprint,
    size: ring.size,
    pointCount: ring.pointCount,
    nodes: ring.nodes(),
    weights: ring.nodes().map((n) => ring.weightOf(n)),
    owners: owners(ring, KEYS.slice(0, 300)),
    owners3: KEYS.slice(0, 50).map((k) => ring.ownersOf(k, 3)),
  };
}

const nodeId = fc.oneof(
  fc.constantFrom("a", "aa", "a\u0000", "b", "mn-1", "mn-10", "mn-2", "é", "日本", "😀"),
  fc.string({ minLength: 1, maxLength: 12 }),
);
const weight = fc.constantFrom(0.25, 0.5, 1, 1, 1, 1.5, 2, 3);
const membership = fc.uniqueArray(fc.record({ id: nodeId, weight }), {
  minLength: 1,
  maxLength: 12,
  selector: (m) => m.id,
});

describe("HashRing basics", () => {
  it("has a documented default vnode count", () => {
    expect(new HashRing().vnodes).toBe(DEFAULT_VNODES);
    expect(DEFAULT_VNODES).toBe(4096);
    expect(new HashRing({ vnodes: 16 }).vnodes).toBe(16);
  });

  it("answers undefined / [] on an empty ring instead of inventing an owner", () => {
    const ring = new HashRing();
    expect(ring.size).toBe(0);
    expect(ring.ownerOf("vm-1")).toBeUndefined();
    expect(ring.ownersOf("vm-1", 3)).toEqual([]);
    ring.add("a");
    ring.remove("a");
    expect(ring.ownerOf("vm-1")).toBeUndefined();
    expect(ring.ownersOf("vm-1", 1)).toEqual([]);
  });

  it("tracks membership: size, has, nodes (sorted), weightOf, pointCount", () => {
    const ring = new HashRing({ vnodes: 100 });
    ring.add("mn-2").add("mn-10", { weight: 2 }).add("mn-1", { weight: 0.5 });
    expect(ring.size).toBe(3);
    expect(ring.has("mn-10")).toBe(true);
    expect(ring.has("mn-3")).toBe(false);
    expect(ring.nodes()).toEqual(["mn-1", "mn-10", "mn-2"]);
    expect(ring.weightOf("mn-10")).toBe(2);
    expect(ring.weightOf("mn-3")).toBeUndefined();
    expect(ring.pointCount).toBe(100 + 200 + 50);
    expect(ring.remove("mn-10")).toBe(true);
    expect(ring.remove("mn-10")).toBe(false);
    expect(ring.nodes()).toEqual(["mn-1", "mn-2"]);
    expect(ring.pointCount).toBe(150);
  });

  it("sends every key to the single node of a one-node ring", () => {
    const ring = new HashRing().add("only");
    expect(new Set(owners(ring))).toEqual(new Set(["only"]));
  });

  it("gives a node a share of keys proportional to its weight", () => {
    const ring = new HashRing({ nodes: [{ id: "small", weight: 1 }, { id: "medium", weight: 1 }, { id: "big", weight: 2 }] });
    const keys = seededUuids(100_000, 7);
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(ring.ownerOf(k)!, (counts.get(ring.ownerOf(k)!) ?? 0) + 1);
    expect(counts.get("big")! / keys.length).toBeCloseTo(0.5, 1);
    expect(counts.get("small")! / keys.length).toBeCloseTo(0.25, 1);
    expect(counts.get("medium")! / keys.length).toBeCloseTo(0.25, 1);
  });
});

describe("determinism", () => {
  it("agrees with the reference definition after any sequence of add / remove / setNodes", () => {
    type Op =
      | { kind: "add"; id: string; weight: number }
      | { kind: "remove"; id: string }
      | { kind: "set"; nodes: NodeSpec[] };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), id: nodeId, weight }),
      fc.record({ kind: fc.constant("remove" as const), id: nodeId }),
      fc.record({ kind: fc.constant("set" as const), nodes: membership }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.integer({ min: 1, max: 40 }), (ops, vnodes) => {
        const ring = new HashRing({ vnodes });
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === "add") {
            if (model.has(o.id)) {
              expect(() => ring.add(o.id, { weight: o.weight })).toThrow(RangeError);
            } else {
              ring.add(o.id, { weight: o.weight });
              model.set(o.id, o.weight);
            }
          } else if (o.kind === "remove") {
            expect(ring.remove(o.id)).toBe(model.delete(o.id));
          } else {
            ring.setNodes(o.nodes);
            model.clear();
            for (const n of o.nodes) model.set(n.id, n.weight ?? 1);
          }
          const reference = new ReferenceRing(model, vnodes);
          // `${id}#0` as a key lands exactly on vnode 0 of its node: the equal-position edge case.
          for (const key of [...KEYS.slice(0, 100), ...[...model.keys()].map((id) => `${id}#0`), ""]) {
            expect(ring.ownersOf(key, 3)).toEqual(reference.ownersOf(key, 3));
            expect(ring.ownerOf(key)).toBe(reference.ownersOf(key, 1)[0]);
          }
          expect(ring.fingerprint).toBe(new HashRing({ vnodes, nodes: [...model].map(([id, w]) => ({ id, weight: w })) }).fingerprint);
        }
      }),
      { numRuns: 150 },
    );
  });

  // With vnode i at murmur3(id, seed = i), "a" and "a\u0000" (which differ only in length) put
  // their vnodes on the same positions pairwise, and the tie-break handed "a" every key.
  it("gives near-identical ids independent vnode positions", () => {
    const ring = new HashRing({ nodes: ["a", "a\u0000", "a\u0000\u0000", "b", "b "] });
    const counts = new Map<string, number>();
    for (const key of KEYS) counts.set(ring.ownerOf(key)!, (counts.get(ring.ownerOf(key)!) ?? 0) + 1);
    for (const id of ring.nodes()) expect(counts.get(id) ?? 0).toBeGreaterThan(KEYS.length / 5 / 2);
  });

  it("gives identical owners whatever order the nodes were added in", () => {
    fc.assert(
      fc.property(
        membership.chain((m) => fc.tuple(fc.constant(m), fc.shuffledSubarray(m, { minLength: m.length, maxLength: m.length }))),
        ([inOrder, shuffled]) => {
          const a = new HashRing({ vnodes: 64 });
          for (const n of inOrder) a.add(n.id, { weight: n.weight });
          const b = new HashRing({ vnodes: 64 });
          // Detour: add and remove an extra node, so slot numbers differ from a's too.
          b.add("\u0000detour");
          for (const n of shuffled) b.add(n.id, { weight: n.weight });
          b.remove("\u0000detour");
          const c = new HashRing({ vnodes: 64, nodes: shuffled });
          expect(owners(b)).toEqual(owners(a));
          expect(owners(c)).toEqual(owners(a));
          expect(KEYS.slice(0, 200).map((k) => b.ownersOf(k, 4))).toEqual(KEYS.slice(0, 200).map((k) => a.ownersOf(k, 4)));
          expect(b.fingerprint).toBe(a.fingerprint);
          expect(c.fingerprint).toBe(a.fingerprint);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("gives identical owners for shuffled orders at the default vnode count", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uuid(), { minLength: 3, maxLength: 20 }).chain((ids) =>
          fc.tuple(fc.constant(ids), fc.shuffledSubarray(ids, { minLength: ids.length, maxLength: ids.length })),
        ),
        ([ids, shuffled]) => {
          const a = new HashRing();
          for (const id of ids) a.add(id);
          const b = new HashRing();
          for (const id of shuffled) b.add(id);
          expect(owners(b)).toEqual(owners(a));
        },
      ),
      { numRuns: 10 },
    );
  });

  // murmur3("replica-a#3968") === murmur3("replica-b-75#3229"): two vnodes at one position.
  // "vm-8784" hashes just before it, so its owner is decided by the tie-break alone.
  it("breaks vnode position collisions by node id, whatever the insertion order", () => {
    const collision = murmur3("replica-a#3968");
    expect(murmur3("replica-b-75#3229")).toBe(collision);
    const ringAB = new HashRing().add("replica-a").add("replica-b-75");
    const ringBA = new HashRing().add("replica-b-75").add("replica-a");
    const bulk = new HashRing({ nodes: ["replica-b-75", "replica-a"] });
    const reset = new HashRing().add("x");
    reset.setNodes(["replica-b-75", "replica-a"]);
    // The key's successor vnode is the collision point.
    const ref = new ReferenceRing(new Map([["replica-a", 1], ["replica-b-75", 1]]), DEFAULT_VNODES);
    expect(ref.points.find((p) => p.position >= murmur3("vm-8784"))!.position).toBe(collision);
    for (const ring of [ringAB, ringBA, bulk, reset]) {
      expect(ring.ownerOf("vm-8784")).toBe("replica-a");
      expect(ring.ownersOf("vm-8784", 2)).toEqual(["replica-a", "replica-b-75"]);
    }
  });

  // Pinned ownership: a change here changes routing between replicas running different builds,
  // so it must be deliberate (and come with a new RING_ALGORITHM).
  it("routes keys exactly as pinned (stable across processes and releases)", () => {
    const ring = new HashRing({ nodes: ["mn-1", "mn-2", "mn-3", { id: "mn-4", weight: 2 }, "mn-5"] });
    // Cross-checked with an independent implementation (Python + the C reference MurmurHash3).
    const pinned: [string, string][] = [
      ["e3e8fabf-b363-40fd-ad04-0dfac19d43d5", "mn-4"],
      ["3e280ea4-c1e1-4b72-a735-661597038e2b", "mn-5"],
      ["6bfa8bd2-b2f3-4fab-a51f-3e488b7ac2d7", "mn-4"],
      ["5bf77e1a-8431-4598-bee7-6fac474eaf79", "mn-5"],
      ["57eb7d33-f704-4943-b763-b7e950443a9b", "mn-1"],
      ["0f846145-e197-4178-b233-eee6fc4ba4e8", "mn-2"],
      ["2da079be-6655-48da-904e-c1ed3664747d", "mn-2"],
      ["bd96d432-4c30-432e-afd6-ef4f2eace012", "mn-3"],
      ["6364ae1c-e9c6-4a4a-9e87-848de5f89f75", "mn-3"],
      ["2af87879-f159-49fa-bb36-dbaa84ff56a2", "mn-5"],
      ["729f9298-6da5-4fd4-a961-34cd9cde191a", "mn-4"],
      ["59a81405-d080-4e4f-86b8-e5dfd3545885", "mn-3"],
    ];
    expect(pinned.map(([key]) => [key, ring.ownerOf(key)])).toEqual(pinned);
    expect(ring.fingerprint).toBe("ffcc55033ca78942");
    expect(new HashRing().fingerprint).toBe("4858ba3b69eaad9f");
  });
});

describe("ownersOf", () => {
  it("returns min(n, size) distinct nodes, owner first, each list a prefix of the longer ones", () => {
    fc.assert(
      fc.property(membership, fc.integer({ min: 1, max: 15 }), (members, n) => {
        const ring = new HashRing({ vnodes: 32, nodes: members });
        for (const key of KEYS.slice(0, 100)) {
          const list = ring.ownersOf(key, n);
          expect(list.length).toBe(Math.min(n, ring.size));
          expect(new Set(list).size).toBe(list.length);
          expect(list[0]).toBe(ring.ownerOf(key));
          expect(ring.ownersOf(key, n + 1).slice(0, n)).toEqual(list);
          for (const id of list) expect(ring.has(id)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("lists the fallbacks in ring order: removing the owner hands the key to the next one listed", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { minLength: 2, maxLength: 10 }), fc.integer({ min: 0, max: KEYS.length - 1 }), (ids, k) => {
        const key = KEYS[k]!;
        const ring = new HashRing({ vnodes: 64, nodes: ids });
        const fallbacks = ring.ownersOf(key, ids.length);
        for (let i = 0; i < fallbacks.length - 1; i++) {
          ring.remove(fallbacks[i]!);
          expect(ring.ownerOf(key)).toBe(fallbacks[i + 1]);
          expect(ring.ownersOf(key, ids.length)).toEqual(fallbacks.slice(i + 1));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("keeps working after many calls (its scratch marks never leak between calls)", () => {
    const ring = new HashRing({ vnodes: 8, nodes: ["a", "b", "c"] });
    for (let i = 0; i < 10_000; i++) expect(ring.ownersOf(KEYS[i % KEYS.length]!, 3).length).toBe(3);
    ring.add("d");
    expect(ring.ownersOf("x", 10).sort()).toEqual(["a", "b", "c", "d"]);
  });
});

describe("epoch and fingerprint", () => {
  it("moves the epoch by exactly one on every membership change, and only then", () => {
    const ring = new HashRing({ vnodes: 16 });
    expect(ring.epoch).toBe(0);
    ring.add("a");
    expect(ring.epoch).toBe(1);
    ring.add("b", { weight: 2 });
    expect(ring.epoch).toBe(2);
    expect(ring.remove("a")).toBe(true);
    expect(ring.epoch).toBe(3);
    expect(ring.remove("a")).toBe(false);
    expect(ring.epoch).toBe(3);
    expect(ring.setNodes([{ id: "b", weight: 2 }])).toBe(false);
    expect(ring.epoch).toBe(3);
    expect(ring.setNodes([{ id: "b", weight: 3 }])).toBe(true);
    expect(ring.epoch).toBe(4);
    expect(ring.setNodes(["b", "c", "d"])).toBe(true);
    expect(ring.epoch).toBe(5);
    expect(() => ring.add("c")).toThrow();
    expect(ring.epoch).toBe(5);
    ring.ownerOf("k");
    ring.ownersOf("k", 2);
    expect(ring.epoch).toBe(5);
  });

  it("moves the epoch on every add and remove (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.constantFrom("a", "b", "c", "d")), { maxLength: 30 }), (ops) => {
        const ring = new HashRing({ vnodes: 4 });
        for (const [isAdd, id] of ops) {
          const before = ring.epoch;
          const changed = isAdd ? (ring.has(id) ? false : (ring.add(id), true)) : ring.remove(id);
          expect(ring.epoch).toBe(changed ? before + 1 : before);
        }
      }),
    );
  });

  it("fingerprints membership, not history: equal views compare equal, different views differ", () => {
    const a = new HashRing().add("a").add("b").add("c");
    const b = new HashRing().add("c").add("a").add("b");
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.epoch).toBe(a.epoch);
    b.add("d");
    expect(b.fingerprint).not.toBe(a.fingerprint);
    b.remove("d");
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.epoch).not.toBe(a.epoch);
    expect(b.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(new HashRing({ vnodes: 100, nodes: ["a", "b", "c"] }).fingerprint).not.toBe(a.fingerprint);
    expect(new HashRing({ nodes: ["a", "b", { id: "c", weight: 2 }] }).fingerprint).not.toBe(a.fingerprint);
    expect(new HashRing({ nodes: ["a", "b", "c "] }).fingerprint).not.toBe(a.fingerprint);
  });

  it("gives different memberships different fingerprints (property)", () => {
    fc.assert(
      fc.property(membership, membership, (m1, m2) => {
        const r1 = new HashRing({ vnodes: 8, nodes: m1 });
        const r2 = new HashRing({ vnodes: 8, nodes: m2 });
        const sameLayout = JSON.stringify(r1.nodes().map((n) => [n, Math.round(8 * r1.weightOf(n)!)])) ===
          JSON.stringify(r2.nodes().map((n) => [n, Math.round(8 * r2.weightOf(n)!)]));
        expect(r1.fingerprint === r2.fingerprint).toBe(sameLayout);
      }),
    );
  });
});

describe("setNodes", () => {
  it("replaces the membership in one step and moves only the keys of nodes that changed", () => {
    const ring = new HashRing({ nodes: ["a", "b", "c", "d"] });
    const before = owners(ring);
    expect(ring.setNodes(["a", "b", "c", "e"])).toBe(true);
    expect(ring.nodes()).toEqual(["a", "b", "c", "e"]);
    const after = owners(ring);
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] !== after[i]) expect(before[i] === "d" || after[i] === "e").toBe(true);
      if (before[i] === "d") expect(after[i]).not.toBe("d");
    }
  });

  it("changes a weight by moving keys only onto (or off) the re-weighted node", () => {
    const ring = new HashRing({ nodes: ["a", "b", "c"] });
    const before = owners(ring);
    ring.setNodes(["a", "b", { id: "c", weight: 2 }]);
    const grown = owners(ring);
    for (let i = 0; i < KEYS.length; i++) if (before[i] !== grown[i]) expect(grown[i]).toBe("c");
    expect(grown.filter((o) => o === "c").length).toBeGreaterThan(before.filter((o) => o === "c").length);
    ring.setNodes(["a", "b", "c"]);
    expect(owners(ring)).toEqual(before);
  });
});

describe("bad input", () => {
  const cases: [string, (ring: HashRing) => unknown, ErrorConstructor, RegExp][] = [
    ["add an empty id", (r) => r.add(""), RangeError, /\bnode\b/],
    ["add a non-string id", (r) => r.add(42 as unknown as string), TypeError, /\bnode\b/],
    ["add an undefined id", (r) => r.add(undefined as unknown as string), TypeError, /\bnode\b/],
    ["add a duplicate", (r) => r.add("mn-2"), RangeError, /\bnode\b.*"mn-2".*already/],
    ["add with weight 0", (r) => r.add("x", { weight: 0 }), RangeError, /\bweight\b/],
    ["add with a negative weight", (r) => r.add("x", { weight: -1 }), RangeError, /\bweight\b/],
    ["add with weight NaN", (r) => r.add("x", { weight: Number.NaN }), RangeError, /\bweight\b/],
    ["add with weight Infinity", (r) => r.add("x", { weight: Number.POSITIVE_INFINITY }), RangeError, /\bweight\b/],
    ["add with a string weight", (r) => r.add("x", { weight: "2" as unknown as number }), TypeError, /\bweight\b/],
    ["add with an absurd weight", (r) => r.add("x", { weight: 1e9 }), RangeError, /\bweight\b/],
    ["add with null options", (r) => r.add("x", null as unknown as object), TypeError, /\boptions\b/],
    ["remove an empty id", (r) => r.remove(""), RangeError, /\bnode\b/],
    ["remove a non-string id", (r) => r.remove(null as unknown as string), TypeError, /\bnode\b/],
    ["ownerOf a non-string key", (r) => r.ownerOf(7 as unknown as string), TypeError, /\bkey\b/],
    ["ownersOf a non-string key", (r) => r.ownersOf(undefined as unknown as string, 1), TypeError, /\bkey\b/],
    ["ownersOf n = 0", (r) => r.ownersOf("k", 0), RangeError, /\bn\b/],
    ["ownersOf n = -1", (r) => r.ownersOf("k", -1), RangeError, /\bn\b/],
    ["ownersOf n = 1.5", (r) => r.ownersOf("k", 1.5), RangeError, /\bn\b/],
    ["ownersOf n = NaN", (r) => r.ownersOf("k", Number.NaN), RangeError, /\bn\b/],
    ["ownersOf a string n", (r) => r.ownersOf("k", "2" as unknown as number), TypeError, /\bn\b/],
    ["setNodes with a duplicate", (r) => r.setNodes(["x", "y", "x"]), RangeError, /nodes\[2\]/],
    ["setNodes with an empty id after a valid one", (r) => r.setNodes(["x", ""]), RangeError, /nodes\[1\]/],
    ["setNodes with a bad weight", (r) => r.setNodes(["x", { id: "y", weight: 0 }]), RangeError, /nodes\[1\]\.weight/],
    ["setNodes with a missing id", (r) => r.setNodes([{ weight: 1 } as unknown as NodeSpec]), TypeError, /nodes\[0\]\.id/],
    ["setNodes with a number entry", (r) => r.setNodes([3 as unknown as string]), TypeError, /nodes\[0\]/],
    ["setNodes with a string", (r) => r.setNodes("abc" as unknown as string[]), TypeError, /\bnodes\b/],
    ["setNodes with null", (r) => r.setNodes(null as unknown as string[]), TypeError, /\bnodes\b/],
  ];

  it.each(cases)("%s: throws a clear error and changes nothing", (_name, call, type, message) => {
    const ring = new HashRing({ vnodes: 64 });
    ring.add("mn-1").add("mn-2", { weight: 2 }).add("mn-3");
    const before = snapshot(ring);
    let error: unknown;
    try {
      call(ring);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    expect(snapshot(ring)).toEqual(before);
  });

  it.each([
    ["vnodes 0", { vnodes: 0 }, RangeError, /\bvnodes\b/],
    ["vnodes 1.5", { vnodes: 1.5 }, RangeError, /\bvnodes\b/],
    ["vnodes NaN", { vnodes: Number.NaN }, RangeError, /\bvnodes\b/],
    ["vnodes as a string", { vnodes: "8" }, TypeError, /\bvnodes\b/],
    ["an empty node", { nodes: ["a", ""] }, RangeError, /nodes\[1\]/],
    ["a duplicate node", { nodes: ["a", "a"] }, RangeError, /nodes\[1\]/],
  ] as const)("rejects a constructor with %s", (_name, options, type, message) => {
    expect(() => new HashRing(options as never)).toThrow(type);
    expect(() => new HashRing(options as never)).toThrow(message);
  });
});
