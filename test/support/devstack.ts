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
}

export interface Devstack {
  readonly endpoints: Endpoints;
  /** Everything the launcher printed, for failure messages. */
  readonly output: string[];
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
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`devstack not ready after ${timeoutMs} ms:\n${output.join("\n")}`)), timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        output.push(line);
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
    if (child.exitCode === null) child.kill("SIGINT");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (e) {
    await stop();
    throw e;
  }
  const endpoints = JSON.parse(readFileSync(join(dataDir, "endpoints.json"), "utf8")) as Endpoints;
  return { endpoints, output, stop };
}
