/**
 * Readiness that follows the replica's dependencies. A replica that cannot reach Postgres or NATS
 * fails every call it gets; with the gRPC health of its services NOT_SERVING meanwhile, the
 * kubelet takes it out of its Service's endpoints and round-robin clients skip it, and it comes
 * back by itself once both are reachable. Liveness must not follow them (a restart does not bring
 * Postgres back, and every replica would restart at once): it has its own health name.
 */
import type { Bus } from "@stratum/bus";
import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";

/**
 * Health service name of the liveness probe: SERVING once the gRPC server listens, and only
 * the server's own shutdown clears it. The watcher never touches it, so a dependency outage turns
 * readiness off without ever failing liveness.
 */
export const LIVENESS_SERVICE = "stratum.liveness";

/** Default period between two rounds of checks. */
export const DEFAULT_READINESS_PERIOD_MS = 2_000;
/** Default bound of one check: a dependency that does not answer within it counts as down. */
export const DEFAULT_CHECK_TIMEOUT_MS = 1_000;

/**
 * Resolves when the dependency answers, rejects (with a message naming it) when it does not. Its
 * function name, when it has one, names it in the watcher's timeout message.
 */
export type DependencyCheck = () => Promise<void>;

/** `select 1` on the replica's own pool: what its queries would get. */
export function postgresCheck(sql: (strings: TemplateStringsArray) => PromiseLike<unknown>): DependencyCheck {
  return async function postgres() {
    try {
      await sql`select 1`;
    } catch (e) {
      throw new Error(`postgres: ${message(e)}`, { cause: e });
    }
  };
}

/**
 * A round trip to the NATS server. `rtt()` fails at once while the client is reconnecting
 * (`isClosed()` alone stays false then: the bus reconnects forever) and otherwise waits for the
 * server's PONG, which a half-dead connection never sends (the watcher's timeout bounds it).
 */
export function natsCheck(nc: Pick<Bus["nc"], "rtt">): DependencyCheck {
  // Named: the watcher's timeout message says which dependency did not answer.
  return async function nats() {
    try {
      await nc.rtt();
    } catch (e) {
      throw new Error(`nats: ${message(e)}`, { cause: e });
    }
  };
}

export interface ReadinessOptions {
  /** Every dependency the replica cannot serve without; ready while all of them pass. */
  readonly checks: readonly DependencyCheck[];
  /** Called on each change only (true: SERVING again; false: NOT_SERVING), never after `stop()`. */
  setServing(ok: boolean): void;
  /** Period between rounds. Default {@link DEFAULT_READINESS_PERIOD_MS}. */
  readonly periodMs?: number;
  /** Bound of each check. Default {@link DEFAULT_CHECK_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  readonly log?: Logger;
}

/** What a round found: ready, or the messages of the checks that failed. */
export type ReadinessListener = (ready: boolean, failures: readonly string[]) => void;

/**
 * Runs the checks every period while the replica serves, and flips `setServing` when the
 * outcome changes. It only acts between `start()` (called once the replica is SERVING) and
 * `stop()` (called before it turns NOT_SERVING to drain), so it can never mark SERVING a replica
 * that is starting or stopping. Rounds never overlap: the next is scheduled when one ends.
 */
export class ReadinessWatcher {
  readonly #checks: readonly DependencyCheck[];
  readonly #setServing: (ok: boolean) => void;
  readonly #periodMs: number;
  readonly #timeoutMs: number;
  readonly #log: Logger | undefined;
  readonly #listeners = new Set<ReadinessListener>();
  #active = false;
  #ready = true;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;

  constructor(options: ReadinessOptions) {
    for (const [name, value] of [["periodMs", options.periodMs], ["timeoutMs", options.timeoutMs]] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new RangeError(`ReadinessWatcher: ${name} must be a positive number of milliseconds, got ${value}`);
    }
    if (options.checks.length === 0) throw new RangeError("ReadinessWatcher: no checks; readiness would never follow anything");
    this.#checks = options.checks;
    this.#setServing = options.setServing;
    this.#periodMs = options.periodMs ?? DEFAULT_READINESS_PERIOD_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.#log = options.log;
  }

  /** Whether the last round passed (true before the first: the replica starts SERVING). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Called after each round whose outcome differs from the previous one. Returns an unsubscribe. */
  onChange(listener: ReadinessListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts watching; the replica is SERVING now (its dependencies were reachable to get here). */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#ready = true;
    this.#schedule();
  }

  /**
   * Stops at once: no `setServing` call happens after this returns, even from a round in flight.
   * The promise settles when that round has ended. Idempotent.
   */
  stop(): Promise<void> {
    this.#active = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#round ?? Promise.resolve();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#round = this.#runRound().finally(() => {
        this.#round = undefined;
        if (this.#active) this.#schedule();
      });
    }, this.#periodMs);
    // A watcher alone must not keep a process alive.
    this.#timer.unref();
  }

  async #runRound(): Promise<void> {
    const results = await Promise.allSettled(this.#checks.map((check, i) => this.#bounded(check, check.name || `check ${i}`)));
    const failures = results.flatMap((r) => (r.status === "rejected" ? [message(r.reason)] : []));
    const ready = failures.length === 0;
    if (!this.#active || ready === this.#ready) return;
    this.#ready = ready;
    if (ready) this.#log?.info("dependencies reachable again: SERVING", {});
    else this.#log?.warn("dependency unreachable: NOT_SERVING until it is back", { failures });
    this.#setServing(ready);
    for (const listener of [...this.#listeners]) listener(ready, failures);
  }

  async #bounded(check: DependencyCheck, name: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${name}: did not answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      await Promise.race([check(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function message(e: unknown): string {
  return errorMessage(e);
}
