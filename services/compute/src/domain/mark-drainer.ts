import { backoffDelay } from "@stratum/agent-client";
import { errorMessage, type Logger } from "@stratum/core";
import type { VmVolumes } from "../clients/volumes";
import type { VolumeReleaseStore } from "../store/volume-release-store";

/** Marks taken per ReleaseVmVolumes call (its request's limit). */
const BATCH = 1000;
/** How often every replica looks for marks (left by a replica that died, or by the takeover's destroys). */
export const RELEASE_SCAN_MS = 2_000;
const BACKOFF = { baseDelayMs: 200, maxDelayMs: 5_000 };

/**
 * Releases destroyed VMs' volumes (ReleaseVmVolumes), from the durable marks their destroys wrote
 * (`compute.volume_releases`). A destroy kicks it: destroys ending in the same turn, or while a
 * release is in flight, go out in one call. A release that fails (storage down, or a backup
 * running on a root volume) keeps its marks and is tried again with backoff; besides, every
 * replica scans for marks every {@link RELEASE_SCAN_MS}, so none outlives the replica that wrote it.
 */
export class VolumeReleaser {
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #notBefore = 0;
  #stopped = false;

  constructor(private readonly d: { store: VolumeReleaseStore; volumes: VmVolumes; log: Logger; scanMs?: number }) {}

  start(): void {
    this.#stopped = false;
    this.#timer = setInterval(() => this.kick(), this.d.scanMs ?? RELEASE_SCAN_MS);
    this.#timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
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
        const { released, left } = await this.d.store.drain(BATCH, (uuids) => this.d.volumes.release(uuids));
        if (left > 0) throw new Error(`${left} VM(s) whose volumes storage did not release`);
        if (released < BATCH) break;
      }
      this.#failures = 0;
    } catch (e) {
      this.#failures++;
      const delay = backoffDelay(this.#failures, BACKOFF);
      this.#notBefore = Date.now() + delay;
      this.d.log.warn("vm volumes not released yet; will retry", { attempt: this.#failures, retryInMs: delay, error: errorMessage(e) });
      // The retry: the periodic scan too, but not later than the backoff says.
      setTimeout(() => this.kick(), delay).unref();
    }
  }
}
