import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { LongjobStack } from "../../../services/longjob/test/harness";

const MAIN = fileURLToPath(new URL("../../../services/longjob/src/main.ts", import.meta.url));

/**
 * A longjob replica as a process of its own on the stack's database and NATS namespace, so a
 * test can kill it as a crash does (the CLI's watch then breaks with UNAVAILABLE, which an
 * in-process stop — a drain that lets the stream finish — never shows). Resolves with its gRPC
 * address once it is ready and the stack's replicas see it.
 */
export async function startLongjobChild(stack: LongjobStack, replicaId: string): Promise<{ child: ChildProcess; address: string }> {
  const { config } = stack.service.replicas[0]!.ctx;
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
      STRATUM_DB_POOL_SIZE: "4",
    },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${replicaId} exited with ${code ?? signal} before it was ready`)));
    lines.on("line", (line) => {
      if (!line.includes('"msg":"ready"')) return;
      resolve((JSON.parse(line) as { address: string }).address);
    });
  });
  await stack.service.replicas[0]!.ctx.view.until((v) => v.members("longjob").some((m) => m.replicaId === replicaId));
  return { child, address };
}

/** Kills the child as a crash does and waits for its exit. */
export async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}
