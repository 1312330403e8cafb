/** What a command answered: the HTTP status and JSON body sent (or that would have been sent). */
export interface CommandOutcome {
  status: number;
  body: unknown;
}

export interface TaskCacheOptions {
  /** Most answered task ids remembered (least recently used go first). Default 10,000. */
  maxEntries?: number;
  /** How long an answered task id is remembered. Default 10 minutes. */
  ttlMs?: number;
  now?: () => number;
}

/** The caller runs the command and must call exactly one of `settle` / `drop`. */
export interface TaskOwner {
  readonly kind: "owner";
  /** The command ran: remember its answer for repeats of this task id. */
  settle(outcome: CommandOutcome): void;
  /** The command did not run (a fault dropped it before execution): forget the task id. */
  drop(): void;
}

/** Another request with this task id came first; `outcome` resolves with its answer. */
export interface TaskDuplicate {
  readonly kind: "duplicate";
  /** The command the first request named; a repeat naming another command is a conflict. */
  readonly command: string;
  /** Fingerprint of the first request's body; a repeat with another body is a conflict too. */
  readonly fingerprint: string;
  /** Resolves with the first execution's answer, or `undefined` if it was dropped unexecuted. */
  readonly outcome: Promise<CommandOutcome | undefined>;
}

interface Entry {
  command: string;
  fingerprint: string;
  outcome: Promise<CommandOutcome | undefined>;
  resolve: (outcome: CommandOutcome | undefined) => void;
  /** undefined while the first execution is still running: running entries are never evicted. */
  expiresAt: number | undefined;
}

/**
 * Per-host memory of task ids, so a command retried with the same task id is answered from its
 * first execution instead of running twice — also while that first execution is still running
 * (the repeat waits for it). This is what makes a non-idempotent command safe for the client to
 * retry. Bounded by count (LRU) and age (TTL) so a long-lived agent does not grow without limit;
 * entries still running are never evicted.
 */
export class TaskCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: TaskCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  private lastSweep = Number.NEGATIVE_INFINITY;

  get size(): number {
    return this.entries.size;
  }

  claim(taskId: string, command: string, fingerprint = ""): TaskOwner | TaskDuplicate {
    const existing = this.entries.get(taskId);
    if (existing && (existing.expiresAt === undefined || existing.expiresAt > this.now())) {
      // Touch: move to the most-recently-used end.
      this.entries.delete(taskId);
      this.entries.set(taskId, existing);
      return { kind: "duplicate", command: existing.command, fingerprint: existing.fingerprint, outcome: existing.outcome };
    }
    if (existing) this.entries.delete(taskId);

    let resolve!: (outcome: CommandOutcome | undefined) => void;
    const outcome = new Promise<CommandOutcome | undefined>((r) => (resolve = r));
    const entry: Entry = { command, fingerprint, outcome, resolve, expiresAt: undefined };
    this.entries.set(taskId, entry);
    this.evict();

    let done = false;
    return {
      kind: "owner",
      settle: (result) => {
        if (done) return;
        done = true;
        entry.expiresAt = this.now() + this.ttlMs;
        entry.resolve(result);
      },
      drop: () => {
        if (done) return;
        done = true;
        if (this.entries.get(taskId) === entry) this.entries.delete(taskId);
        entry.resolve(undefined);
      },
    };
  }

  private evict(): void {
    if (this.entries.size <= this.maxEntries) {
      // TTL sweep over the whole map (recency order is not expiry order), at most once a second:
      // per request it would cost a scan of up to maxEntries.
      const now = this.now();
      if (now - this.lastSweep < 1_000) return;
      this.lastSweep = now;
      for (const [id, entry] of this.entries) {
        if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.entries.delete(id);
      }
      return;
    }
    for (const [id, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries) break;
      if (entry.expiresAt !== undefined) this.entries.delete(id);
    }
  }
}
