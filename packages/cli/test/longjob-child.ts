import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startChildReplica } from "@stratum/runtime/testing";
import type { LongjobStack } from "../../../services/longjob/test/harness";

export { kill9 } from "@stratum/runtime/testing";

const MAIN = fileURLToPath(new URL("../../../services/longjob/src/main.ts", import.meta.url));

/**
 * A longjob replica as a process of its own on the stack's database and NATS namespace, so a
 * test can kill it as a crash does (the CLI's watch then breaks with UNAVAILABLE, which an
 * in-process stop — a drain that lets the stream finish — never shows). Resolves with its gRPC
 * address once it is ready and the stack's replicas see it.
 */
export async function startLongjobChild(stack: LongjobStack, replicaId: string): Promise<{ child: ChildProcess; address: string }> {
  const started = await startChildReplica({ main: MAIN, like: stack.service.replicas[0]!.ctx.config, replicaId });
  await stack.service.replicas[0]!.ctx.view.until((v) => v.members("longjob").some((m) => m.replicaId === replicaId));
  return started;
}
