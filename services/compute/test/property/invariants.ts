import type { TimelineEntry } from "@stratum/agent-sim";

/**
 * The invariants the migration property test checks after every schedule, as pure functions of
 * what the schedule left (agent-sim's timeline, compute's and storage's records), so each can be
 * shown to catch its violation on a hand-made input (invariants.test.ts). Each returns the
 * violations it found, one sentence each naming the resources: empty means it holds.
 */

/** The task id compute sends `vm/migrate` with for a migration job (migrate-job.ts): how the timeline names the job. */
export const migrateTaskId = (jobUuid: string): string => `migrate-${jobUuid}`;

export type FinalJobState = "Succeeded" | "Failed" | "Canceled";

interface Interval {
  hostUuid: string;
  /** Timeline seqs: one total order across every host of the sim. */
  from: number;
  /** Infinity while it has not ended. */
  to: number;
}

/** The memory copies of one VM on the timeline, each from its copy-start to its copy-end on the same host. */
export function copyIntervals(timeline: readonly TimelineEntry[], vmUuid: string): Array<Interval & { outcome?: string }> {
  const out: Array<Interval & { outcome?: string }> = [];
  const open = new Map<string, Interval & { outcome?: string }>();
  for (const e of timeline) {
    if (e.event === "migrate-copy-start" && e.vmUuid === vmUuid) {
      const i = { hostUuid: e.hostUuid, from: e.seq, to: Infinity };
      open.set(e.hostUuid, i);
      out.push(i);
    } else if (e.event === "migrate-copy-end" && e.vmUuid === vmUuid) {
      const i = open.get(e.hostUuid);
      if (i) {
        i.to = e.seq;
        i.outcome = e.outcome;
        open.delete(e.hostUuid);
      }
    }
  }
  return out;
}

/** Backup tasks on the timeline, from volume-task-start to volume-task-exit, per volume. */
export function backupIntervals(timeline: readonly TimelineEntry[], volumeUuids: ReadonlySet<string>): Array<Interval & { taskUuid: string; volumeUuid: string }> {
  const byTask = new Map<string, Interval & { taskUuid: string; volumeUuid: string }>();
  const out: Array<Interval & { taskUuid: string; volumeUuid: string }> = [];
  for (const e of timeline) {
    if (e.event === "volume-task-start" && e.kind === "backup" && volumeUuids.has(e.volumeUuid)) {
      const i = { hostUuid: e.hostUuid, from: e.seq, to: Infinity, taskUuid: e.taskUuid, volumeUuid: e.volumeUuid };
      byTask.set(`${e.hostUuid}/${e.taskUuid}`, i);
      out.push(i);
    } else if (e.event === "volume-task-exit" && e.kind === "backup") {
      const i = byTask.get(`${e.hostUuid}/${e.taskUuid}`);
      if (i) i.to = e.seq;
    }
  }
  return out;
}

/**
 * 1. No memory copy of a VM overlaps a backup task on one of that VM's volumes, on any host
 * (closed intervals on the timeline's total order). The VM's volumes are the test's own record,
 * not what compute told the agent: a migration that named the wrong disks is caught too.
 */
export function copyNeverOverlapsBackup(timeline: readonly TimelineEntry[], vms: ReadonlyArray<{ uuid: string; volumeUuids: readonly string[] }>): string[] {
  const found: string[] = [];
  for (const vm of vms) {
    const backups = backupIntervals(timeline, new Set(vm.volumeUuids));
    for (const c of copyIntervals(timeline, vm.uuid)) {
      for (const b of backups) {
        if (c.from <= b.to && b.from <= c.to) {
          found.push(`vm ${vm.uuid}: memory copy on host ${c.hostUuid} [seq ${c.from}, ${c.to}] overlaps backup task ${b.taskUuid} on volume ${b.volumeUuid} (host ${b.hostUuid}) [seq ${b.from}, ${b.to}]`);
        }
      }
    }
  }
  return found;
}

/**
 * 2. Every VM runs on exactly one sim host, and compute's record names that host, Running.
 * `simHostsOf` lists the sim hosts that run the VM.
 */
export function vmOnExactlyOneHost(
  vms: ReadonlyArray<{ uuid: string; computeState: string; computeHostUuid: string; simHostsOf: readonly string[] }>,
): string[] {
  const found: string[] = [];
  for (const vm of vms) {
    if (vm.simHostsOf.length !== 1) found.push(`vm ${vm.uuid} runs on ${vm.simHostsOf.length} sim hosts (${vm.simHostsOf.join(", ") || "none"}), not exactly one`);
    if (vm.computeState !== "Running") found.push(`vm ${vm.uuid} is ${vm.computeState} in compute, not Running`);
    if (vm.simHostsOf.length === 1 && vm.computeHostUuid !== vm.simHostsOf[0]) {
      found.push(`vm ${vm.uuid}: compute places it on host ${vm.computeHostUuid || "(none)"}, the sim runs it on ${vm.simHostsOf[0]}`);
    }
  }
  return found;
}

