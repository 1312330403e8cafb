/**
 * `pnpm bench:migrate`: migration of VMs whose volumes are being backed up, against a fresh
 * devstack (issue 10, seed 001). For each of N running VMs with a data volume:
 *   1. a full backup is started and followed until its agent task is copying (bytes moving);
 *   2. MigrateVm names that backup job in cancel_backup_job_uuids and the migration job is
 *      followed to Succeeded; the backup must end Canceled and the VM must be on another host.
 * The figure is read off the agent simulator's own timeline, one clock for both events: from the
 * exit of the last backup task on the VM's volumes to the start of the agent's `vm/migrate`
 * memory copy. ZStack's seed polled the volume tasks once a second, so its delay is anywhere in
 * [0, 1000) ms: p50 ≈ 500, p99 ≈ 990. Stratum's wait is a long-poll the agent answers on the exit.
 * Then M backups run to completion with progress reporting (C at a time): backups/s.
 * Last line: `migrate: wait-after-backup-exit p99 X ms`.
 *
 * Options: --vms N (40) --concurrency C (8) --backups M (400) --backup-concurrency B (64)
 * --backup-ms D (1500: the simulated copy time of one backup; long enough that the migration finds
 * it copying). backups/s is at most B / D per second by construction: it says whether the control
 * plane keeps up with B backups reporting progress, not how fast a disk copies.
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { BackupMode, BackupService, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { closeClient, createClient } from "@stratum/rpc";
import { untilVmState } from "../../services/compute/test/watch";
import { startDevstack } from "../support/devstack";
import { describeError, drive, positive } from "./latencies";

const { values } = parseArgs({
  options: {
    vms: { type: "string", default: "40" },
    concurrency: { type: "string", default: "8" },
    backups: { type: "string", default: "400" },
    "backup-concurrency": { type: "string", default: "64" },
    "backup-ms": { type: "string", default: "1500" },
  },
  strict: true,
});
const N = positive("vms", values.vms);
const C = positive("concurrency", values.concurrency);
const M = positive("backups", values.backups);
const B = positive("backup-concurrency", values["backup-concurrency"]);
const BACKUP_MS = positive("backup-ms", values["backup-ms"]);
const GIB = 1024n ** 3n;
/** ZStack's seed 001 polled each volume task at this interval. */
const ZSTACK_POLL_MS = 1000;

/** An entry of agent-sim's timeline (GET /timeline), the fields this bench reads. */
interface TimelineEntry {
  seq: number;
  atMs: number;
  event: string;
  vmUuid?: string;
  taskUuid?: string;
  volumeUuid?: string;
  kind?: string;
  state?: string;
  outcome?: string;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  console.log(`starting a fresh devstack: 3 simulated hosts, backups copying for ${BACKUP_MS} ms…`);
  const stack = await startDevstack(["--hosts", "3", "--volume-task-ms", String(BACKUP_MS)]);
  const endpoints = stack.endpoints as unknown as Record<string, unknown>;
  const first = (name: string): string => {
    const list = endpoints[name] as string[] | undefined;
    if (!list?.length) throw new Error(`the devstack started no ${name} replica (endpoints: ${Object.keys(endpoints).join(", ")})`);
    return list[0]!;
  };
  const { primaryStorage: primaryStorageUuid, backupStorage: backupStorageUuid } = stack.endpoints;
  if (!primaryStorageUuid || !backupStorageUuid) throw new Error("the devstack registered no default primary/backup storage");
  const vms = createClient(VmService, first("compute"));
  const storage = createClient(StorageService, first("storage"));
  const backups = createClient(BackupService, first("storage"));
  const jobs = createClient(LongJobService, first("longjob"));
  const simControl = stack.endpoints.agentSim;

  /** Follows a job until `pick` accepts it; throws when it ends otherwise. */
  const untilJob = async (uuid: string, pick: (state: JobState, bytesDone: bigint) => boolean, what: string): Promise<JobState> => {
    let last = JobState.UNSPECIFIED;
    for await (const { job } of jobs.watchJob({ uuid }, { timeoutMs: 120_000 })) {
      last = job!.state;
      if (pick(last, job!.progress?.bytesDone ?? 0n)) return last;
    }
    throw new Error(`job ${uuid} ended ${JobState[last]} before ${what}: ${(await jobs.getJob({ uuid })).job?.error?.message ?? ""}`);
  };

