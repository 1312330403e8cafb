import { MAX_TIMEOUT_MS } from "./defaults";

// Bad input is a programming error: we throw synchronously (before touching any state) with a
// message naming the field, instead of returning a rejected promise that might be swallowed.

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  return typeof value;
}

/** Throws unless `value` is a non-empty string. */
export function checkNonEmptyString(value: unknown, field: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`chain-task: ${field} must be a non-empty string, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a positive safe integer. */
export function checkPositiveInteger(value: unknown, field: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`chain-task: ${field} must be a positive integer, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`chain-task: ${field} must be a positive integer, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a non-negative integer or `Infinity` (no bound). */
export function checkBound(value: unknown, field: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`chain-task: ${field} must be a non-negative integer or Infinity, got ${describe(value)}`);
  }
  if (value !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`chain-task: ${field} must be a non-negative integer or Infinity, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a delay `setTimeout` can honour (0 < ms ≤ 2^31-1) or `Infinity` (none). */
export function checkTimeout(value: unknown, field: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`chain-task: ${field} must be a number of milliseconds or Infinity, got ${describe(value)}`);
  }
  if (value !== Number.POSITIVE_INFINITY && !(value > 0 && value <= MAX_TIMEOUT_MS)) {
    throw new RangeError(
      `chain-task: ${field} must be > 0 and <= ${MAX_TIMEOUT_MS} ms, or Infinity for no timeout, got ${describe(value)}`,
    );
  }
}

/** Throws unless `value` is a function. */
export function checkFunction(value: unknown, field: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== "function") {
    throw new TypeError(`chain-task: ${field} must be a function, got ${describe(value)}`);
  }
}

/** Throws unless `value` looks like an AbortSignal (duck-typed so signals from other realms work). */
export function checkSignal(value: unknown, field: string): asserts value is AbortSignal {
  const s = value as Partial<AbortSignal> | null;
  if (
    typeof value !== "object" ||
    s === null ||
    typeof s.aborted !== "boolean" ||
    typeof s.addEventListener !== "function" ||
    typeof s.removeEventListener !== "function"
  ) {
    throw new TypeError(`chain-task: ${field} must be an AbortSignal, got ${describe(value)}`);
  }
}
