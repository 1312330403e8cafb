import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { getFreePort } from "./free-port";
import { ManagedProcess } from "./managed-process";
import { pollUntil } from "./poll";

export interface NatsOptions {
  /** Client port; a free one by default. */
  port?: number;
  /** Monitoring (HTTP) port, used to wait for JetStream readiness; a free one by default. */
  monitorPort?: number;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /**
   * A persistent JetStream store directory (the devstack), kept on stop. Without it a temp dir is
   * used, kept across restart() and deleted on stop().
   */
  storeDir?: string;
  /** Path of the nats-server binary; default `$STRATUM_NATS_SERVER`, then PATH, then /usr/sbin. */
  binary?: string;
  /** Extra command-line arguments for nats-server. */
  args?: readonly string[];
  /** How long a start (or restart) may take. Default 20 s. */
  startTimeoutMs?: number;
  /** Receives every server log line; they are kept for errors anyway. */
  onLog?: (line: string) => void;
}

/** A running `nats-server -js`. */
export interface NatsServer {
  /** e.g. `nats://127.0.0.1:41234` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** e.g. `http://127.0.0.1:41235` (`/healthz`, `/jsz`, `/connz`). */
  readonly monitorUrl: string;
  readonly storeDir: string;
  /** Pid of the current server process (changes on restart). */
  readonly pid: number;
  /** Graceful shutdown (SIGTERM); removes a temp store dir. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the server and starts it again on the same ports and store dir; resolves once JetStream
   * is ready again. `hard` kills it with SIGKILL first, like a crash; `downMs` keeps it down that
   * long (an outage) before it starts again.
   */
  restart(options?: { hard?: boolean; downMs?: number }): Promise<void>;
  /** The tail of the server's log. */
  output(): string;
}

/** Environment variable naming the nats-server binary. */
export const NATS_SERVER_ENV = "STRATUM_NATS_SERVER";
const DEFAULT_START_TIMEOUT_MS = 20_000;

/**
 * Starts `nats-server -js` on a free port with its own store dir and waits until it accepts
 * clients with JetStream ready (monitoring `/healthz` green and the client port's INFO says
 * `jetstream: true`), so the first JetStream call of a test never races the server's start.
 */
export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  const binary = findNatsServer(options.binary);
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const tempStore = options.storeDir === undefined;
  const storeDir = tempStore ? mkdtempSync(join(tmpdir(), "stratum-nats-")) : resolve(options.storeDir!);
  if (!tempStore) mkdirSync(storeDir, { recursive: true });

  const launch = (port: number, monitorPort: number) =>
    ManagedProcess.spawn({
      name: "nats-server",
      command: binary,
      args: ["-js", "-a", host, "-p", String(port), "-m", String(monitorPort), "-sd", storeDir, ...(options.args ?? [])],
      stopSignal: "SIGTERM",
      ...(options.onLog ? { onOutput: options.onLog } : {}),
      ...(tempStore ? { tempDir: storeDir } : {}),
    });

  /**
   * Starts and waits. When a port is taken: ports we chose are replaced by fresh ones; the fixed
   * ports of a restart are waited for, since the old listener may linger for a moment.
   */
  const startOn = async (fixed: { port?: number; monitorPort?: number }, waitForPorts: boolean) => {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const port = fixed.port ?? (await getFreePort(host));
      const monitorPort = fixed.monitorPort ?? (await getFreePort(host));
      const proc = launch(port, monitorPort);
      try {
        await waitReady(proc, host, port, monitorPort, deadline);
        return { proc, port, monitorPort };
      } catch (e) {
        await proc.stop(5_000);
        if (/address already in use/i.test(proc.output())) {
          const weChose = fixed.port === undefined || fixed.monitorPort === undefined;
          if (weChose && attempt < 5) continue;
          if (waitForPorts && Date.now() + 1_000 < deadline) {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
        }
        throw e;
      }
    }
  };

  let current: { proc: ManagedProcess; port: number; monitorPort: number };
  try {
    const fixed = {
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.monitorPort !== undefined ? { monitorPort: options.monitorPort } : {}),
    };
    current = await startOn(fixed, false);
  } catch (e) {
    if (tempStore) rmSync(storeDir, { recursive: true, force: true });
    throw e;
  }
  const { port, monitorPort } = current;
  let stopping: Promise<void> | undefined;

  return {
    url: `nats://${host}:${port}`,
    host,
    port,
    monitorUrl: `http://${host}:${monitorPort}`,
    storeDir,
    get pid() {
      return current.proc.pid;
    },
    stop() {
      return (stopping ??= (async () => {
        await current.proc.stop();
        if (tempStore) rmSync(storeDir, { recursive: true, force: true, maxRetries: 3 });
      })());
    },
    async restart(restartOptions = {}) {
      if (stopping) throw new Error("restart() after stop()");
      await current.proc.stop(15_000, restartOptions.hard ? "SIGKILL" : "SIGTERM");
      if (restartOptions.downMs) await new Promise((r) => setTimeout(r, restartOptions.downMs));
      current = await startOn({ port, monitorPort }, true);
    },
    output: () => current.proc.output(),
  };
}

