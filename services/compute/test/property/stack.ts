import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { SimHostOptions } from "@stratum/agent-sim";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { kill9, startChildReplica } from "@stratum/runtime/testing";
import { startStorageStack, type StorageStack } from "../../../storage/test/stack";

export const MIB = 1024n ** 2n;
export const FINAL: ReadonlySet<JobState> = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

/**
 * Backups of 100–400 ms and memory copies of 20–100 ms, by host (a VM meets all three as it
 * moves): short enough for 200 schedules, long enough that cancels and crashes land inside them.
 * Volumes are 256 MiB in 8 MiB chunks, so a cancelled backup stops within ~12 ms.
 */
const CPU = 100_000;
const MEMORY = 1024 ** 5;
const HOSTS: SimHostOptions[] = [
  { volumeTaskDurationMs: 100, migrateDurationMs: 20, cpuNum: CPU, memoryBytes: MEMORY },
  { volumeTaskDurationMs: 250, migrateDurationMs: 60, cpuNum: CPU, memoryBytes: MEMORY },
  { volumeTaskDurationMs: 400, migrateDurationMs: 100, cpuNum: CPU, memoryBytes: MEMORY },
];
export const VOLUME_BYTES = 256n * MIB;
const CHUNK_BYTES = 8 * Number(MIB);
const COMPUTE_MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

export interface PropertyStack extends StorageStack {
  vms: Client<typeof VmService>;
  primaryStorageUuid: string;
  /** The child compute replica's id (a process of its own, the one a schedule may kill). */
  childId(): string;
  /** A VM uuid the child owns on the ring now. */
  ownedByChild(): string;
  /** Kills the child (kill -9): its work is left mid-flight for replica 0 to take over. */
  crashChild(): Promise<void>;
  /** After a crash: once the dead child left the membership, a new child joins under a new id. */
  replaceChild(): Promise<void>;
  /** Follows a job (WatchJob) to its end, at most `timeoutMs`: the final job, or the last seen when it did not end. */
  finalJob(uuid: string, timeoutMs: number, signal?: AbortSignal): Promise<{ job: Job | undefined; final: boolean }>;
}

/**
 * Storage's stack (longjob, compute, storage, agent-sim on one database and NATS) with a second
 * compute replica as a child process, hosts big enough for every schedule's VMs, and one shared
 * primary storage; each schedule adds its own backup storage, VMs and volumes.
 */
export async function startPropertyStack(): Promise<PropertyStack> {
  const s = await startStorageStack({
    hosts: HOSTS,
    hostCapacity: { cpu: CPU, memoryBytes: BigInt(MEMORY) },
    storageReplicas: 2,
    sim: { chunkBytes: CHUNK_BYTES, timelineLimit: 1_000_000 },
  });
  const vms = createClient(VmService, s.compute.replicas[0]!.address);
  const view = s.compute.replicas[0]!.ctx.view;
  let child: { id: string; process: ChildProcess } | undefined;
  let generation = 0;
  const startChild = async () => {
    const id = `compute-child-${++generation}`;
    const { child: process } = await startChildReplica({ main: COMPUTE_MAIN, like: s.compute.replicas[0]!.ctx.config, replicaId: id, env: { STRATUM_PING_INTERVAL_MS: "60000" } });
    await view.until((v) => v.members("compute").some((m) => m.replicaId === id));
    child = { id, process };
  };
  const stop = async () => {
    closeClient(vms);
    if (child) await kill9(child.process);
    await s.stop();
  };
  try {
    await startChild();
    const { primaryStorage } = await s.volumes.addPrimaryStorage({ name: "shared", totalCapacityBytes: 1024n ** 5n });
    for (let i = 0; ; i++) {
      const { types } = await s.jobs.listJobTypes({});
      if (types.some((t) => t.name === "compute.migrate")) break;
      if (i > 200) throw new Error("compute's job types never reached longjob");
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      ...s,
      vms,
      primaryStorageUuid: primaryStorage!.uuid,
      childId: () => child!.id,
      ownedByChild() {
        for (;;) {
          const uuid = randomUUID();
          if (view.ownerOf("compute", uuid)?.replicaId === child!.id) return uuid;
        }
      },
      async crashChild() {
        await kill9(child!.process);
      },
      async replaceChild() {
        const dead = child!.id;
        await view.until((v) => !v.members("compute").some((m) => m.replicaId === dead));
        await startChild();
      },
      async finalJob(uuid, timeoutMs, signal) {
        let last: Job | undefined;
        try {
          for await (const m of s.jobs.watchJob({ uuid }, { timeoutMs, ...(signal ? { signal } : {}) })) {
            last = m.job;
            if (last && FINAL.has(last.state)) return { job: last, final: true };
          }
        } catch {
          // The bound passed (or the stream broke): the caller reports the job as it last was.
        }
        return { job: last, final: false };
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
