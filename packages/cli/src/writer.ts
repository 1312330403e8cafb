/**
 * Where the CLI writes. Only `write` is required, so tests capture output in a string; the
 * optional fields are the ones `process.stdout`/`process.stderr` already carry, so the real
 * streams fit as they are and the progress display learns from them whether it may redraw a line
 * in place (a terminal) or must print one line per change (a pipe, a file, a CI log).
 */
export interface Writer {
  write(chunk: string): unknown;
  /** True when the stream is a terminal. */
  readonly isTTY?: boolean;
  /** The terminal's width, when it is one. */
  readonly columns?: number;
}

/** Exit status of a `--wait` or a watch that saw the job succeed. */
export const EXIT_OK = 0;
/** Exit status for a call that failed, or a job that ended Failed, Canceled or Suspended. */
export const EXIT_FAILED = 1;
/** Exit status after Ctrl-C (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;