  try {
    // The fleet: N running VMs, each with a data volume attached.
    const fleet: Array<{ vm: string; volume: string; host: string }> = [];
    const setup = await drive(N, C, async (_, i) => {
      const { vm } = await vms.createVm({ name: `mig-${i}`, cpu: 1, memoryBytes: 512n * 1024n * 1024n });
      const running = await untilVmState(vms, vm!.uuid, VmState.RUNNING);
      const { volume } = await storage.createVolume({ name: `mig-data-${i}`, sizeBytes: 20n * GIB, primaryStorageUuid, kind: VolumeKind.DATA });
      await storage.attachVolume({ uuid: volume!.uuid, vmUuid: vm!.uuid });
      fleet.push({ vm: vm!.uuid, volume: volume!.uuid, host: running.hostUuid });
    });
    if (setup.errors) throw new Error(`setting up the VMs: ${setup.errors} failed, first: ${describeError(setup.firstError)}`);
    await fetch(`${simControl}/timeline/clear`, { method: "POST" });

    // Phase 1: migrate each VM, cancelling the backup that copies its volume.
    const backupOf = new Map<string, string>();
    let next = 0;
    let finishedFirst = 0;
    const migrations = await drive(N, C, async () => {
      const { vm, volume, host } = fleet[next++]!;
      const { backup, jobUuid } = await backups.createBackup({ volumeUuid: volume, backupStorageUuid, mode: BackupMode.FULL });
      backupOf.set(vm, backup!.uuid);
      await untilJob(jobUuid, (s, bytes) => s === JobState.RUNNING && bytes > 0n, "it was copying");
      const migrate = await vms.migrateVm({ uuid: vm, cancelBackupJobUuids: [jobUuid] });
      const end = await untilJob(migrate.jobUuid, (s) => s === JobState.SUCCEEDED || s === JobState.FAILED || s === JobState.CANCELED, "it ended");
      if (end !== JobState.SUCCEEDED) throw new Error(`migration of ${vm} ended ${JobState[end]}: ${(await jobs.getJob({ uuid: migrate.jobUuid })).job?.error?.message}`);
      const moved = (await vms.getVm({ uuid: vm })).vm!;
      if (moved.hostUuid === host || moved.state !== VmState.RUNNING) throw new Error(`VM ${vm} is ${VmState[moved.state]} on ${moved.hostUuid} after migrating from ${host}`);
      const after = (await backups.getBackup({ uuid: backup!.uuid })).backup!;
      // A backup that finished before its cancel reached the agent won the race (Available): counted, not an error.
      if (after.state === BackupState.AVAILABLE) finishedFirst++;
      else if (after.state !== BackupState.CANCELED) throw new Error(`backup ${after.uuid} is ${BackupState[after.state]} after the migration cancelled it`);
    });

    const timeline = ((await (await fetch(`${simControl}/timeline`)).json()) as { entries: TimelineEntry[] }).entries;
    const delays: number[] = [];
    let overlaps = 0;
    for (const { vm, volume } of fleet) {
      const exit = timeline.filter((e) => e.event === "volume-task-exit" && e.kind === "backup" && e.volumeUuid === volume).at(-1);
      const copy = timeline.find((e) => e.event === "migrate-copy-start" && e.vmUuid === vm);
      if (!exit || !copy) continue;
      if (copy.atMs < exit.atMs) overlaps++;
      else delays.push(copy.atMs - exit.atMs);
    }
    delays.sort((a, b) => a - b);

    // Phase 2: backups to completion, progress reported all the way.
    const volumes = fleet.map((f) => f.volume);
    const runs = await drive(M, B, async (_, i) => {
      const { jobUuid } = await backups.createBackup({ volumeUuid: volumes[i % volumes.length]!, backupStorageUuid, mode: BackupMode.FULL });
      const end = await untilJob(jobUuid, (s) => s === JobState.SUCCEEDED || s === JobState.FAILED || s === JobState.CANCELED, "it ended");
      if (end !== JobState.SUCCEEDED) throw new Error(`backup job ${jobUuid} ended ${JobState[end]}`);
    });

    console.log(`\nN=${N} VMs migrated with a backup to cancel, C=${C} at a time; M=${M} backups of ${BACKUP_MS} ms each, B=${B} at a time (${availableParallelism()} cores, everything on one machine)`);
    console.log(`migrations: ${migrations.count} succeeded, ${migrations.errors} failed${migrations.firstError ? ` (first: ${describeError(migrations.firstError)})` : ""}; backups that finished before their cancel: ${finishedFirst}; backup copy overlapping a memory copy: ${overlaps}`);
    console.log(`MigrateVm → Succeeded: p50 ${migrations.p50.toFixed(0)} ms, p99 ${migrations.p99.toFixed(0)} ms`);
    console.log(`last backup task exit → vm/migrate copy start (agent timeline): p50 ${pct(delays, 50).toFixed(1)} ms, p99 ${pct(delays, 99).toFixed(1)} ms, max ${(delays.at(-1) ?? NaN).toFixed(1)} ms over ${delays.length} migrations`);
    console.log(`ZStack's seed 001 (polls every ${ZSTACK_POLL_MS} ms): p50 ≈ ${ZSTACK_POLL_MS / 2} ms, p99 ≈ ${(ZSTACK_POLL_MS * 0.99).toFixed(0)} ms`);
    console.log(`backups with progress: ${runs.perSecond.toFixed(1)}/s (${runs.count} succeeded, ${runs.errors} failed${runs.firstError ? `, first: ${describeError(runs.firstError)}` : ""}), each ${BACKUP_MS} ms on the agent, ${B} at a time (at most ${((1000 * B) / BACKUP_MS).toFixed(0)}/s)`);
    console.log(`migrate: wait-after-backup-exit p99 ${pct(delays, 99).toFixed(1)} ms`);
  } finally {
    for (const c of [vms, storage, backups, jobs]) closeClient(c);
    await stack.stop();
  }
}

await main();
