import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startChildReplica as startChild } from "@stratum/runtime/testing";
import type { ComputeStack } from "./harness";

export { kill9, outputOf } from "@stratum/runtime/testing";

/**
 * A compute replica as a process of its own on a stack's database and NATS namespace (the kit's
 * `startChildReplica`), so a test can really kill it (kill -9) or pause it (SIGSTOP / SIGCONT) at
 * the step it chooses (`env`: e.g. `STRATUM_CRASH_POINT`). Its pings are slowed down: the tests
 * drive the hosts themselves.
 */
const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

export async function startChildReplica(stack: ComputeStack, replicaId = "compute-1", env: Record<string, string> = {}): Promise<ChildProcess> {
  const { child } = await startChild({ main: MAIN, like: stack.replicas[0]!.ctx.config, replicaId, env: { STRATUM_PING_INTERVAL_MS: "60000", ...env } });
  await stack.replicas[0]!.ctx.view.until((v) => v.members("compute").some((m) => m.replicaId === replicaId));
  return child;
}

/** A VM UUID that `replicaId` owns on the stack's ring, so operations on it run there. */
export function ownedBy(stack: ComputeStack, replicaId = "compute-1"): string {
  for (;;) {
    const uuid = randomUUID();
    if (stack.replicas[0]!.ctx.view.ownerOf("compute", uuid)?.replicaId === replicaId) return uuid;
  }
}
