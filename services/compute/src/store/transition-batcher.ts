import type { ComputeDb } from "./db";
import { mapPgError } from "@stratum/db";
import type { VmRow, VmStateValue } from "./schema";

interface Pending {
  uuid: string;
  from: VmStateValue;
  to: VmStateValue;
  lastError: string | null;
  resolve(row: VmRow | undefined): void;
  reject(error: unknown): void;
}

/** Largest batch: keeps one statement's arrays and its lock set small. */
const MAX_BATCH = 512;
/** Statements in flight at once. */
const MAX_IN_FLIGHT = 1;

/**
 * Combines the conditional state updates of concurrent VM operations into one statement per
 * event-loop turn. Each row keeps its own condition (`state = from`), so the semantics are those
 * of one `UPDATE … WHERE uuid = $1 AND state = $2` per VM — each caller gets its row, or nothing
 * if its VM was not in `from` — but a burst of N operations costs one round trip instead of N.
 * Alone, an update waits one turn (`setImmediate`) and goes out by itself.
 *
 * Two updates of the same VM never share a statement (a join with two matches would apply only
 * one), and the second waits until the statement carrying the first has returned, so they apply
 * in submission order. The VM's chain-task queue already keeps them apart; this holds regardless.
 */
export class TransitionBatcher {
  #pending: Pending[] = [];
  #scheduled = false;
  /** VMs whose update is in a statement that has not returned yet. */
  readonly #inFlight = new Set<string>();
  /** Statements in flight: while one runs, the next batch fills up (fewer, larger statements). */
  #running = 0;

  constructor(
    private readonly sql: ComputeDb["sql"],
    private readonly toRow: (raw: Record<string, unknown>) => VmRow,
  ) {}

  transition(uuid: string, from: VmStateValue, to: VmStateValue, lastError?: string): Promise<VmRow | undefined> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ uuid, from, to, lastError: lastError ?? null, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running >= MAX_IN_FLIGHT) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const batch: Pending[] = [];
    const later: Pending[] = [];
    const seen = new Set<string>();
    for (const p of this.#pending) {
      if (batch.length < MAX_BATCH && !seen.has(p.uuid) && !this.#inFlight.has(p.uuid)) {
        seen.add(p.uuid);
        batch.push(p);
      } else later.push(p);
    }
    this.#pending = later;
    if (batch.length === 0) return; // what is left waits for a statement in flight, which reschedules
    for (const p of batch) this.#inFlight.add(p.uuid);
    this.#running++;
    if (later.length > 0) this.#schedule();
    try {
      const rows = await this.sql`
        UPDATE compute.vms AS v
        SET state = x.to_state::compute.vm_state, last_error = COALESCE(x.last_error, v.last_error), updated_at = now()
        FROM unnest(${batch.map((p) => p.uuid)}::uuid[], ${batch.map((p) => p.from)}::text[], ${batch.map((p) => p.to)}::text[], ${batch.map((p) => p.lastError)}::text[])
          AS x(uuid, from_state, to_state, last_error)
        WHERE v.uuid = x.uuid AND v.state = x.from_state::compute.vm_state
        RETURNING v.*`;
      const byUuid = new Map<string, VmRow>();
      for (const raw of rows) {
        const row = this.toRow(raw as Record<string, unknown>);
        byUuid.set(row.uuid, row);
      }
      for (const p of batch) p.resolve(byUuid.get(p.uuid));
    } catch (e) {
      const error = mapPgError(e, { operation: "update vm state" });
      for (const p of batch) p.reject(error);
    } finally {
      this.#running--;
      for (const p of batch) this.#inFlight.delete(p.uuid);
      if (this.#pending.length > 0) this.#schedule();
    }
  }
}
