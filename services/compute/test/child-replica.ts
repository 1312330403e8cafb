import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { ComputeStack } from "./harness";

/**
 * A compute replica as a process of its own on a stack's database and NATS namespace, so a test
 * can really kill it (kill -9) or pause it (SIGSTOP / SIGCONT) at the step it chooses.
 */
const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

export async function startChildReplica(stack: ComputeStack, replicaId = "compute-1"): Promise<ChildProcess> {
  const { config } = stack.replicas[0]!.ctx;
  const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: config.databaseUrl,
      NATS_URL: config.natsUrl,
      STRATUM_BUS_PREFIX: config.busPrefix,
      STRATUM_REPLICA_ID: replicaId,
      STRATUM_GRPC_HOST: "127.0.0.1",
      STRATUM_GRPC_PORT: "0",
      STRATUM_HEARTBEAT_MS: String(config.heartbeatMs),
      STRATUM_PING_INTERVAL_MS: "60000",
      STRATUM_DB_POOL_SIZE: "4",
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
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${replicaId} exited with ${code} before it was ready`)));
    lines.on("line", (line) => line.includes('"msg":"ready"') && resolve());
  });
  await stack.replicas[0]!.ctx.view.until((v) => v.members("compute").some((m) => m.replicaId === replicaId));
  return child;
}

const outputs = new WeakMap<ChildProcess, string[]>();

/** The recent log lines of a child replica (JSON, a line each; its stderr). */
export function outputOf(child: ChildProcess): readonly string[] {
  return outputs.get(child) ?? [];
}

export async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGCONT");
  child.kill("SIGKILL");
  await exited;
}

/** A VM UUID that `replicaId` owns on the stack's ring, so operations on it run there. */
export function ownedBy(stack: ComputeStack, replicaId = "compute-1"): string {
  for (;;) {
    const uuid = randomUUID();
    if (stack.replicas[0]!.ctx.view.ownerOf("compute", uuid)?.replicaId === replicaId) return uuid;
  }
}
