import type { NatsConnection } from "@nats-io/transport-node";
import { StratumError } from "@stratum/core";
import type { Bus } from "./connect";
import { subject } from "./names";

/**
 * The subject a resource's watchers listen on: `<prefix>.watch.<service>.<kind>.<uuid>`, outside
 * the events stream (`stratum.>`), so the snapshots a writer sends its watchers right after each
 * commit are not stored as events too. The durable events still go through the outbox.
 */
export function watchSubject(bus: Bus, service: string, kind: string, uuid: string): string {
  return subject(bus.prefix, "watch", service, kind, uuid);
}

/**
 * Sends watchers the resource as just committed (core NATS, no acknowledgement): a watch sees a
 * change as soon as it is committed instead of after the outbox relay's round; one lost (the
 * writer died between commit and send) costs the watch its resync delay, never the change.
 */
export function notifyWatchers(bus: Bus, to: string, snapshot: unknown): void {
  try {
    bus.nc.publish(to, JSON.stringify(snapshot));
  } catch {
    // NATS is away: the watchers resync from the database.
  }
}

/** Default of how long a watch goes without an event before it reads the resource again. */
export const WATCH_RESYNC_MS = 2_000;

export interface WatchOptions<T> {
  nc: NatsConnection;
  /** The resource's own subject: its `watchSubject`, or its event subject (an outbox row's `key`). */
  subject: string;
  /** Reads the resource from the source of truth; undefined when it does not exist. */
  read: () => Promise<T | undefined>;
  /** The resource as an event carries it; undefined when the event is not a snapshot (then it is read). */
  fromEvent?: (json: Record<string, unknown>) => T | undefined;
  /** Increases with every change of the resource (a revision, a fencing token). */
  revision: (t: T) => number;
  /** Whether the watch ends after this state (a final state). */
  done?: (t: T) => boolean;
  /** What the resource is, for the NOT_FOUND error (`job`, `vm`), and its UUID. */
  kind: string;
  uuid: string;
  signal: AbortSignal;
  resyncMs?: number;
}

/**
 * A resource's changes as they are committed: its current state first, then each change in
 * revision order (one already seen is skipped) until `done`. It subscribes to the resource's own
 * event subject before it reads, so no change falls between the read and the events; events come
 * over core NATS (at most once), so after `resyncMs` without one it reads the resource again —
 * a lost event costs a watcher that delay, never the change. Any replica can serve it.
 */
export async function* watchResource<T>(o: WatchOptions<T>): AsyncGenerator<T> {
  const pending: Array<T | undefined> = [];
  let wake: (() => void) | undefined;
  const sub = o.nc.subscribe(o.subject, {
    callback: (err, msg) => {
      if (err) return;
      let snapshot: T | undefined;
      try {
        snapshot = o.fromEvent?.(msg.json<Record<string, unknown>>());
      } catch {
        snapshot = undefined;
      }
      pending.push(snapshot); // undefined: read it
      wake?.();
    },
  });
  const onAbort = () => wake?.();
  o.signal.addEventListener("abort", onAbort);
  const read = async () => {
    const now = await o.read();
    if (!now) throw StratumError.notFound(o.kind, o.uuid);
    return now;
  };
  try {
    // The server has the subscription before the read: a change committed (and sent) by another
    // replica after the read cannot reach NATS before it. With NATS away there is nothing to
    // wait for: the watch goes on from the database alone (its resync) until NATS is back.
    await o.nc.flush().catch(() => {});
    const first = await read();
    yield first;
    let last = o.revision(first);
    if (o.done?.(first)) return;
    for (;;) {
      if (o.signal.aborted) return;
      if (pending.length === 0) {
        const timedOut = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), o.resyncMs ?? WATCH_RESYNC_MS);
          wake = () => {
            clearTimeout(timer);
            resolve(false);
          };
        });
        wake = undefined;
        if (o.signal.aborted) return;
        if (timedOut) pending.push(undefined);
      }
      const batch = pending.splice(0);
      // An event without a snapshot, or a resync: one read covers all of them.
      const rows = batch.some((b) => b === undefined) ? [...batch.filter((b): b is T => b !== undefined), await read()] : (batch as T[]);
      rows.sort((a, b) => o.revision(a) - o.revision(b));
      for (const row of rows) {
        if (o.revision(row) <= last) continue;
        last = o.revision(row);
        yield row;
        if (o.done?.(row)) return;
      }
    }
  } finally {
    o.signal.removeEventListener("abort", onAbort);
    sub.unsubscribe();
  }
}
