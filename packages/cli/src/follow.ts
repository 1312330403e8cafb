/**
 * The loop under every `--wait`: follows a resource through a server stream of its states until
 * one of them settles the wait, rendering each change with the ProgressRenderer. What is being
 * followed (a job, a VM) only supplies how to read its messages; the loop owns what all waiters
 * must do the same way:
 *
 * - a message whose revision was already shown is skipped: a re-opened stream starts with the
 *   resource's current state, which the previous stream may have delivered;
 * - a stream that breaks with a code the resource's watch calls transient (its replica died or
 *   is draining) or that ends before a settling message is re-opened with backoff, at most
 *   `maxReconnects` times in a row without a message in between;
 * - Ctrl-C (the `signal`) stops the waiting at once (exit 130), not the work on the server.
 */
import { StratumError, type Code } from "@stratum/core";
import { ProgressRenderer, type ProgressView } from "./progress";
import { EXIT_INTERRUPTED, type Writer } from "./writer";

/** Opens one stream; it ends when `signal` aborts. */
export type OpenStream<T> = (signal: AbortSignal) => AsyncIterable<T>;

/** How one kind of resource is read while it is followed. */
export interface Followed<T> {
  /** Increases with every change of the resource. */
  revision(item: T): bigint;
  /** The final line and exit status when `item` ends the wait; undefined while it goes on. */
  settle(item: T, elapsed: string): { line: string; code: number } | undefined;
  view(item: T): ProgressView;
  /** What Ctrl-C prints (the work goes on), given the resource as last seen. */
  interruptedLine(last: T | undefined): string;
  /** What is printed before giving up on a stream that keeps breaking. */
  keptBreakingLine(): string;
  /** The error of a stream that ended before the resource settled. */
  endedEarly(): StratumError;
  /** Codes of a broken stream that is re-opened; others are thrown. */
  reopenOn: ReadonlySet<Code>;
}

export interface FollowOptions<T> {
  open: OpenStream<T>;
  followed: Followed<T>;
  /** Where the progress and the final line go. */
  out: Writer;
  /** The resource as already known (e.g. the answer of the call being waited for): shown first, and settles the wait without a stream if it can. */
  first?: T | undefined;
  /** Ctrl-C. */
  signal?: AbortSignal | undefined;
  /** Redraw in place. Default: `out.isTTY`. */
  tty?: boolean | undefined;
  now?: (() => number) | undefined;
  /** Re-opens after a broken stream before giving up, counted since the last message. Default 8 (about 20 s of backoff). */
  maxReconnects?: number | undefined;
  /** Waits before re-opening. Default: a timer, cut short by `signal`. */
  sleep?: ((ms: number, signal: AbortSignal | undefined) => Promise<void>) | undefined;
}

export interface FollowOutcome<T> {
  /** The settling message's status, or 130 after Ctrl-C. */
  code: number;
  /** The resource as last seen (undefined if nothing was seen before Ctrl-C). */
  last: T | undefined;
}

function defaultSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Backoff before re-open number `n` (1-based): 250 ms doubling, at most 5 s. */
function reconnectDelay(n: number): number {
  return Math.min(5_000, 250 * 2 ** (n - 1));
}

const ABORTED = Symbol("aborted");

/** The iterator's next message, or ABORTED as soon as `signal` aborts (a stream need not honour it promptly). */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T> | typeof ABORTED> {
  if (!signal) return iterator.next();
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Follows the resource until a message settles the wait, Ctrl-C, or the stream fails for good (thrown). */
export async function follow<T>(options: FollowOptions<T>): Promise<FollowOutcome<T>> {
  const { signal, followed } = options;
  const renderer = new ProgressRenderer({ out: options.out, ...(options.tty !== undefined ? { tty: options.tty } : {}), ...(options.now ? { now: options.now } : {}) });
  const sleep = options.sleep ?? defaultSleep;
  const maxReconnects = options.maxReconnects ?? 8;
  let last: T | undefined;
  let reconnects = 0;

  const interrupted = (): FollowOutcome<T> => {
    renderer.interrupt();
    options.out.write(`${followed.interruptedLine(last)}\n`);
    return { code: EXIT_INTERRUPTED, last };
  };
  /** Shows `item`; the outcome when it settles the wait. */
  const show = (item: T): FollowOutcome<T> | undefined => {
    last = item;
    const settled = followed.settle(item, renderer.elapsed());
    if (settled) {
      renderer.finish(settled.line);
      return { code: settled.code, last: item };
    }
    renderer.update(followed.view(item));
    return undefined;
  };

  if (options.first !== undefined) {
    const settled = show(options.first);
    if (settled) return settled;
  }

  for (;;) {
    if (signal?.aborted) return interrupted();
    const stream = new AbortController();
    const stopStream = (): void => stream.abort();
    signal?.addEventListener("abort", stopStream, { once: true });
    const iterator = options.open(stream.signal)[Symbol.asyncIterator]();
    let broken: unknown;
    try {
      for (;;) {
        const next = await nextOrAbort(iterator, signal);
        if (next === ABORTED) return interrupted();
        if (next.done) break;
        reconnects = 0;
        if (last !== undefined && followed.revision(next.value) <= followed.revision(last)) continue;
        const settled = show(next.value);
        if (settled) return settled;
      }
      broken = followed.endedEarly();
    } catch (e) {
      if (signal?.aborted) return interrupted();
      if (!(e instanceof StratumError) || !followed.reopenOn.has(e.code)) {
        renderer.interrupt();
        throw e;
      }
      broken = e;
    } finally {
      signal?.removeEventListener("abort", stopStream);
      stream.abort();
      // Not awaited: a generator busy in a pending next() answers return() only after it.
      void iterator.return?.().catch(() => {});
    }

    reconnects++;
    if (reconnects > maxReconnects) {
      renderer.interrupt();
      options.out.write(`${followed.keptBreakingLine()}\n`);
      throw broken;
    }
    await sleep(reconnectDelay(reconnects), signal);
    if (signal?.aborted) return interrupted();
  }
}

