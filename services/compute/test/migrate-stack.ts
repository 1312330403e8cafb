import { randomUUID } from "node:crypto";
import type { TimelineEntry } from "@stratum/agent-sim";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { VmService, VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { startStorageStack, type StorageStack, type StorageStackOptions } from "../../storage/test/stack";

export const GIB = 1024n ** 3n;
export const MIB = 1024n ** 2n;
export const FINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

/** A VM of the stack with its data volume, Running on `hostUuid`. */
export interface TestVm {
  uuid: string;
  hostUuid: string;
  volumeUuid: string;
}

export interface MigrateStack extends StorageStack {
  vms: Client<typeof VmService>;
  primaryStorageUuid: string;
  backupStorageUuid: string;
  /** A Running VM (1 CPU, 1 GiB) on host `onHost` (index) with a 1 GiB volume attached; `uuid` to choose its UUID (its owner). */
  vmWithVolume(onHost?: number, uuid?: string): Promise<TestVm>;
  /** Starts a full backup of the volume and resolves once its agent task runs: the backup job and the task. */
  backup(volumeUuid: string): Promise<{ jobUuid: string; taskUuid: string }>;
  /** The host index of a compute host uuid. */
  hostIndex(hostUuid: string): number;
  /** Waits for a timeline entry that `pick` accepts (after `since`). */
  untilTimeline(pick: (e: TimelineEntry) => boolean, since?: number, timeoutMs?: number): Promise<TimelineEntry>;
  /** The final job. */
  finished(jobUuid: string): Promise<Job>;
  /** cpu/memory used per host, by uuid. */
  usage(): Promise<Map<string, { cpu: number; memory: bigint }>>;
}

/**
 * Longjob, compute, storage and agent-sim (storage's shared stack, `services/storage/test/stack.ts`)
 * with one shared primary storage and one backup storage. Agent tasks are long by default
 * (backups 60 s in 1 MiB chunks, so a cancel lands within ~60 ms; memory copies 60 s) and the tests
 * end them when they choose (`finishVolumeTask`, `completeMigration`): every interleaving is forced.
 */
export async function startMigrateStack(o: StorageStackOptions = {}): Promise<MigrateStack> {
  const s = await startStorageStack({
    hosts: 3,
    storageReplicas: 1,
    ...o,
    sim: { volumeTaskDurationMs: 60_000, chunkBytes: Number(MIB), migrateDurationMs: 60_000, ...o.sim },
  });
  const vms = createClient(VmService, s.compute.replicas[0]!.address);
  const { primaryStorage } = await s.volumes.addPrimaryStorage({ name: "shared", totalCapacityBytes: 1024n * GIB });
  const { backupStorage } = await s.backups.addBackupStorage({ name: "vault", totalCapacityBytes: 1024n * GIB });
  const stack: MigrateStack = {
    ...s,
    vms,
    primaryStorageUuid: primaryStorage!.uuid,
    backupStorageUuid: backupStorage!.uuid,
    async vmWithVolume(onHost = 0, uuid = randomUUID()) {
      const hostUuid = s.hostUuids[onHost]!;
      await vms.createVm({ uuid, name: `vm-${uuid.slice(0, 8)}`, cpu: 1, memoryBytes: GIB, hostUuid });
      await untilVm(vms, uuid, (vm) => vm.state === VmState.RUNNING);
      const { volume } = await s.volumes.createVolume({ name: `disk-${uuid.slice(0, 8)}`, sizeBytes: GIB, primaryStorageUuid: primaryStorage!.uuid, kind: VolumeKind.DATA });
      await s.volumes.attachVolume({ uuid: volume!.uuid, vmUuid: uuid });
      return { uuid, hostUuid, volumeUuid: volume!.uuid };
    },
    async backup(volumeUuid) {
      const since = lastSeq(s);
      const { jobUuid } = await s.backups.createBackup({ volumeUuid, backupStorageUuid: backupStorage!.uuid, mode: BackupMode.FULL });
      const start = await stack.untilTimeline((e) => e.event === "volume-task-start" && e.volumeUuid === volumeUuid && e.kind === "backup", since);
      return { jobUuid, taskUuid: (start as Extract<TimelineEntry, { event: "volume-task-start" }>).taskUuid };
    },
    hostIndex(hostUuid) {
      return s.hostUuids.indexOf(hostUuid);
    },
    async untilTimeline(pick, since = 0, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = s.sim.timeline(since).find(pick);
        if (hit) return hit;
        if (Date.now() > until) throw new Error("the awaited timeline entry never came");
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async finished(jobUuid) {
      return s.untilJob(jobUuid, (j) => FINAL.has(j.state), "its end");
    },
    async usage() {
      const { hosts } = await s.hosts.listHosts({});
      return new Map(hosts.map((h) => [h.uuid, { cpu: h.cpuUsed, memory: h.memoryUsedBytes }]));
    },
    async stop() {
      closeClient(vms);
      await s.stop();
    },
  };
  return stack;
}

/** The newest timeline seq: entries after it are what a step caused. */
export function lastSeq(s: Pick<StorageStack, "sim">): number {
  return s.sim.timeline().at(-1)?.seq ?? 0;
}

/** Resolves with the VM once `pick` accepts it (WatchVm: its state first, then every change). */
export async function untilVm(vms: Client<typeof VmService>, uuid: string, pick: (vm: Vm) => boolean): Promise<Vm> {
  for await (const m of vms.watchVm({ uuid }, { timeoutMs: 30_000 })) if (pick(m.vm!)) return m.vm!;
  throw new Error(`vm ${uuid} watch ended first`);
}
