import { randomUUID } from "node:crypto";
import type { FaultSpec } from "./faults";

/** A request stopped on arrival by a hold, waiting for the test to release it. */
export interface HeldRequest {
  readonly id: string;
  readonly holdId: string;
  readonly hostUuid: string;
  readonly command: string;
  readonly taskId: string | undefined;
  readonly body: unknown;
  readonly arrivedAt: string;
  /** Lets the request proceed: normally, or with `fault` (which then replaces injected faults). */
  release(fault?: FaultSpec): void;
}

/** What a held request's pipeline waits for: the release, or the sim closing. */
export type HoldRelease = { released: true; fault: FaultSpec | undefined } | { released: false };

/**
 * Stops the next `times` requests for `command` on one host until released. A race test uses it
 * to force an interleaving: hold the apply, await its arrival, run the competing operation, then
 * release (optionally with a fault). Arrivals are delivered in order through {@link next}.
 */
export class Hold {
  readonly id = randomUUID();
  private remaining: number;
  private readonly arrived: HeldRequest[] = [];
  private readonly waiters: Array<(req: HeldRequest) => void> = [];
  private readonly unreleased = new Map<string, HeldRequest>();
  private cancelled = false;

  constructor(
    readonly hostUuid: string,
    readonly command: string,
    times: number,
    private readonly onEmpty: (hold: Hold) => void,
  ) {
    this.remaining = times;
  }

  get active(): boolean {
    return !this.cancelled && this.remaining > 0;
  }

  /**
   * Resolves with the next held request (in arrival order), waiting for it to arrive; rejects
   * with a `TimeoutError` after `timeoutMs`, or an `AbortError` when `signal` aborts (a long-poll
   * whose caller went away must not swallow the next arrival).
   */
  next(timeoutMs?: number, signal?: AbortSignal): Promise<HeldRequest> {
    const ready = this.arrived.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise<HeldRequest>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const stop = (err: Error): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      };
      const onAbort = (): void => {
        const err = new Error("wait for held request aborted");
        err.name = "AbortError";
        stop(err);
      };
      const waiter = (req: HeldRequest): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(req);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      this.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const err = new Error(`no ${this.command} request arrived on host ${this.hostUuid} within ${timeoutMs} ms`);
          err.name = "TimeoutError";
          stop(err);
        }, timeoutMs);
      }
    });
  }

  /** Stops holding new requests and releases, normally, every request still held. */
  cancel(): void {
    this.cancelled = true;
    for (const req of [...this.unreleased.values()]) req.release();
    this.onEmpty(this);
  }

  /** Called by the host pipeline for a matching `command`; returns the held request and a promise of its release. */
  capture(command: string, taskId: string | undefined, body: unknown, closing: AbortSignal): { request: HeldRequest; release: Promise<HoldRelease> } {
    this.remaining -= 1;
    let settle!: (r: HoldRelease) => void;
    const release = new Promise<HoldRelease>((r) => (settle = r));
    const onClose = (): void => settle({ released: false });
    closing.addEventListener("abort", onClose, { once: true });
    const request: HeldRequest = {
      id: randomUUID(),
      holdId: this.id,
      hostUuid: this.hostUuid,
      command,
      taskId,
      body,
      arrivedAt: new Date().toISOString(),
      release: (fault) => {
        if (!this.unreleased.delete(request.id)) return;
        closing.removeEventListener("abort", onClose);
        settle({ released: true, fault });
        if (!this.active && this.unreleased.size === 0) this.onEmpty(this);
      },
    };
    this.unreleased.set(request.id, request);
    const waiter = this.waiters.shift();
    if (waiter) waiter(request);
    else this.arrived.push(request);
    return { request, release };
  }

  /** A held request by id, while it is unreleased. */
  find(requestId: string): HeldRequest | undefined {
    return this.unreleased.get(requestId);
  }

  describe(): { id: string; command: string; remaining: number; held: string[] } {
    return { id: this.id, command: this.command, remaining: this.cancelled ? 0 : this.remaining, held: [...this.unreleased.keys()] };
  }
}

/** The holds of one host. The first active hold for a command captures the request. */
export class HoldTable {
  private readonly holds = new Map<string, Hold>();

  constructor(private readonly hostUuid: string) {}

  add(command: string, times = 1): Hold {
    if (!Number.isSafeInteger(times) || times <= 0) throw new RangeError("times must be a positive integer");
    const hold = new Hold(this.hostUuid, command, times, (h) => {
      // Forget a hold once it can capture nothing more and holds nothing; `next()` callers keep it alive.
      if (!h.active && h.describe().held.length === 0) this.holds.delete(h.id);
    });
    this.holds.set(hold.id, hold);
    return hold;
  }

  match(command: string): Hold | undefined {
    for (const hold of this.holds.values()) {
      if (hold.active && (hold.command === command || hold.command === "*")) return hold;
    }
    return undefined;
  }

  get(holdId: string): Hold | undefined {
    return this.holds.get(holdId);
  }

  findRequest(requestId: string): HeldRequest | undefined {
    for (const hold of this.holds.values()) {
      const req = hold.find(requestId);
      if (req) return req;
    }
    return undefined;
  }

  list(): Array<ReturnType<Hold["describe"]>> {
    return [...this.holds.values()].map((h) => h.describe());
  }

  cancelAll(): void {
    for (const hold of [...this.holds.values()]) hold.cancel();
  }
}
