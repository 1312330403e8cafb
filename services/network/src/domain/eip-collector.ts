import type { Bus } from "@stratum/bus";
import { subject } from "@stratum/bus";
import { errorMessage, type Logger } from "@stratum/core";
import type { EipStore } from "../store/eip-store";
import type { EipSyncer } from "./eip-sync";

export interface EipCollectorDeps {
  store: EipStore;
  syncer: EipSyncer;
  bus: Bus;
  owns: (uuid: string) => boolean;
  log: Logger;
  /** How often the database is scanned for syncs due. */
  intervalMs: number;
}

/** Most EIPs one scan hands to their syncs. */
const SCAN_LIMIT = 500;

/**
 * Gets every requested sync run on its EIP's owner. A request is durable before anyone is told
 * (`sync_gen` moved on in the database), so telling is only about promptness: the replica that
 * recorded it runs the syncs of EIPs it owns at once and tells the others over NATS; and every
 * `intervalMs` each replica scans for syncs due that it owns — a kick lost with a replica or with
 * NATS, a sync that failed and waits for its retry time, a sync left behind by a replica that
 * died. This is the background collector of seed 000: a release or apply that failed is retried
 * until it succeeds, with the EIP in Error meanwhile.
 */
export class EipCollector {
  #timer: NodeJS.Timeout | undefined;
  #sub: ReturnType<Bus["nc"]["subscribe"]> | undefined;
  #scanning = false;

  constructor(private readonly d: EipCollectorDeps) {}

  start(): void {
    this.#sub = this.d.bus.nc.subscribe(this.#subject(), {
      callback: (err, msg) => {
        if (err) return;
        try {
          const uuids = JSON.parse(msg.string()) as unknown;
          if (Array.isArray(uuids)) this.#runOwned(uuids.filter((u): u is string => typeof u === "string"));
        } catch {
          // A malformed kick: the scan finds the work anyway.
        }
      },
    });
    this.#timer = setInterval(() => void this.scan(), this.d.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
  }

  /** The syncs of these EIPs were recorded: runs the ones this replica owns, tells the others' owners. */
  kick(uuids: readonly string[]): void {
    if (uuids.length === 0) return;
    const others = this.#runOwned(uuids);
    if (others.length > 0) this.d.bus.nc.publish(this.#subject(), JSON.stringify(others));
  }

  /** One scan for due syncs this replica owns (also what tests call to settle at once). */
  async scan(): Promise<void> {
    if (this.#scanning) return;
    this.#scanning = true;
    try {
      this.#runOwned(await this.d.store.due(SCAN_LIMIT));
    } catch (e) {
      this.d.log.warn("elastic IP collector scan failed", { error: errorMessage(e) });
    } finally {
      this.#scanning = false;
    }
  }

  /** Queues the syncs of the EIPs this replica owns; the others. */
  #runOwned(uuids: readonly string[]): string[] {
    const others: string[] = [];
    for (const uuid of uuids) {
      if (!this.d.owns(uuid)) {
        others.push(uuid);
        continue;
      }
      this.d.syncer.request(uuid).catch((e: unknown) => this.d.log.warn("elastic IP sync did not run; the collector retries it", { eipUuid: uuid, error: errorMessage(e) }));
    }
    return others;
  }

  #subject(): string {
    return subject(this.d.bus.prefix, "network", "eip-sync");
  }
}
