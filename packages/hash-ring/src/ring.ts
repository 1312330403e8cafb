import { murmur3, murmur3Series } from "./hash";
import { assertKey, assertNodeId, assertPositiveInteger, assertWeight, MAX_NODE_VNODES, MAX_NODES } from "./validate";

/**
 * Virtual nodes per unit of weight when none is configured.
 *
 * Why 4096: a node's share of the keys is the sum of the arcs in front of its virtual nodes, so
 * its relative spread is about 1/sqrt(vnodes), and the busiest of n nodes sits ~2.4 spreads above
 * the mean at n = 64. Stratum asks that the busiest of 3..64 replicas hold at most 1.10 × the
 * mean. Exact arc shares (no key-sampling noise) over random 64-node memberships:
 *
 *   vnodes   memberships   typical max/mean   99th percentile   worst   over 1.10
 *      512       300            1.109              1.166         1.173     60 %
 *     1024       300            1.074              1.105         1.138      3 %
 *     2048       300            1.052              1.086         1.105    0.3 %
 *     3072       600            1.043              1.071         1.075      0
 *     4096       600            1.037              1.057         1.067      0
 *
 * 2048 still breaks the bound for about one membership in 300; 4096 keeps a wide margin, also for
 * a node of weight 0.5 (which gets 2048 vnodes). The price is small: 64 nodes × 4096 vnodes take
 * ~3.5 MiB (ring, lookup table, per-node caches), build in ~50 ms and change by a linear merge
 * (~5 ms per add or remove); lookups do not slow down, because they search one small bucket.
 */
export const DEFAULT_VNODES = 4096;

/**
 * Names everything that decides where a key lands: the hash, how vnode positions are derived, how
 * collisions are broken. It is part of {@link HashRing.fingerprint}, so replicas running
 * incompatible ring versions never believe they agree.
 */
export const RING_ALGORITHM = "stratum-hash-ring/v1 murmur3_x86_32(utf8) vnode=id#i tie=id";

/** One member of the ring. `weight` defaults to 1. */
export interface NodeSpec {
  readonly id: string;
  readonly weight?: number;
}

export interface AddOptions {
  /**
   * Relative capacity of the node: it gets `round(vnodes × weight)` virtual nodes (at least 1),
   * so a replica on a host twice as large can own twice the resources. Defaults to 1.
   */
  readonly weight?: number;
}

export interface HashRingOptions {
  /**
   * Virtual nodes per unit of weight. Every replica must use the same value, or they disagree on
   * ownership (the {@link HashRing.fingerprint} would differ). Defaults to {@link DEFAULT_VNODES}.
   */
  readonly vnodes?: number;
  /** Initial members. Building from a list sorts once instead of merging node by node. */
  readonly nodes?: Iterable<string | NodeSpec>;
}

interface Member {
  readonly id: string;
  readonly weight: number;
  /** This node's vnode positions, sorted; kept so rebuilds never re-hash. */
  readonly points: Uint32Array;
  /** Index into #slotIds; what #owners stores. Process-local, never part of ownership. */
  slot: number;
}

/** Multiplier that packs (position, rank) into one float64 for the bulk sort; 2^32 × 2^21 ≤ 2^53. */
const RANK_SPACE = MAX_NODES;

const EMPTY = new Uint32Array(0);

/**
 * Target vnodes per lookup bucket (the bucket table costs 4 bytes per INDEX_LOAD vnodes), and the
 * largest bucket table (2^20 + 1 entries, 4 MiB).
 */
const INDEX_LOAD = 2;
const INDEX_MAX_BITS = 20;

