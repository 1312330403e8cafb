import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import type { Readable } from "node:stream";

/** An OS user a server runs as (Postgres refuses to run as root). */
export interface RunAs {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all (e.g. ENOENT). */
  readonly error?: Error;
}

export interface ManagedProcessOptions {
  /** Short name used in messages, e.g. `nats-server`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly runAs?: RunAs;
  /**
   * Signal that shuts the server down cleanly and quickly: SIGINT ("fast shutdown") for Postgres,
   * whose SIGTERM would wait for every client to disconnect; SIGTERM for nats-server. Also the
   * signal the kernel sends it if this process dies (parent-death signal).
   */
  readonly stopSignal: NodeJS.Signals;
  /** Every output line, for a devstack that wants to show the server's log. */
  readonly onOutput?: (line: string) => void;
  /** Removed (best effort) when this process exits without stopping the server: its temp dir. */
  readonly tempDir?: string;
}

const OUTPUT_TAIL_BYTES = 32 * 1024;
const OUTPUT_HEAD_BYTES = 4 * 1024;

/**
 * Every server child still running in this process. They are spawned detached (their own process
 * group), so a Ctrl-C in the terminal reaches only us and the devstack can shut down in order;
 * in exchange we must make sure they never outlive us: see {@link installExitHooks}. Kept on
 * globalThis because a test runner may evaluate this module more than once in one process, and
 * there must still be one registry and one set of hooks.
 */
const registry = ((globalThis as Record<symbol, unknown>)[Symbol.for("stratum.testing.managed-processes")] ??= {
  live: new Set<ManagedProcess>(),
  hooksInstalled: false,
}) as { live: Set<ManagedProcess>; hooksInstalled: boolean };
const live = registry.live;

/**
 * A server child process (nats-server, postgres) that:
 * - keeps the tail of its stdout+stderr (always drained: a full pipe would block the server), so
 *   a failed start can say why;
 * - dies with this process: on Linux it is started through `setpriv --pdeathsig`, so the kernel
 *   signals it even if we are SIGKILLed; otherwise an `exit` hook signals it;
 * - runs as another user when asked (root → `postgres`), via setpriv or spawn's uid/gid.
 */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves (never rejects) when the process has exited and been reaped. */
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly stopSignal: NodeJS.Signals;
  private readonly tempDir: string | undefined;
  private head = "";
  private tail = "";
  private outputBytes = 0;
  private exitInfo: ExitInfo | undefined;

  private constructor(child: ChildProcess, options: ManagedProcessOptions) {
    this.name = options.name;
    this.child = child;
    this.pid = child.pid ?? -1;
    this.stopSignal = options.stopSignal;
    this.tempDir = options.tempDir;
    const onLine = options.onOutput;
    const collect = (stream: Readable | null) => {
      if (!stream) return;
      stream.setEncoding("utf8");
      let partial = "";
      stream.on("data", (chunk: string) => {
        if (this.head.length < OUTPUT_HEAD_BYTES) this.head += chunk.slice(0, OUTPUT_HEAD_BYTES - this.head.length);
        this.tail = (this.tail + chunk).slice(-OUTPUT_TAIL_BYTES);
        this.outputBytes += chunk.length;
        if (onLine) {
          const lines = (partial + chunk).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) onLine(line);
        }
      });
      // A pipe must not keep this process alive: the exit hooks own the child's lifetime.
      (stream as Readable & { unref?: () => void }).unref?.();
    };
    collect(child.stdout);
    collect(child.stderr);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.on("error", (error) => {
        // Spawn failures emit `error` without `exit`; later kill failures also land here.
        if (child.pid === undefined && this.exitInfo === undefined) {
          this.exitInfo = { code: null, signal: null, error };
          live.delete(this);
          resolve(this.exitInfo);
        }
      });
      const closed = new Promise<void>((r) => child.once("close", () => r()));
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        // Let the pipes drain so the last lines (often the FATAL) are in output(); but a
        // grandchild still holding them open must not delay us for long.
        let timer: NodeJS.Timeout | undefined;
        const drained = new Promise<void>((r) => (timer = setTimeout(r, 500)));
        void Promise.race([closed, drained]).then(() => {
          clearTimeout(timer);
          resolve({ code, signal });
        });
      });
    });
    child.unref();
  }

  /** Spawns `options.command` as a managed server process. Never throws; check {@link exited}. */
  static spawn(options: ManagedProcessOptions): ManagedProcess {
    installExitHooks();
    const { command, args } = wrapCommand(options);
    const useSpawnIds = options.runAs !== undefined && !setprivCanDropPrivileges();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...(useSpawnIds && options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
    });
    const managed = new ManagedProcess(child, options);
    if (child.pid !== undefined) live.add(managed);
    return managed;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last ~32 KiB of the process's stdout and stderr. */
  output(): string {
    return this.tail;
  }

  /** Describes how the process ended plus its output tail, for error messages. */
  describeExit(): string {
    const info = this.exitInfo;
    const how = !info
      ? "is still running"
      : info.error
        ? `could not be started (${info.error.message})`
        : info.signal
          ? `was killed by ${info.signal}`
          : `exited with code ${info.code}`;
    const all = this.outputBytes > this.tail.length ? `${this.head}\n…\n${this.tail}` : this.tail;
    const lines = all.trim().split("\n").filter(Boolean);
    if (lines.length === 0) return `${this.name} ${how} without output`;
    // The reason is often the first line (a usage error) or the last (a FATAL): show both ends.
    const shown = lines.length <= 40 ? lines : [...lines.slice(0, 10), `… ${lines.length - 35} lines …`, ...lines.slice(-25)];
    return `${this.name} ${how}; its output:\n${shown.join("\n")}`;
  }

  /**
   * Stops the process with its clean-shutdown signal and waits for it; after `timeoutMs` it is
   * SIGKILLed so stop() always returns. Idempotent.
   */
  async stop(timeoutMs = 15_000, signal: NodeJS.Signals = this.stopSignal): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.signal(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const first = await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    if (first === "timeout") {
      this.signal("SIGKILL");
      return this.exited;
    }
    return first;
  }

  /** Sends a signal if the process still runs; a vanished process is not an error. */
  signal(signal: NodeJS.Signals): void {
    if (this.exitInfo) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Synchronous last-resort cleanup from the `exit` hook: signal, then drop the temp dir. */
  killFromExitHook(): void {
    this.signal(this.stopSignal);
    if (this.tempDir) {
      try {
        rmSync(this.tempDir, { recursive: true, force: true, maxRetries: 2 });
      } catch {
        // The server may still be writing for a few ms; a leftover temp dir is harmless.
      }
    }
  }
}