/**
 * 3. Every host's used CPU and memory in compute is the sum over the VMs placed on it — nothing
 * more (a reservation left by a migration that failed, was cancelled or crashed) and nothing less.
 */
export function capacityMatchesPlacement(
  hosts: ReadonlyArray<{ uuid: string; cpuUsed: number; memoryUsedBytes: bigint }>,
  vms: ReadonlyArray<{ uuid: string; hostUuid: string; cpu: number; memoryBytes: bigint }>,
): string[] {
  const sums = new Map<string, { cpu: number; memory: bigint; count: number }>();
  for (const vm of vms) {
    if (!vm.hostUuid) continue;
    const s = sums.get(vm.hostUuid) ?? { cpu: 0, memory: 0n, count: 0 };
    s.cpu += vm.cpu;
    s.memory += vm.memoryBytes;
    s.count += 1;
    sums.set(vm.hostUuid, s);
  }
  const found: string[] = [];
  for (const h of hosts) {
    const s = sums.get(h.uuid) ?? { cpu: 0, memory: 0n, count: 0 };
    if (h.cpuUsed !== s.cpu || h.memoryUsedBytes !== s.memory) {
      found.push(`host ${h.uuid} accounts ${h.cpuUsed} CPU / ${h.memoryUsedBytes} bytes used, its ${s.count} VMs hold ${s.cpu} CPU / ${s.memory} bytes`);
    }
  }
  return found;
}

/**
 * 4. Never two memory copies for one migration job, and `vm/migrate` arrived at most once for a
 * job that did not fail over (its final attempt is 1: one executor ran it). A copy belongs to the
 * last `vm/migrate` of a job of its VM that arrived on its host before it started.
 */
export function oneCopyPerJob(
  timeline: readonly TimelineEntry[],
  migrations: ReadonlyArray<{ jobUuid: string; vmUuid: string; failedOver: boolean }>,
): string[] {
  const found: string[] = [];
  const jobOfTask = new Map(migrations.map((m) => [migrateTaskId(m.jobUuid), m]));
  const arrivals = new Map<string, number>();
  const lastArrival = new Map<string, string>(); // `${host}/${vm}` → job
  const copies = new Map<string, number>();
  for (const e of timeline) {
    if (e.event === "command" && e.command === "vm/migrate" && e.taskId) {
      const m = jobOfTask.get(e.taskId);
      if (!m) continue;
      arrivals.set(m.jobUuid, (arrivals.get(m.jobUuid) ?? 0) + 1);
      lastArrival.set(`${e.hostUuid}/${m.vmUuid}`, m.jobUuid);
    } else if (e.event === "migrate-copy-start") {
      const job = lastArrival.get(`${e.hostUuid}/${e.vmUuid}`);
      if (job) copies.set(job, (copies.get(job) ?? 0) + 1);
      else if (migrations.some((m) => m.vmUuid === e.vmUuid)) found.push(`vm ${e.vmUuid}: a memory copy started on host ${e.hostUuid} (seq ${e.seq}) with no vm/migrate of any of its migration jobs before it`);
    }
  }
  for (const m of migrations) {
    const n = copies.get(m.jobUuid) ?? 0;
    if (n > 1) found.push(`migration job ${m.jobUuid} (vm ${m.vmUuid}) made ${n} memory copies`);
    const a = arrivals.get(m.jobUuid) ?? 0;
    if (!m.failedOver && a > 1) found.push(`migration job ${m.jobUuid} (vm ${m.vmUuid}) did not fail over but vm/migrate arrived ${a} times`);
  }
  return found;
}

/**
 * 7. A migration's outcome agrees with its memory copy: Succeeded only with a copy that succeeded
 * (the VM moved), Failed or Canceled never with one (a VM moved under a failed job).
 */