/**
 * Finds the nats-server binary. Debian installs it in /usr/sbin, which is not on a normal user's
 * PATH, hence the explicit fallbacks.
 */
export function findNatsServer(explicit?: string): string {
  const candidates = explicit
    ? [explicit]
    : [
        process.env[NATS_SERVER_ENV],
        ...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, "nats-server")),
        "/usr/sbin/nats-server",
        "/usr/local/bin/nats-server",
        "/usr/bin/nats-server",
      ].filter((c): c is string => Boolean(c));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error(
    `nats-server not found (looked at ${explicit ? explicit : `$${NATS_SERVER_ENV}, PATH, /usr/sbin, /usr/local/bin`}). ` +
      `Install it with \`apt-get install nats-server\` (Debian/Ubuntu), or download a release from ` +
      `https://github.com/nats-io/nats-server/releases and put it on PATH or in $${NATS_SERVER_ENV}.`,
  );
}

async function waitReady(proc: ManagedProcess, host: string, port: number, monitorPort: number, deadline: number): Promise<void> {
  let lastProblem = "no answer yet";
  const result = await pollUntil(deadline, async () => {
    if (!proc.running) return "exited" as const;
    try {
      const res = await fetch(`http://${host}:${monitorPort}/healthz`, { signal: AbortSignal.timeout(1_000) });
      const body = await res.text();
      if (!res.ok) {
        lastProblem = `/healthz answered ${res.status} ${body.trim()}`;
        return undefined;
      }
      const info = await readInfo(host, port);
      if (info.jetstream !== true) {
        lastProblem = "the client port's INFO does not announce JetStream";
        return undefined;
      }
      return "ready" as const;
    } catch (e) {
      lastProblem = e instanceof Error ? e.message : String(e);
      return undefined;
    }
  });
  if (result === "ready") return;
  if (result === "exited") {
    await proc.exited;
    throw new Error(`nats-server did not start: ${proc.describeExit()}`);
  }
  throw new Error(`nats-server with JetStream was not ready in time (${lastProblem}); ${proc.describeExit()}`);
}

/** Reads the `INFO {...}` line a NATS server sends first to every client. */
function readInfo(host: string, port: number): Promise<{ jetstream?: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const socket = tcpConnect({ host, port });
    let buffer = "";
    const done = (err: Error | undefined, info?: { jetstream?: boolean }) => {
      socket.destroy();
      if (err) reject(err);
      else resolvePromise(info ?? {});
    };
    socket.setTimeout(1_000, () => done(new Error(`no INFO from ${host}:${port}`)));
    socket.setEncoding("utf8");
    socket.on("error", (e) => done(e));
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf("\r\n");
      if (end < 0) return;
      const line = buffer.slice(0, end);
      if (!line.startsWith("INFO ")) return done(new Error(`unexpected first line from ${host}:${port}: ${line.slice(0, 80)}`));
      try {
        done(undefined, JSON.parse(line.slice(5)) as { jetstream?: boolean });
      } catch (e) {
        done(e as Error);
      }
    });
  });
}
