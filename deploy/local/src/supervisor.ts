import { Backoff, type BackoffPolicy } from "./backoff";

/** How a child process ended. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One run of a supervised child, from its start until it exits. */
export interface Run {
  readonly pid: number;
  /** Resolves when this run has ended, whether it died or was stopped. */
  readonly exited: Promise<ExitStatus>;
  /** Stops this run (idempotent); resolves once it is down. */
  stop(): Promise<void>;
  /** What the run serves, for the log line of a (re)start, e.g. its gRPC address. */
  readonly describe?: string;
  /** Its last output lines, shown with its death so the reason is on screen. */
  lastWords?(): string[];
}

/**
 * Starts a run and resolves once it is ready. `signal` aborts when the devstack shuts down
 * meanwhile: a launcher that can, stops its half-started child then instead of waiting for it.
 */
export type Launch = (signal: AbortSignal) => Promise<Run>;

export interface SupervisorOptions {
  /** Where the restart lines go: the devstack's own output. */
  readonly log: (line: string) => void;
  /** Told each new run's pid (the pid file). */
  readonly onPid?: (pid: number) => void;
  /** Why a death of this child must not be answered by a restart; then it is only logged. */
  readonly noRestart?: string;
  readonly backoff?: BackoffPolicy;
}

/**
 * Keeps one child of the devstack running, like a Kubernetes StatefulSet pod: when it dies it is
 * launched again the same way (same name, environment and ports, which the launch closes over)
 * after a backoff, and each death and restart is logged. The other children are not touched:
 * replicas reconnect to NATS and Postgres on their own, and peers see a replica leave and rejoin.
 */
export class Supervisor {
  #current: Run | undefined;
  #launching: Promise<unknown> | undefined;
  #stopping = false;
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  readonly #backoff: Backoff;

  constructor(
    readonly name: string,
    private readonly launch: Launch,
    private readonly options: SupervisorOptions,
  ) {
    this.#backoff = new Backoff(options.backoff);
  }

  /** The first launch; its failure is the caller's (a child that never starts is a start-up error, not a crash). */
  async start(): Promise<Run> {
    const run = await this.#launch();
    if (!this.#stopping) void this.#supervise(run);
    return run;
  }

  /**
   * No restart from now on, and a launch under way is aborted. The devstack halts every
   * supervisor as soon as its shutdown begins, before stopping the children one by one: a child
   * that dies meanwhile (Ctrl-C reaches the whole process group) must not come back.
   */
  halt(): void {
    this.#stopping = true;
    this.#abort.abort();
    this.#wake?.();
  }

  /** Stops the child once, also mid-backoff or mid-restart: nothing is launched after this began. */
  async stop(): Promise<void> {
    this.halt();
    await this.#launching?.catch(() => {});
    await this.#current?.stop();
  }

  /** A launch that stop() can wait for: what it started is #current by the time it settles. */
  #launch(): Promise<Run> {
    const launching = (async () => {
      try {
        const run = await this.launch(this.#abort.signal);
        this.#current = run;
        this.options.onPid?.(run.pid);
        return run;
      } finally {
        this.#launching = undefined;
      }
    })();
    this.#launching = launching;
    return launching;
  }

  async #supervise(first: Run): Promise<void> {
    let run = first;
    for (;;) {
      const startedAt = Date.now();
      const exit = await run.exited;
      if (this.#stopping) return;
      const how = exit.signal ? `signal ${exit.signal}` : exit.code !== null ? `code ${exit.code}` : "exit status unknown";
      const upMs = Date.now() - startedAt;
      const words = run.lastWords?.() ?? [];
      const tail = words.length ? `; last output:\n  ${words.join("\n  ")}` : "";
      if (this.options.noRestart) {
        this.options.log(`${this.name} (pid ${run.pid}) exited (${how}) after ${seconds(upMs)}; not restarted: ${this.options.noRestart}${tail}`);
        return;
      }
      let delay = this.#backoff.next(upMs);
      this.options.log(`${this.name} (pid ${run.pid}) exited (${how}) after ${seconds(upMs)}; restarting in ${seconds(delay)} (${this.#backoff.describe()})${tail}`);
      for (;;) {
        await this.#pause(delay);
        if (this.#stopping) return;
        try {
          run = await this.#launch();
          break;
        } catch (e) {
          if (this.#stopping) return;
          delay = this.#backoff.next(0);
          this.options.log(`${this.name} restart failed: ${e instanceof Error ? e.message : String(e)}; retrying in ${seconds(delay)}`);
        }
      }
      // stop() waited for that launch and stops what it started.
      if (this.#stopping) return;
      this.options.log(`${this.name} restarted (pid ${run.pid})${run.describe ? `: ${run.describe}` : ""}`);
    }
  }

  /** Waits `ms`, or less when stop() wakes it. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
