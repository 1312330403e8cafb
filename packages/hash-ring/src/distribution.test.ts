import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_VNODES, HashRing } from "./ring";
import { seededUuids } from "./seeded-uuids";

/**
 * Balance and movement at production scale: 1,000,000 random resource UUIDs over 3..64 replicas
 * at the default vnode count. Each property gets a handful of fast-check runs (membership drawn
 * at random each time) plus the extreme sizes explicitly, because one run costs ~1 M lookups;
 * for the same reason a failure is reported without shrinking (endOnFailure), with its seed.
 */

const KEY_COUNT = 1_000_000;
let keys: string[] = [];

beforeAll(() => {
  keys = seededUuids(KEY_COUNT, 0x5eed);
});

/** Replica ids the way Stratum names them: service plus a random instance id. */
const replicaIds = (min: number, max: number) =>
  fc.uniqueArray(fc.uuid().map((u) => `compute-${u}`), { minLength: min, maxLength: max });

function maxOverMean(ring: HashRing): number {
  const counts = new Map<string, number>();
  for (const id of ring.nodes()) counts.set(id, 0);
  for (let i = 0; i < keys.length; i++) {
    const owner = ring.ownerOf(keys[i]!)!;
    counts.set(owner, counts.get(owner)! + 1);
  }
  const mean = keys.length / ring.size;
  return Math.max(...counts.values()) / mean;
}

function ownersOfAll(ring: HashRing): string[] {
  const out = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = ring.ownerOf(keys[i]!)!;
  return out;
}

/** Adds `joiner` and checks: moved fraction <= 1.1/(n+1), and every moved key went to `joiner`. */
function checkAdd(ids: string[], joiner: string): void {
  const ring = new HashRing({ nodes: ids });
  const before = ownersOfAll(ring);
  ring.add(joiner);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    const now = ring.ownerOf(keys[i]!)!;
    if (now !== before[i]) {
      moved++;
      if (now !== joiner) expect.fail(`key ${keys[i]} moved from ${before[i]} to ${now}, not to the new node`);
    }
  }
  expect(moved).toBeGreaterThan(0);
  expect(moved / keys.length).toBeLessThanOrEqual(1.1 / (ids.length + 1));
}

/** Removes `leaver` and checks: only its keys moved, all of them, and onto surviving nodes. */
function checkRemove(ids: string[], leaver: string): void {
  const ring = new HashRing({ nodes: ids });
  const before = ownersOfAll(ring);
  ring.remove(leaver);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    const now = ring.ownerOf(keys[i]!)!;
    if (before[i] === leaver) {
      moved++;
      if (now === leaver) expect.fail(`key ${keys[i]} still owned by the removed node`);
    } else if (now !== before[i]) {
      expect.fail(`key ${keys[i]} moved from ${before[i]} to ${now}, but ${before[i]} did not leave`);
    }
  }
  expect(moved).toBeGreaterThan(0);
}

describe(`balance over ${KEY_COUNT} UUIDs at the default ${DEFAULT_VNODES} vnodes`, () => {
  it.each([3, 64])("%i nodes: busiest node holds at most 1.10 × the mean", (n) => {
    const ids = Array.from({ length: n }, (_, i) => `compute-mn-${i}`);
    expect(maxOverMean(new HashRing({ nodes: ids }))).toBeLessThanOrEqual(1.1);
  });

  it("3..64 random replicas: busiest node holds at most 1.10 × the mean", () => {
    fc.assert(
      fc.property(replicaIds(3, 64), (ids) => {
        expect(maxOverMean(new HashRing({ nodes: ids }))).toBeLessThanOrEqual(1.1);
      }),
      { numRuns: 5, endOnFailure: true },
    );
  });
});

describe(`movement over ${KEY_COUNT} UUIDs`, () => {
  it.each([3, 64])("adding a node to %i moves at most 1.1/(n+1) of the keys, all onto the new node", (n) => {
    checkAdd(
      Array.from({ length: n }, (_, i) => `compute-mn-${i}`),
      "compute-mn-new",
    );
  });

  it("adding a node to 3..64 random replicas moves at most 1.1/(n+1), all onto it", () => {
    fc.assert(
      fc.property(replicaIds(4, 65), (ids) => checkAdd(ids.slice(1), ids[0]!)),
      { numRuns: 4, endOnFailure: true },
    );
  });

  it("removing a node from 3..64 random replicas moves only that node's keys", () => {
    fc.assert(
      fc.property(
        replicaIds(3, 64).chain((ids) => fc.tuple(fc.constant(ids), fc.constantFrom(...ids))),
        ([ids, leaver]) => checkRemove(ids, leaver),
      ),
      { numRuns: 4, endOnFailure: true },
    );
  });
});
