import { backoffDelay } from "@stratum/agent-client";
import { errorMessage, type Logger } from "@stratum/core";
import type { MarkCall, MarkStore } from "../store/mark-store";

/** Marks taken per call (the limit of every batch request compute drains into: ReleaseVmVolumes, ReleaseVmNics, SyncVmEips). */
const BATCH = 1000;
/** How often every replica looks for marks (left by a replica that died, or written by another path than its own kicks). */
export const MARK_SCAN_MS = 2_000;
const BACKOFF = { baseDelayMs: 200, maxDelayMs: 5_000 };

export interface MarkDrainerDeps {
  /** What the call does, for logs ("release vm volumes"). */
  what: string;
  store: MarkStore;
  /** The call made for each batch of marks (see MarkCall). */
  call: MarkCall;
  log: Logger;
  scanMs?: number;
}

/**
 * Makes the calls compute owes other services from the durable marks its changes wrote (see
 * `store/mark-store.ts`): the destroyed VMs' volumes (storage) and NIC addresses (network), the
 * EIP syncs of VMs whose EIP host changed and the EIP reconciles of reconnected hosts (network).
 * One class for all of them, given the mark table and the call: the same batching, retries and
 * scans, written once. A change kicks it: the marks written in the same turn, or while a call is
 * in flight, go out in one call. A call that fails keeps its marks (their attempts and error
 * recorded) and is tried again with backoff; besides, every replica scans for marks every
 * {@link MARK_SCAN_MS}, so none outlives the replica that wrote it.
 */
export class MarkDrainer {
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #notBefore = 0;
  #stopped = false;

  constructor(private readonly d: MarkDrainerDeps) {}

  start(): void {
    this.#stopped = false;
    this.#timer = setInterval(() => this.kick(), this.d.scanMs ?? MARK_SCAN_MS);
    this.#timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  /** Writes marks for `keys` (outside a change that writes them itself) and drains them soon. */
  async request(keys: readonly string[]): Promise<void> {
    await this.d.store.mark(keys);
    this.kick();
  }

  /** Drains the marks soon (coalesced: one drain at a time, one more after it if kicked meanwhile). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = new Promise<void>((r) => setImmediate(r)).then(() => this.#drain()).finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  async #drain(): Promise<void> {
    if (Date.now() < this.#notBefore) return;
    try {
      for (;;) {
        const r = await this.d.store.drain(BATCH, this.d.call);
        if (r.failed > 0) throw new Error(`${r.failed} of ${r.taken} not done (${r.error})`);
        if (r.taken < BATCH && r.again === 0) break;
      }
      this.#failures = 0;
    } catch (e) {
      this.#failures++;
      const delay = backoffDelay(this.#failures, BACKOFF);
      this.#notBefore = Date.now() + delay;
      this.d.log.warn(`could not ${this.d.what} yet; will retry`, { table: this.d.store.spec.table, attempt: this.#failures, retryInMs: delay, error: errorMessage(e) });
      // The retry: the periodic scan too, but not later than the backoff says.
      setTimeout(() => this.kick(), delay).unref();
    }
  }
}