/**
 * Makes sure no server outlives this process. `exit` covers normal ends and `process.exit()`.
 * For SIGINT/SIGTERM/SIGHUP we only act when nobody else listens: then Node would die without
 * running `exit` hooks, so we signal the children and re-raise the signal to keep the default
 * behaviour. When the application has its own handler (the devstack shuts down in order) we
 * leave the children to it. The parent-death signal covers SIGKILL.
 */
function installExitHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  process.on("exit", () => {
    for (const p of [...live]) p.killFromExitHook();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return;
      for (const p of [...live]) p.killFromExitHook();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

interface SetprivSupport {
  readonly path: string | undefined;
  readonly pdeathsig: boolean;
}

let setprivSupport: SetprivSupport | undefined;

/** util-linux `setpriv`, present on every Debian/Ubuntu; `--pdeathsig` needs util-linux ≥ 2.33. */
function setpriv(): SetprivSupport {
  if (setprivSupport) return setprivSupport;
  // `STRATUM_SETPRIV=off` forces the portable fallback (spawn's uid/gid + exit hooks only).
  if (process.platform !== "linux" || process.env.STRATUM_SETPRIV === "off") return (setprivSupport = { path: undefined, pdeathsig: false });
  for (const path of ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]) {
    const help = spawnSync(path, ["--help"], { encoding: "utf8" });
    if (help.error || help.status !== 0) continue;
    return (setprivSupport = { path, pdeathsig: help.stdout.includes("--pdeathsig") });
  }
  return (setprivSupport = { path: undefined, pdeathsig: false });
}

function setprivCanDropPrivileges(): boolean {
  return setpriv().path !== undefined;
}

/**
 * Runs the command through `setpriv` when available: it sets the parent-death signal *after*
 * switching user (the kernel clears it on a uid change, so spawn's own uid option would lose it)
 * and then execs the server, which keeps the same pid.
 */
function wrapCommand(options: ManagedProcessOptions): { command: string; args: string[] } {
  const sp = setpriv();
  if (!sp.path || (!sp.pdeathsig && !options.runAs)) return { command: options.command, args: [...options.args] };
  const args: string[] = [];
  if (options.runAs) args.push(`--reuid=${options.runAs.uid}`, `--regid=${options.runAs.gid}`, "--clear-groups");
  if (sp.pdeathsig) args.push(`--pdeathsig=${options.stopSignal}`);
  args.push("--", options.command, ...options.args);
  return { command: sp.path, args };
}
