// Helpers for this package's tests (not exported from index.ts).

/** A promise with its settle functions exposed: lets a test decide exactly when a task ends. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Lets every queued microtask (and the ones they queue) run. Works under fake timers too, since
 * it relies on neither setTimeout nor setImmediate. 100 rounds is far more than any queue
 * transition needs (a handful).
 */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 100; i++) await Promise.resolve();
}

/** Settled state of a promise without awaiting it. */
export function track<T>(promise: Promise<T>): { state: "pending" | "fulfilled" | "rejected"; value?: T; reason?: unknown } {
  const result: { state: "pending" | "fulfilled" | "rejected"; value?: T; reason?: unknown } = { state: "pending" };
  promise.then(
    (value) => {
      result.state = "fulfilled";
      result.value = value;
    },
    (reason: unknown) => {
      result.state = "rejected";
      result.reason = reason;
    },
  );
  return result;
}
