import { Code, StratumError } from "@stratum/core";

/**
 * The one row a conditional `UPDATE … WHERE id = … AND state = … RETURNING …` (or a DELETE)
 * was meant to touch. The design enforces invariants with such updates, and their affected-row
 * count is the whole point: 0 rows means the precondition did not hold (someone else changed
 * the row first), which `onZero` turns into the domain's error — it is never silently ignored.
 * More than one row means the WHERE clause is not keyed as the caller believed: INTERNAL.
 *
 * ```ts
 * const vm = expectOne(
 *   await db.update(vms).set({ state: "Stopping" })
 *     .where(and(eq(vms.uuid, uuid), eq(vms.state, "Running"))).returning(),
 *   () => new StratumError(Code.FAILED_PRECONDITION, `vm ${uuid} is not running`, { reason: "VM_NOT_RUNNING" }),
 * );
 * ```
 */
export function expectOne<T>(rows: readonly T[], onZero: () => Error): T {
  if (rows.length === 1) return rows[0] as T;
  if (rows.length === 0) throw onZero();
  throw new StratumError(Code.INTERNAL, "internal error", {
    reason: "UNEXPECTED_ROW_COUNT",
    cause: new Error(`expected exactly one affected row, got ${rows.length}`),
  });
}

/**
 * How many rows a statement affected. With postgres-js, drizzle's UPDATE/DELETE without
 * `.returning()` resolves to the driver's result list, whose `count` is the affected-row count
 * while the list itself is empty; with `.returning()` it is the returned rows.
 */
export function affectedRows(result: readonly unknown[] & { readonly count?: number | null }): number {
  return typeof result.count === "number" ? result.count : result.length;
}
