import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import { HashRing } from "@stratum/hash-ring";
import type { Bus } from "./connect";
import { errorMessage, Code, StratumError } from "@stratum/core";
import { assertToken } from "./names";

/** One live replica of a service, as it announces itself in the membership bucket. */
export interface Member {
  readonly service: string;
  readonly replicaId: string;
  /** gRPC `host:port` other replicas and clients reach it on. */
  readonly address: string;
  readonly startedAt: number;
  /**
   * Set by a replica that is stopping: it is off the ring (nothing new is routed to it, its
   * resources have new owners) but still alive, finishing what it had started — so nobody takes
   * over its work until it is done or dead.
   */
  readonly draining?: boolean;
}

export interface MembershipOptions {
  /** How often a replica re-announces itself. Default {@link DEFAULT_HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /**
   * A replica whose last heartbeat is older than this is dead and drops off every ring.
   * Default 3 × heartbeat: one lost heartbeat is not a death.
   */
  ttlMs?: number;
}

export const DEFAULT_HEARTBEAT_MS = 1_000;

/** What a view reports when the live set of a service changes. */
export interface MembershipChange {
  readonly service: string;
  readonly joined: readonly Member[];
  readonly left: readonly Member[];
  /** The service ring's epoch after the change. */
  readonly epoch: number;
}

type Listener = (change: MembershipChange) => void;

interface Seen {
  member: Member;
  lastSeen: number;
}

/**
 * Every replica's view of who is alive, per service, kept from a watch on the membership KV
 * bucket, with one consistent hash ring per service. Views converge because they are built from
 * the same KV history and the ring is order-independent: two replicas that see the same live set
 * agree on the owner of every resource.
 *
 * Death is judged locally, from how long ago a replica's heartbeat was received: NATS 2.9 does
 * not notify watchers when a KV entry ages out, so waiting for a delete would never end for a
 * replica that crashed. A replica that leaves cleanly deletes its key and drops off at once.
 *
 * Silence is not death: a replica whose heartbeat is overdue is declared dead only once NATS has
 * answered a round trip sent after it became overdue (NATS delivers in order, so a heartbeat
 * published before would have arrived first). While NATS does not answer, the view is cut off,
 * not watching replicas die, so it declares nobody dead and keeps its rings — owners stay certain
 * through a NATS outage and mutations go on (the Postgres lease, not this view, is what fences a
 * writer). When NATS answers again, every member gets a fresh TTL from then to re-announce itself.
 */
export class MembershipView {
  readonly #seen = new Map<string, Map<string, Seen>>();
  readonly #rings = new Map<string, HashRing>();
  readonly #listeners = new Set<Listener>();
  readonly #ttlMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #watch: { stop(): void } | undefined;
  #loaded = false;
  /** When the last round trip that NATS answered was sent. */
  #answeredSentAt = -Infinity;
  /** When the view last received any heartbeat (or delete), its own replica's included. */
  #lastEntryAt = performance.now();
  /** Since when NATS has answered every round trip; undefined while the last one went unanswered. */
  #reachableSince: number | undefined = performance.now();
  #probing: Promise<void> | undefined;

  private constructor(
    readonly kv: KV,
    private readonly nc: Bus["nc"],
    readonly heartbeatMs: number,
    ttlMs: number,
  ) {
    this.#ttlMs = ttlMs;
  }

  /** How long after its last heartbeat a replica counts as dead. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Opens (or creates) the membership bucket and loads the current members before returning. */
  static async open(bus: Bus, options: MembershipOptions = {}): Promise<MembershipView> {
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    const ttlMs = options.ttlMs ?? heartbeatMs * 3;
    if (!(heartbeatMs > 0) || !(ttlMs > heartbeatMs)) {
      throw new RangeError(`membership: heartbeatMs must be > 0 and ttlMs > heartbeatMs (got ${heartbeatMs}, ${ttlMs})`);
    }
    const bucket = bus.prefix ? `${bus.prefix}_members` : "stratum_members";
    // The bucket's own TTL only cleans up keys of replicas that vanished long ago; liveness uses ttlMs.
    const kv = await new Kvm(bus.js).create(bucket, { history: 1, ttl: Math.max(60_000, ttlMs * 10), replicas: bus.replicas });
    const view = new MembershipView(kv, bus.nc, heartbeatMs, ttlMs);
    await view.#start();
    return view;
  }