/** Orders node ids the same way in every JS process (UTF-16 code units), unlike localeCompare. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A consistent hash ring: maps every key (a resource UUID) to one owning node (a replica).
 *
 * Why a ring with virtual nodes: when a replica joins or leaves, only the keys it gains or loses
 * change owner — about 1/n of them — so per-resource chain-task queues on the other replicas are
 * not disturbed, and many vnodes per replica spread each replica's share evenly.
 *
 * Why it is a pure function of membership: every replica computes ownership on its own, from the
 * membership it sees. Whatever order nodes were added in, and however two vnode positions collide
 * (ties go to the smaller node id), the same members give the same owner for every key, in every
 * process. Compare {@link fingerprint}s to know two replicas see the same ring.
 *
 * Lookups hash the key without allocating and binary-search a sorted Uint32Array of vnode
 * positions, narrowed first by a bucket table on the top bits of the hash; membership changes
 * rebuild those arrays (a linear merge for add/remove), because routing is read millions of times
 * for every membership change.
 */
export class HashRing {
  /** Virtual nodes per unit of weight (see {@link HashRingOptions.vnodes}). */
  readonly vnodes: number;

  readonly #members = new Map<string, Member>();
  /** slot -> node id; holes are free slots. */
  #slotIds: (string | undefined)[] = [];
  #freeSlots: number[] = [];
  /** Sorted vnode positions, ties ordered by node id. */
  #points: Uint32Array = EMPTY;
  /** #owners[i] is the slot of the node owning #points[i]. */
  #owners: Uint32Array = EMPTY;
  /**
   * #index[b] is the first i with #points[i] >>> #shift >= b: a lookup binary-searches only its
   * bucket (a few vnodes, one cache line) instead of the whole array, so lookups stay fast when
   * the ring outgrows the CPU cache.
   */
  #index: Uint32Array = new Uint32Array(2);
  #shift = 31;
  #epoch = 0;
  #fingerprint: string | undefined;
  /** Scratch for ownersOf: seen[slot] === stamp means already returned. Avoids a Set per call. */
  #seen: Uint32Array = EMPTY;
  #stamp = 0;

