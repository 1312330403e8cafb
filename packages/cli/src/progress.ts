/**
 * The progress display of anything the CLI waits for (a long job; a VM operation):
 * what it shows does not depend on what is being waited for, only on a `ProgressView` — a state
 * word and how far it is — so every waiter renders the same way.
 *
 * On a terminal it is one line redrawn in place (`\r`, then erase to the end of the line), with
 * a bar, refreshed every second so the elapsed time moves while nothing else does; the final
 * line replaces it and stays. Anywhere else (a pipe, a file, a CI log) a redraw would be
 * garbage, so it prints one line per change — a change being anything but the elapsed time, so
 * a log is not flooded by a job that reports the same progress again.
 */
import { formatSize } from "./units";
import type { Writer } from "./writer";

/** What one progress line shows. */
export interface ProgressView {
  /** The state as a word, e.g. `Running`. */
  readonly state: string;
  /** The current stage, or "" before the first. */
  readonly stage: string;
  /** 0–100; undefined for work that reports no measure of how far it is (a VM operation): no bar, no percent. */
  readonly percent?: number | undefined;
  readonly bytesDone: bigint;
  /** Bytes in all; 0 when unknown (no byte counts are shown then). */
  readonly bytesTotal: bigint;
  /** A status line from the worker, or "". */
  readonly message: string;
}

export interface ProgressRendererOptions {
  out: Writer;
  /** Redraw in place. Default: `out.isTTY`. */
  tty?: boolean;
  /** Milliseconds since some epoch. Default: `Date.now`. */
  now?: () => number;
  /** Redraw this often on a terminal, for the elapsed time (0: only on changes). Default 1000. */
  refreshMs?: number;
}

const BAR_WIDTH = 20;
/** Erases from the cursor to the end of the line. */
const ERASE_LINE_END = "\u001b[K";

/** `0:07`, `12:30`, `1:02:03`: elapsed time for people. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const s = String(total % 60).padStart(2, "0");
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes}:${s}`;
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}:${s}`;
}

/** `[#########...........]`, the bar of a terminal's progress line. */
export function progressBar(percent: number, width = BAR_WIDTH): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** A line: state, stage, percent, bytes, the elapsed time, the message; empty parts are left out. */
function describe(view: ProgressView, bar: boolean, elapsed: string): string {
  const percent = view.percent === undefined ? "" : `${Math.round(view.percent)}%`;
  return [
    view.state,
    view.stage,
    bar && view.percent !== undefined ? `${progressBar(view.percent)} ${percent}` : percent,
    view.bytesTotal > 0n ? `${formatSize(view.bytesDone)}/${formatSize(view.bytesTotal)}` : "",
    elapsed,
    view.message.replace(/\s+/g, " ").trim(),
  ]
    .filter((part) => part !== "")
    .join("  ");
}

/**
 * Renders a sequence of views, then a final line. Not reusable: after `finish` or `interrupt`
 * it prints nothing more.
 */
export class ProgressRenderer {
  readonly #out: Writer;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #refreshMs: number;
  #view: ProgressView | undefined;
  /** Non-terminal: the last line printed (without the elapsed time), to print changes only. */
  #lastLine = "";
  /** Terminal: whether the cursor is on a progress line that must be ended or replaced. */
  #onLine = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #done = false;

  constructor(options: ProgressRendererOptions) {
    this.#out = options.out;
    this.#tty = options.tty ?? options.out.isTTY === true;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#refreshMs = options.refreshMs ?? 1000;
  }

  /** Time since the renderer was made, as `formatElapsed` writes it. */
  elapsed(): string {
    return formatElapsed(this.#now() - this.#startedAt);
  }

  update(view: ProgressView): void {
    if (this.#done) return;
    this.#view = view;
    if (this.#tty) {
      this.#redraw();
      if (!this.#timer && this.#refreshMs > 0) {
        this.#timer = setInterval(() => this.#redraw(), this.#refreshMs);
        // A pending refresh must never be what keeps the process alive.
        this.#timer.unref?.();
      }
      return;
    }
    const change = describe(view, false, "");
    if (change === this.#lastLine) return;
    this.#lastLine = change;
    this.#out.write(`${describe(view, false, this.elapsed())}\n`);
  }

  /** Replaces the progress line with `line` (which stays), and stops. */
  finish(line: string): void {
    if (this.#done) return;
    this.#stop();
    this.#out.write(this.#onLine ? `\r${line}${ERASE_LINE_END}\n` : `${line}\n`);
    this.#onLine = false;
  }

  /** Leaves the progress line as it is (ended, so what follows starts on a new line), and stops. */
  interrupt(): void {
    if (this.#done) return;
    this.#stop();
    if (this.#onLine) this.#out.write("\n");
    this.#onLine = false;
  }

  #stop(): void {
    this.#done = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #redraw(): void {
    if (!this.#view || this.#done) return;
    let line = describe(this.#view, true, this.elapsed());
    // A line wider than the terminal wraps, and `\r` then redraws only its last row.
    const columns = this.#out.columns;
    if (columns !== undefined && columns > 1 && [...line].length > columns - 1) line = [...line].slice(0, columns - 1).join("");
    this.#out.write(`\r${line}${ERASE_LINE_END}`);
    this.#onLine = true;
  }
}