export function outcomeMatchesCopy(timeline: readonly TimelineEntry[], migrations: ReadonlyArray<{ jobUuid: string; vmUuid: string; state: FinalJobState }>): string[] {
  const found: string[] = [];
  const jobOfTask = new Map(migrations.map((m) => [migrateTaskId(m.jobUuid), m]));
  const lastArrival = new Map<string, string>();
  const openCopy = new Map<string, string>(); // `${host}/${vm}` → job of the copy running there
  const succeeded = new Set<string>();
  for (const e of timeline) {
    if (e.event === "command" && e.command === "vm/migrate" && e.taskId) {
      const m = jobOfTask.get(e.taskId);
      if (m) lastArrival.set(`${e.hostUuid}/${m.vmUuid}`, m.jobUuid);
    } else if (e.event === "migrate-copy-start") {
      const job = lastArrival.get(`${e.hostUuid}/${e.vmUuid}`);
      if (job) openCopy.set(`${e.hostUuid}/${e.vmUuid}`, job);
    } else if (e.event === "migrate-copy-end") {
      const job = openCopy.get(`${e.hostUuid}/${e.vmUuid}`);
      openCopy.delete(`${e.hostUuid}/${e.vmUuid}`);
      if (job && e.outcome === "succeeded") succeeded.add(job);
    }
  }
  for (const m of migrations) {
    if (m.state === "Succeeded" && !succeeded.has(m.jobUuid)) found.push(`migration job ${m.jobUuid} (vm ${m.vmUuid}) Succeeded without a memory copy that succeeded`);
    if (m.state !== "Succeeded" && succeeded.has(m.jobUuid)) found.push(`migration job ${m.jobUuid} (vm ${m.vmUuid}) is ${m.state} but its memory copy succeeded (the VM moved)`);
  }
  return found;
}

export type BackupState = "Creating" | "Available" | "Error" | "Canceled" | "Restoring" | "Deleting" | "Deleted";

/**
 * 5. Every backup is terminal and agrees with its job (Canceled ⇒ Canceled, Succeeded ⇒
 * Available, Failed ⇒ Error); cancelled and failed backups hold no bytes, and their backup
 * storage (one per schedule) holds exactly the bytes of the available ones.
 */
export function backupsAgreeWithJobs(
  backups: ReadonlyArray<{ uuid: string; jobUuid: string; state: BackupState; jobState: FinalJobState; sizeBytes: bigint }>,
  storage: { uuid: string; usedBytes: bigint },
): string[] {
  const expected: Record<FinalJobState, BackupState> = { Succeeded: "Available", Failed: "Error", Canceled: "Canceled" };
  const found: string[] = [];
  let available = 0n;
  for (const b of backups) {
    if (b.state !== expected[b.jobState]) found.push(`backup ${b.uuid} is ${b.state} but its job ${b.jobUuid} ${b.jobState} (expected ${expected[b.jobState]})`);
    if ((b.state === "Canceled" || b.state === "Error") && b.sizeBytes !== 0n) found.push(`backup ${b.uuid} is ${b.state} yet holds ${b.sizeBytes} bytes`);
    if (b.state === "Available") available += b.sizeBytes;
  }
  if (storage.usedBytes !== available) found.push(`backup storage ${storage.uuid} holds ${storage.usedBytes} bytes, its available backups ${available}`);
  return found;
}

/** What invariant 6 needs to know of one migration the schedule asked for. */
export interface CancelFirstCase {
  jobUuid: string;
  vmUuid: string;
  state: FinalJobState;
  /** Its error, when it did not succeed. */
  error?: string;
  /** The backup jobs it named to cancel. */
  named: readonly string[];
  /** The backup jobs on the VM's volumes created before it was asked for (any state). */
  backupsBefore: readonly string[];
  /** Whether a backup on the VM's volumes was asked for after it (it may race the copy). */
  backupsAfter: boolean;
  /** Whether the schedule cancelled it. */
  cancelled: boolean;
  /** Whether another migration of the VM was accepted before it (it runs first and may move the VM onto this one's target). */
  queuedBehind: boolean;
}

/**
 * 6. Cancel-first then wait works: a migration that named every backup job on its VM's volumes,
 * in a schedule with no fault and no crash, not cancelled itself, not queued behind another
 * migration of its VM and with no backup asked for after it, Succeeded (it was not refused
 * BLOCK_JOB_ACTIVE, nor timed out waiting).
 */
export function cancelFirstSucceeds(cases: readonly CancelFirstCase[], schedule: { faults: number; crashed: boolean }): string[] {
  if (schedule.faults > 0 || schedule.crashed) return [];
  const found: string[] = [];
  for (const c of cases) {
    if (c.cancelled || c.backupsAfter || c.queuedBehind) continue;
    const named = new Set(c.named);
    if (!c.backupsBefore.every((b) => named.has(b))) continue;
    if (c.state !== "Succeeded") {
      found.push(`migration job ${c.jobUuid} (vm ${c.vmUuid}) named every backup job on its volumes (${c.backupsBefore.join(", ") || "none"}) with no fault, crash or cancel, yet ${c.state}${c.error ? `: ${c.error}` : ""}`);
    }
  }
  return found;
}
