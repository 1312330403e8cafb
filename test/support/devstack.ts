import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** What `deploy/local` writes to `<data-dir>/endpoints.json`. */
export interface Endpoints {
  nats: string;
  postgres: string;
  agentSim: string;
  compute: string[];
  /** Each compute replica's `/metrics` URL. */
  computeMetrics: string[];
  storage?: string[];
  storageMetrics?: string[];
  longjob?: string[];
  longjobMetrics?: string[];
  network?: string[];
  networkMetrics?: string[];
  /** The shared primary storage and the backup storage the devstack registers. */
  primaryStorage?: string;
  backupStorage?: string;
  /** The default L3 networks' UUIDs: `devstack-private` (VMs' NICs) and `devstack-public` (EIPs' VIPs). */
  privateL3Network?: string;
  publicL3Network?: string;
  /** Each broker replica's gRPC address (BrokerService; calls need `authorization: Bearer <brokerToken>`). */
  broker?: string[];
  brokerMetrics?: string[];
  /** Each broker replica's Open Service Broker API base URL, e.g. `http://127.0.0.1:7701`. */
  brokerOsb?: string[];
  /** The dev tenant the devstack's broker credentials map to. */
  brokerTenant?: string;
  /** Its gRPC bearer token. */
  brokerToken?: string;
  /** Its OSB platform identity (HTTP basic auth). */
  brokerOsbUsername?: string;
  brokerOsbPassword?: string;
  /** The auth file the broker replicas read (STRATUM_BROKER_AUTH_FILE). */
  brokerAuthFile?: string;
  /** The pid file: `{ "nats": pid, "compute-0": pid, … }`, rewritten on every restart. */
  pids: string;
}

export interface Devstack {
  readonly endpoints: Endpoints;
  /** Everything the launcher printed, for failure messages. */
  readonly output: string[];
  /** The launcher's own pid. */
  readonly pid: number;
  /** Whether the launcher is still running. */
  running(): boolean;
  /** The current pid of a child (`compute-1`, `nats`, `postgres`, `agent-sim`), as the launcher last wrote it. */
  pidOf(name: string): number;
  /**
   * Resolves with the first output line matching `pattern`, looking back at `since` (an index
   * into `output`) first, so a line printed before the call is not missed; rejects when the
   * launcher exits or after `timeoutMs`, the failure bound.
   */
  waitForLine(pattern: RegExp, since?: number, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Runs the real devstack — the same launcher as `pnpm start` — on free ports and a throw-away data
 * directory, and resolves once it prints that Stratum is ready.
 */
export async function startDevstack(args: readonly string[] = [], timeoutMs = 120_000): Promise<Devstack> {
  const dataDir = mkdtempSync(join(tmpdir(), "stratum-devstack-"));
  chmodSync(dataDir, 0o755); // PostgreSQL runs as its own OS user and must reach its data dir
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "deploy/local/src/main.ts"), "--data-dir", dataDir, "--base-port", "0", "--nats-port", "0", "--postgres-port", "0", "--agent-port", "0", ...args],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NATS_URL: "", DATABASE_URL: "" } },
  );
  const output: string[] = [];
  const lineListeners = new Set<(line: string) => void>();
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`devstack not ready after ${timeoutMs} ms:\n${output.join("\n")}`)), timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        output.push(line);
        for (const listener of lineListeners) listener(line);
        if (line.startsWith("Stratum is ready")) {
          clearTimeout(timer);
          resolveReady();
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`devstack exited with ${code} before it was ready:\n${output.join("\n")}`));
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
    // STRATUM_KEEP_DEVSTACK=1 keeps the data dir (its logs/) to read after a failed run.
    if (process.env.STRATUM_KEEP_DEVSTACK) process.stderr.write(`devstack data kept in ${dataDir}\n`);
    else rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (e) {
    await stop();
    throw e;
  }
  const endpoints = JSON.parse(readFileSync(join(dataDir, "endpoints.json"), "utf8")) as Endpoints;
  const pidOf = (name: string): number => {
    const pids = JSON.parse(readFileSync(endpoints.pids, "utf8")) as Record<string, number>;
    const pid = pids[name];
    if (pid === undefined) throw new Error(`the devstack runs no child named ${JSON.stringify(name)}; it runs ${Object.keys(pids).join(", ")}`);
    return pid;
  };
  const waitForLine = (pattern: RegExp, since = 0, timeoutMs = 60_000): Promise<string> =>
    new Promise((resolveLine, reject) => {
      const seen = output.slice(since).find((l) => pattern.test(l));
      if (seen !== undefined) return resolveLine(seen);
      const done = () => {
        clearTimeout(timer);
        lineListeners.delete(check);
      };
      const check = (line: string) => {
        if (!pattern.test(line)) return;
        done();
        resolveLine(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the devstack printed no line matching ${pattern} within ${timeoutMs} ms:\n${output.join("\n")}`));
      }, timeoutMs);
      lineListeners.add(check);
      void exited.then((code) => {
        done();
        reject(new Error(`the devstack exited with ${code} before printing a line matching ${pattern}:\n${output.join("\n")}`));
      });
    });
  return { endpoints, output, pid: child.pid!, running: () => child.exitCode === null && child.signalCode === null, pidOf, waitForLine, stop };
}