  async #start(): Promise<void> {
    const iter = await this.kv.watch({ key: ">" });
    this.#watch = iter;
    let initialDone: () => void = () => {};
    const initial = new Promise<void>((resolve) => {
      initialDone = () => {
        this.#loaded = true;
        this.#lastEntryAt = performance.now();
        resolve();
      };
    });
    // The initial load ends with the entry whose delta (messages still pending) is 0; an empty
    // bucket yields no entry at all, so it is done at once.
    if ((await this.kv.status()).values === 0) initialDone();
    void (async () => {
      for await (const entry of iter) {
        this.#apply(entry);
        if (!this.#loaded && entry.delta === 0) initialDone();
      }
    })().catch((e) => process.emitWarning(`membership watch ended: ${errorMessage(e)}`));
    let fallback: NodeJS.Timeout | undefined;
    await Promise.race([initial, new Promise((r) => (fallback = setTimeout(r, 2_000)))]);
    clearTimeout(fallback);
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.floor(this.heartbeatMs / 2)));
    this.#sweeper.unref();
  }

  /** True while NATS does not answer the view's round trips: it keeps its members then. */
  get silent(): boolean {
    return this.#reachableSince === undefined;
  }

  /**
   * Any entry received is evidence the view is connected. After a gap of more than two heartbeats
   * with none (NATS was away), every member gets a fresh TTL: what could not be heard was not
   * silence.
   */
  #heard(): void {
    const now = performance.now();
    if (now - this.#lastEntryAt > this.heartbeatMs * 2) {
      for (const members of this.#seen.values()) for (const seen of members.values()) seen.lastSeen = Math.max(seen.lastSeen, now - this.heartbeatMs);
    }
    this.#lastEntryAt = now;
  }

  /**
   * One round trip to NATS at a time: does the server answer? Unanswered within a TTL, the view
   * counts itself cut off — not sooner, so a busy event loop late to read the answer is not an
   * outage (after one, every member gets a fresh TTL, which would only delay takeovers).
   */
  #probe(): void {
    const sentAt = performance.now();
    this.#probing ??= Promise.race([
      this.nc.flush().then(() => true, () => false),
      new Promise<boolean>((r) => setTimeout(() => r(false), this.#ttlMs).unref()),
    ]).then((answers) => {
      this.#probing = undefined;
      if (answers) {
        this.#answeredSentAt = sentAt;
        this.#reachableSince ??= performance.now();
        this.#sweep(false); // the overdue this answer confirms are dead now, not a sweep later
      } else this.#reachableSince = undefined;
    });
  }

  #apply(entry: KvWatchEntry): void {
    if (this.#loaded) this.#heard();
    const [service, replicaId] = splitKey(entry.key);
    if (!service || !replicaId) return;
    if (entry.operation !== "PUT") {
      this.#drop(service, replicaId);
      return;
    }
    let member: Member;
    try {
      member = entry.json<Member>();
    } catch {
      return; // not ours; a bad value must not take the view down
    }
    // A heartbeat read from history is as old as the server stamped it; a live one is fresh now
    // (receipt time, so clock skew between replicas cannot kill or revive anyone).
    // On the monotonic clock, so a wall-clock step cannot kill or revive every replica at once.
    const now = performance.now();
    const lastSeen = this.#loaded ? now : now - Math.max(0, Date.now() - entry.created.getTime());
    if (now - lastSeen > this.#ttlMs) return;
    const members = this.#membersOf(service);
    const known = members.get(replicaId);
    members.set(replicaId, { member, lastSeen });
    const onRing = !member.draining;
    const wasOnRing = known !== undefined && !known.member.draining;
    // The same id back with a new address or start time is a restart: report it, so routers drop
    // the channel to the old address.
    const restarted = known !== undefined && (known.member.address !== member.address || known.member.startedAt !== member.startedAt);
    if (restarted) this.#changed(service, onRing ? [member] : [], wasOnRing ? [known.member] : []);
    else if (onRing !== wasOnRing) this.#changed(service, onRing ? [member] : [], wasOnRing ? [known!.member] : []);
  }

  #drop(service: string, replicaId: string): void {
    const members = this.#seen.get(service);
    const known = members?.get(replicaId);
    if (!members || !known) return;
    members.delete(replicaId);
    this.#changed(service, [], known.member.draining ? [] : [known.member]);
  }

  /** Drops the confirmed dead; with `probe`, asks NATS about the overdue it cannot confirm yet. */
  #sweep(probe = true): void {
    const now = performance.now();
    let unconfirmed = false;
    for (const [service, members] of this.#seen) {
      for (const [replicaId, seen] of members) {
        if (now - seen.lastSeen <= this.#ttlMs) continue;
        // Overdue; dead only if the view has heard from NATS since — an entry, or the answer to a
        // round trip sent after — (else it may be this view that is cut off), and a full TTL
        // after NATS last came back.
        const overdueAt = seen.lastSeen + this.#ttlMs;
        const heardSince = this.#lastEntryAt >= overdueAt || this.#answeredSentAt >= overdueAt;
        const confirmed = heardSince && this.#reachableSince !== undefined && now - this.#reachableSince > this.#ttlMs;
        if (confirmed) this.#drop(service, replicaId);
        else unconfirmed = true;
      }
    }
    if (unconfirmed && probe) this.#probe();
  }

  #membersOf(service: string): Map<string, Seen> {
    let members = this.#seen.get(service);
    if (!members) this.#seen.set(service, (members = new Map()));
    return members;
  }

  #changed(service: string, joined: Member[], left: Member[]): void {
    const ring = this.ring(service);
    for (const m of left) if (ring.has(m.replicaId) && !joined.some((j) => j.replicaId === m.replicaId)) ring.remove(m.replicaId);
    for (const m of joined) if (!ring.has(m.replicaId)) ring.add(m.replicaId);
    const change: MembershipChange = { service, joined, left, epoch: ring.epoch };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (e) {
        // A listener's bug must not stop the view (and every ring with it).
        process.emitWarning(`membership listener failed: ${errorMessage(e)}`);
      }
    }
  }

  /** The ring of a service's live replicas (empty if none is alive). */
  ring(service: string): HashRing {
    let ring = this.#rings.get(service);
    if (!ring) this.#rings.set(service, (ring = new HashRing()));
    return ring;
  }

  /** The live replicas of a service on its ring (draining ones are not), in replica-id order. */
  members(service: string): Member[] {
    return this.alive(service).filter((m) => !m.draining);
  }

  /** Every live replica of a service, draining ones included: who may still be working. */
  alive(service: string): Member[] {
    return [...(this.#seen.get(service)?.values() ?? [])].map((s) => s.member).sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  /** A replica on the ring (not draining). */
  member(service: string, replicaId: string): Member | undefined {
    const m = this.#seen.get(service)?.get(replicaId)?.member;
    return m?.draining ? undefined : m;
  }

  /** The live replica that owns a resource of a service, or undefined when none is alive. */
  ownerOf(service: string, resourceUuid: string): Member | undefined {
    const replicaId = this.#rings.get(service)?.ownerOf(resourceUuid);
    return replicaId === undefined ? undefined : this.member(service, replicaId);
  }

  /** The ring epoch of a service: changes with every change of its live set. */
  epoch(service: string): number {
    return this.ring(service).epoch;
  }

  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once `predicate` holds for the view; for start-up ordering and tests. */
  until(predicate: (view: MembershipView) => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`membership: condition not reached within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onChange(() => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#watch?.stop();
    this.#listeners.clear();
  }
}

/**
 * A replica's own membership: announces it on the view's bucket every heartbeat until `leave()`,
 * which deletes its key so the others re-balance at once instead of after the TTL.
 */
export class Membership {
  #timer: NodeJS.Timeout | undefined;
  #left = false;
  #draining = false;

  private constructor(
    readonly view: MembershipView,
    readonly self: Member,
  ) {}

  static async join(view: MembershipView, self: Omit<Member, "startedAt"> & { startedAt?: number }): Promise<Membership> {
    assertToken("service", self.service);
    assertToken("replicaId", self.replicaId);
    if (!self.address) throw new TypeError("membership: address is required");
    const membership = new Membership(view, { ...self, startedAt: self.startedAt ?? Date.now() });
    // Another live process with this id (or this one's previous life, not yet expired): two
    // processes in one ring slot would both own its resources. Wait for it to go, or refuse.
    const other = () => {
      const m = view.alive(self.service).find((a) => a.replicaId === self.replicaId);
      return m !== undefined && m.startedAt !== membership.self.startedAt;
    };
    if (other()) {
      await view.until((v) => !other(), view.ttlMs * 2).catch(() => {
        throw new StratumError(Code.ALREADY_EXISTS, `replica id ${self.replicaId} of ${self.service} is in use by a live replica at ${view.member(self.service, self.replicaId)?.address}`, {
          reason: "REPLICA_ID_IN_USE",
          resources: { service: self.service, replicaId: self.replicaId },
        });
      });
    }
    await membership.#beat();
    await view.until((v) => v.member(self.service, self.replicaId) !== undefined, 5_000);
    membership.#timer = setInterval(() => void membership.#beat().catch(() => {}), view.heartbeatMs);
    membership.#timer.unref();
    return membership;
  }

  async #beat(): Promise<void> {
    if (this.#left) return;
    await this.view.kv.put(`${this.self.service}.${this.self.replicaId}`, JSON.stringify(this.#draining ? { ...this.self, draining: true } : this.self));
  }

  /**
   * Steps off the ring at once (the others take its resources and callers re-route) but keeps
   * announcing itself as alive and draining until `leave()`, so its work in flight is not taken
   * over while it finishes it; if it dies meanwhile, its heartbeat stops and the TTL ends it.
   */
  async drain(): Promise<void> {
    if (this.#left || this.#draining) return;
    this.#draining = true;
    await this.#beat().catch(() => {});
  }

  /** True when this replica owns the resource on its service's ring. */
  owns(resourceUuid: string): boolean {
    return this.view.ownerOf(this.self.service, resourceUuid)?.replicaId === this.self.replicaId;
  }

  async leave(): Promise<void> {
    if (this.#left) return;
    this.#left = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.view.kv.delete(`${this.self.service}.${this.self.replicaId}`).catch(() => {});
  }
}

function splitKey(key: string): [string | undefined, string | undefined] {
  const dot = key.indexOf(".");
  return dot < 0 ? [undefined, undefined] : [key.slice(0, dot), key.slice(dot + 1)];
}
