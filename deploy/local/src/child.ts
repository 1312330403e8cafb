import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { createInterface } from "node:readline";
import type { ExitStatus } from "./supervisor";

/** A service or simulator process of the devstack, its output teed to a log file. */
export class Child {
  readonly exited: Promise<ExitStatus>;
  readonly #proc: ChildProcess;
  readonly #log: WriteStream;
  readonly #tail: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(
    readonly name: string,
    script: string,
    args: readonly string[],
    env: Record<string, string>,
    logFile: string,
    onLine?: (line: string) => void,
  ) {
    this.#log = createWriteStream(logFile, { flags: "a" });
    // STRATUM_NODE_ARGS adds Node flags to every child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
    // (Node refuses profiling flags in NODE_OPTIONS).
    const nodeArgs = (process.env.STRATUM_NODE_ARGS ?? "").split(" ").filter(Boolean);
    this.#proc = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [this.#proc.stdout!, this.#proc.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.#log.write(`${line}\n`);
        this.#tail.push(line);
        if (this.#tail.length > 20) this.#tail.shift();
        onLine?.(line);
        for (const listener of this.#listeners) listener(line);
      });
    }
    this.exited = new Promise((resolve) => this.#proc.once("exit", (code, signal) => resolve({ code, signal })));
    // Once its pipes are closed every line is written: a restarted child gets a new stream.
    this.#proc.once("close", () => this.#log.end());
  }

  get pid(): number {
    return this.#proc.pid ?? -1;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** The last lines it printed: shown when it dies, so the reason is on screen. */
  tail(): string[] {
    return [...this.#tail];
  }

  /** Resolves with the first stdout/stderr JSON line matching `predicate`, or rejects if the process exits first. */
  waitFor<T>(predicate: (json: Record<string, unknown>) => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`${this.name} not ready after ${timeoutMs} ms:\n  ${this.tail().join("\n  ")}`));
      }, timeoutMs);
      const check = (line: string) => {
        if (!line.startsWith("{")) return;
        try {
          const found = predicate(JSON.parse(line) as Record<string, unknown>);
          if (found !== undefined) {
            clearTimeout(timer);
            this.#listeners.delete(check);
            resolve(found);
          }
        } catch {
          // not JSON: a plain log line
        }
      };
      this.#listeners.add(check);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${signal ?? `code ${code}`} before it was ready:\n  ${this.tail().join("\n  ")}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Idempotent. */
  stop(graceMs = 10_000): Promise<void> {
    return (this.#stopped ??= (async () => {
      this.#stopping = true;
      if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
        this.#proc.kill("SIGTERM");
        const killer = setTimeout(() => this.#proc.kill("SIGKILL"), graceMs);
        await this.exited;
        clearTimeout(killer);
      }
    })());
  }
}
