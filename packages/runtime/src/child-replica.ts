import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { ServiceConfig } from "./config";

export interface ChildReplicaOptions {
  /** The service's `src/main.ts`. */
  main: string;
  /** A replica of the stack to join: its database, NATS and namespace are the child's. */
  like: ServiceConfig;
  replicaId: string;
  /** More environment (the service's own variables, `STRATUM_CRASH_POINT`). */
  env?: Record<string, string>;
}

/**
 * A replica as a process of its own on a test stack's database and NATS namespace, so a test
 * can really kill it (`kill -9`, or a crash point) or pause it (SIGSTOP / SIGCONT) at the step
 * it chooses. Resolves once the child printed `ready`, with its gRPC address.
 */
export async function startChildReplica(o: ChildReplicaOptions): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", o.main], {
    env: {
      ...process.env,
      DATABASE_URL: o.like.databaseUrl,
      NATS_URL: o.like.natsUrl,
      STRATUM_BUS_PREFIX: o.like.busPrefix,
      STRATUM_REPLICA_ID: o.replicaId,
      STRATUM_GRPC_HOST: "127.0.0.1",
      STRATUM_GRPC_PORT: "0",
      STRATUM_HEARTBEAT_MS: String(o.like.heartbeatMs),
      STRATUM_DB_POOL_SIZE: "4",
      ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = createInterface({ input: child.stdout! });
  const output: string[] = [];
  outputs.set(child, output);
  // Its log (stderr), read as it comes so the pipe never fills; the recent lines are kept.
  createInterface({ input: child.stderr! }).on("line", (line) => {
    output.push(line);
    if (output.length > 5_000) output.splice(0, 1_000);
  });
  const address = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${o.replicaId} exited with ${code ?? signal} before it was ready`)));
    lines.on("line", (line) => {
      if (line.includes('"msg":"ready"')) resolve((JSON.parse(line) as { address: string }).address);
    });
  });
  return { child, address };
}

const outputs = new WeakMap<ChildProcess, string[]>();

/** The recent log lines of a child replica (JSON, a line each: its stderr). */
export function outputOf(child: ChildProcess): readonly string[] {
  return outputs.get(child) ?? [];
}

/** Kills the child as a crash does (SIGCONT first, in case it was stopped) and waits for its exit. */
export async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGCONT");
  child.kill("SIGKILL");
  await exited;
}

/** Resolves when the child exits by itself (a crash point fired); its signal or code. */
export function exitOf(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(String(child.signalCode ?? child.exitCode));
  return new Promise((r) => child.once("exit", (code, signal) => r(String(signal ?? code))));
}