  constructor(options: HashRingOptions = {}) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("options must be an object");
    }
    const vnodes = options.vnodes ?? DEFAULT_VNODES;
    assertPositiveInteger(vnodes, "vnodes");
    if (vnodes > MAX_NODE_VNODES) {
      throw new RangeError(`vnodes must be <= ${MAX_NODE_VNODES}, got ${vnodes}`);
    }
    this.vnodes = vnodes;
    if (options.nodes !== undefined) {
      this.#rebuildFrom(this.#parseSpecs(options.nodes, "nodes"));
      this.#reindex();
    }
  }

  /** Number of nodes on the ring. */
  get size(): number {
    return this.#members.size;
  }

  /** Number of virtual nodes on the ring (sum over nodes); for metrics and capacity planning. */
  get pointCount(): number {
    return this.#points.length;
  }

  /**
   * Process-local change counter: 0 for a freshly constructed ring, +1 on every call that changes
   * membership, unchanged by calls that fail or change nothing. Cheap to compare, so callers can
   * cache routing decisions and drop them when it moves. It is NOT comparable across replicas
   * (two replicas reach the same membership through different histories) and it is NOT the
   * fencing epoch of the membership store; use {@link fingerprint} to compare views.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Deterministic digest (16 hex chars) of everything that decides ownership: the algorithm
   * ({@link RING_ALGORITHM}) and each node id with its vnode count. Two rings with equal
   * fingerprints route every key identically, whatever order they were built in and in whatever
   * process, so replicas can exchange it (e.g. in heartbeats) to detect that they disagree on
   * membership. It is a 64-bit non-cryptographic digest: fine for detecting divergence, not a
   * security boundary.
   */
  get fingerprint(): string {
    if (this.#fingerprint === undefined) {
      let canonical = RING_ALGORITHM;
      for (const member of this.#sortedMembers()) {
        canonical += `\n${member.points.length} ${JSON.stringify(member.id)}`;
      }
      const hi = murmur3(canonical, 0x243f6a88);
      const lo = murmur3(canonical, 0x85a308d3);
      this.#fingerprint = hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
    }
    return this.#fingerprint;
  }

  /** Whether `node` is on the ring. */
  has(node: string): boolean {
    return this.#members.has(node);
  }

  /** Node ids sorted by UTF-16 code units, so the list is the same in every replica. */
  nodes(): string[] {
    return [...this.#members.keys()].sort(compareIds);
  }

  /** The weight `node` was added with, or undefined if it is not on the ring. */
  weightOf(node: string): number | undefined {
    return this.#members.get(node)?.weight;
  }

  /**
   * Adds a node. Throws — and changes nothing — on an empty id, a bad weight, or a node already on
   * the ring: a duplicate join means two replicas claim one id, which must be loud, not a no-op.
   * To change a node's weight, use {@link setNodes} (one epoch step) or remove + add.
   */
  add(node: string, options: AddOptions = {}): this {
    assertNodeId(node, "node");
    if (typeof options !== "object" || options === null) {
      throw new TypeError("options must be an object");
    }
    const weight = options.weight ?? 1;
    assertWeight(weight, "weight");
    if (this.#members.has(node)) {
      throw new RangeError(`node ${JSON.stringify(node)} is already on the ring; remove it first or use setNodes()`);
    }
    if (this.#members.size >= MAX_NODES) {
      throw new RangeError(`node cannot be added: the ring already holds the maximum of ${MAX_NODES} nodes`);
    }
    const member = this.#makeMember(node, weight, -1);

    member.slot = this.#freeSlots.pop() ?? this.#slotIds.length;
    this.#slotIds[member.slot] = node;
    this.#members.set(node, member);
    this.#mergeIn(member);
    this.#changed();
    return this;
  }

  /**
   * Removes a node. Returns false (and leaves the epoch alone) when it is not on the ring, so
   * reconciling against a membership feed can be repeated safely.
   */
  remove(node: string): boolean {
    assertNodeId(node, "node");
    const member = this.#members.get(node);
    if (member === undefined) return false;

    const points = this.#points;
    const owners = this.#owners;
    const keep = points.length - member.points.length;
    const nextPoints = new Uint32Array(keep);
    const nextOwners = new Uint32Array(keep);
    const slot = member.slot;
    let k = 0;
    for (let i = 0; i < points.length; i++) {
      const owner = owners[i]!;
      if (owner !== slot) {
        nextPoints[k] = points[i]!;
        nextOwners[k++] = owner;
      }
    }
    this.#points = nextPoints;
    this.#owners = nextOwners;
    this.#members.delete(node);
    this.#slotIds[slot] = undefined;
    this.#freeSlots.push(slot);
    this.#changed();
    return true;
  }

  /**
   * Replaces the whole membership with `nodes` in one step (one epoch increment), which is what a
   * membership watcher has in hand: the full set of live replicas. Nodes whose weight did not
   * change keep their cached vnodes. Returns false, leaving the epoch alone, when the membership
   * is already exactly `nodes`. Validates everything before changing anything.
   */
  setNodes(nodes: Iterable<string | NodeSpec>): boolean {
    const specs = this.#parseSpecs(nodes, "nodes");
    if (specs.size === this.#members.size) {
      let same = true;
      for (const [id, weight] of specs) {
        if (this.#members.get(id)?.weight !== weight) {
          same = false;
          break;
        }
      }
      if (same) return false;
    }
    this.#rebuildFrom(specs);
    this.#changed();
    return true;
  }

  /**
   * The node that owns `key`, or undefined when the ring is empty (no live replica: the caller
   * must decide between failing and waiting, so it is not hidden behind a default).
   */
  ownerOf(key: string): string | undefined {
    if (typeof key !== "string") assertKey(key);
    if (this.#points.length === 0) return undefined;
    return this.#slotIds[this.#owners[this.#locate(murmur3(key))]!];
  }

  /**
   * The first `n` distinct nodes met walking the ring clockwise from `key`: the owner first, then
   * the nodes that would take over, in order, if the ones before them left. Use it to pick
   * fallbacks or replicas for a key. Returns fewer than `n` when the ring has fewer nodes.
   */
  ownersOf(key: string, n: number): string[] {
    assertKey(key);
    assertPositiveInteger(n, "n");
    const want = Math.min(n, this.#members.size);
    const result: string[] = [];
    if (want === 0) return result;

    const points = this.#points;
    const owners = this.#owners;
    const total = points.length;
    let i = this.#locate(murmur3(key));
    if (this.#seen.length < this.#slotIds.length) {
      this.#seen = new Uint32Array(this.#slotIds.length);
      this.#stamp = 0;
    }
    if (this.#stamp === 0xffffffff) {
      this.#seen.fill(0);
      this.#stamp = 0;
    }
    const stamp = ++this.#stamp;
    const seen = this.#seen;
    while (result.length < want) {
      const slot = owners[i]!;
      if (seen[slot] !== stamp) {
        seen[slot] = stamp;
        result.push(this.#slotIds[slot]!);
      }
      if (++i === total) i = 0;
    }
    return result;
  }

  /** Index of the first vnode at or after position `h`, wrapping to 0 past the last one. */
  #locate(h: number): number {
    const points = this.#points;
    const n = points.length;
    const bucket = h >>> this.#shift;
    let lo = this.#index[bucket]!;
    let hi = this.#index[bucket + 1]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === n ? 0 : lo;
  }

  #changed(): void {
    this.#reindex();
    this.#epoch++;
    this.#fingerprint = undefined;
  }

  /** Rebuilds #index with about one bucket per INDEX_LOAD vnodes (at least 2 buckets). */
  #reindex(): void {
    const points = this.#points;
    const n = points.length;
    const bits = Math.min(INDEX_MAX_BITS, Math.max(1, Math.ceil(Math.log2(Math.max(1, n / INDEX_LOAD)))));
    const shift = 32 - bits;
    const buckets = 1 << bits;
    const index = new Uint32Array(buckets + 1);
    let b = 0;
    for (let i = 0; i < n; i++) {
      const bucket = points[i]! >>> shift;
      while (b <= bucket) index[b++] = i;
    }
    while (b <= buckets) index[b++] = n;
    this.#index = index;
    this.#shift = shift;
  }

  #sortedMembers(): Member[] {
    return [...this.#members.values()].sort((a, b) => compareIds(a.id, b.id));
  }

  /**
   * Vnode i of node `id` sits at murmur3(`${id}#${i}`) — reproducible in any language. The
   * mapping (id, i) -> string is injective (the index follows the last "#"), and a node whose
   * weight grows keeps its old vnodes, so a weight change moves only the keys it is about.
   */
  #makeMember(id: string, weight: number, slot: number): Member {
    const count = Math.max(1, Math.round(this.vnodes * weight));
    if (count > MAX_NODE_VNODES) {
      throw new RangeError(
        `weight ${weight} gives node ${JSON.stringify(id)} ${count} vnodes, more than the maximum of ${MAX_NODE_VNODES}`,
      );
    }
    const points = murmur3Series(`${id}#`, count);
    points.sort();
    return { id, weight, points, slot };
  }

  /** Linear merge of one node's sorted vnodes into the ring; equal positions go to the smaller id. */
  #mergeIn(member: Member): void {
    const points = this.#points;
    const owners = this.#owners;
    const add = member.points;
    const slotIds = this.#slotIds;
    const id = member.id;
    const slot = member.slot;
    const n = points.length;
    const m = add.length;
    const nextPoints = new Uint32Array(n + m);
    const nextOwners = new Uint32Array(n + m);
    let a = 0;
    let b = 0;
    let k = 0;
    while (a < n && b < m) {
      const pa = points[a]!;
      const pb = add[b]!;
      if (pa < pb || (pa === pb && slotIds[owners[a]!]! < id)) {
        nextPoints[k] = pa;
        nextOwners[k++] = owners[a++]!;
      } else {
        nextPoints[k] = pb;
        nextOwners[k++] = slot;
        b++;
      }
    }
    for (; a < n; a++, k++) {
      nextPoints[k] = points[a]!;
      nextOwners[k] = owners[a]!;
    }
    for (; b < m; b++, k++) {
      nextPoints[k] = add[b]!;
      nextOwners[k] = slot;
    }
    this.#points = nextPoints;
    this.#owners = nextOwners;
  }

  /**
   * Rebuilds the ring from scratch for `specs`: one sort of (position, rank-of-id) packed into a
   * float64, which orders ties by node id exactly like {@link #mergeIn} does.
   */
  #rebuildFrom(specs: Map<string, number>): void {
    const ids = [...specs.keys()].sort(compareIds);
    const members: Member[] = [];
    let total = 0;
    for (let rank = 0; rank < ids.length; rank++) {
      const id = ids[rank]!;
      const weight = specs.get(id)!;
      const existing = this.#members.get(id);
      const member =
        existing !== undefined && existing.weight === weight ? existing : this.#makeMember(id, weight, rank);
      members.push(member);
      total += member.points.length;
    }

    const packed = new Float64Array(total);
    let k = 0;
    for (let rank = 0; rank < members.length; rank++) {
      const points = members[rank]!.points;
      for (let i = 0; i < points.length; i++) packed[k++] = points[i]! * RANK_SPACE + rank;
    }
    packed.sort();
    const nextPoints = new Uint32Array(total);
    const nextOwners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const v = packed[i]!;
      const position = Math.floor(v / RANK_SPACE);
      nextPoints[i] = position;
      nextOwners[i] = v - position * RANK_SPACE;
    }

    // Slots are renumbered to ranks: the rebuild owns every slot now.
    this.#members.clear();
    this.#slotIds = ids.slice();
    this.#freeSlots = [];
    for (let rank = 0; rank < members.length; rank++) {
      const member = members[rank]!;
      member.slot = rank;
      this.#members.set(member.id, member);
    }
    this.#points = nextPoints;
    this.#owners = nextOwners;
  }

  /** Validates a membership list completely, before anything is changed. */
  #parseSpecs(nodes: Iterable<string | NodeSpec>, name: string): Map<string, number> {
    if (nodes === null || typeof nodes !== "object" || typeof (nodes as Iterable<unknown>)[Symbol.iterator] !== "function") {
      throw new TypeError(`${name} must be an iterable of node ids or { id, weight } objects`);
    }
    const specs = new Map<string, number>();
    let index = 0;
    for (const entry of nodes as Iterable<unknown>) {
      const at = `${name}[${index++}]`;
      let id: unknown;
      let weight = 1;
      if (typeof entry === "string") {
        id = entry;
        assertNodeId(id, at);
      } else if (typeof entry === "object" && entry !== null) {
        id = (entry as NodeSpec).id;
        const w: unknown = (entry as NodeSpec).weight ?? 1;
        assertNodeId(id, `${at}.id`);
        assertWeight(w, `${at}.weight`);
        weight = w;
      } else {
        throw new TypeError(`${at} must be a node id or a { id, weight } object`);
      }
      if (specs.has(id)) {
        throw new RangeError(`${at}: node ${JSON.stringify(id)} is listed twice`);
      }
      const count = Math.max(1, Math.round(this.vnodes * weight));
      if (count > MAX_NODE_VNODES) {
        throw new RangeError(`${at}.weight ${weight} gives ${count} vnodes, more than the maximum of ${MAX_NODE_VNODES}`);
      }
      specs.set(id, weight);
    }
    if (specs.size > MAX_NODES) {
      throw new RangeError(`${name} holds ${specs.size} nodes, more than the maximum of ${MAX_NODES}`);
    }
    return specs;
  }
}
