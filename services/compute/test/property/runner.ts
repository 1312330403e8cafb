import { randomUUID } from "node:crypto";
import { OWNER_UNREACHABLE } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import {
  backupsAgreeWithJobs, cancelFirstSucceeds, capacityMatchesPlacement, copyNeverOverlapsBackup, oneCopyPerJob, outcomeMatchesCopy, vmOnExactlyOneHost,
  type BackupState as BackupStateName, type CancelFirstCase, type FinalJobState,
} from "./invariants";
import type { Schedule, Step } from "./schedule";
import { FINAL, MIB, VOLUME_BYTES, type PropertyStack } from "./stack";

/** How long a step waits for its point (a stage, a copy's start) before it goes ahead anyway. */
const POINT_BOUND_MS = 10_000;
/** How long the schedule's jobs get to end — longer after a crash (membership, lease, resume). */
const SETTLE_MS = 30_000;
const SETTLE_AFTER_CRASH_MS = 90_000;
/** A migration's bound on the wait for backup tasks: above any backup here, well below the settle bound. */
const BACKUP_WAIT_MS = 5_000;

interface TestVm {
  uuid: string;
  volumeUuids: string[];
}
interface StartedBackup {
  uuid: string;
  jobUuid: string;
  volumeUuid: string;
  vm: number;
  step: number;
}
interface StartedMigration {
  jobUuid: string;
  vm: number;
  step: number;
  named: string[];
  cancelled: boolean;
}

/** What one schedule did and broke: `log` tells the story for the failure report. */
export interface ScheduleReport {
  log: string[];
  violations: string[];
}

/** Runs one schedule on fresh VMs, volumes and a fresh backup storage, settles it and checks every invariant. */
export async function runSchedule(st: PropertyStack, schedule: Schedule): Promise<ScheduleReport> {
  return new ScheduleRun(st, schedule).run();
}

class ScheduleRun {
  readonly log: string[] = [];
  readonly violations: string[] = [];
  readonly vms: TestVm[] = [];
  readonly backups: StartedBackup[] = [];
  readonly migrations: StartedMigration[] = [];
  readonly crashes: boolean;
  faults = 0;
  crashed = false;
  since = 0;
  backupStorageUuid = "";

  constructor(
    private readonly st: PropertyStack,
    private readonly schedule: Schedule,
  ) {
    this.crashes = schedule.steps.some((s) => s.op === "crash");
  }

  async run(): Promise<ScheduleReport> {
    this.since = this.st.sim.timeline().at(-1)?.seq ?? 0;
    try {
      await this.setUp();
      for (const [i, step] of this.schedule.steps.entries()) await this.step(i, step);
      await this.check(await this.settle());
    } finally {
      for (const h of this.st.sim.hosts) h.clearFaults();
      if (this.crashed) await this.st.replaceChild();
    }
    return { log: this.log, violations: this.violations };
  }

  async setUp(): Promise<void> {
    const { backupStorage } = await this.st.backups.addBackupStorage({ name: `vault-${randomUUID().slice(0, 8)}`, totalCapacityBytes: 1024n ** 4n });
    this.backupStorageUuid = backupStorage!.uuid;
    // A schedule with a crash puts its VMs on the child, so the crash hits their migrations.
    const made = await Promise.all(this.schedule.vms.map(async (spec, i) => {
      const uuid = this.crashes ? this.st.ownedByChild() : randomUUID();
      await this.st.vms.createVm({ uuid, name: `prop-${i}`, cpu: 1, memoryBytes: 64n * MIB, hostUuid: this.st.hostUuids[spec.host]! });
      await this.untilVm(uuid, (s) => s === VmState.RUNNING, 30_000);
      const volumeUuids: string[] = [];
      for (let d = 0; d < spec.disks; d++) {
        const { volume } = await this.st.volumes.createVolume({ name: `prop-${i}-${d}`, sizeBytes: VOLUME_BYTES, primaryStorageUuid: this.st.primaryStorageUuid, kind: VolumeKind.DATA });
        await this.st.volumes.attachVolume({ uuid: volume!.uuid, vmUuid: uuid });
        volumeUuids.push(volume!.uuid);
      }
      return { uuid, volumeUuids };
    }));
    this.vms.push(...made);
    this.log.push(...made.map((v, i) => `vm${i} = ${v.uuid}${this.crashes ? ` (owned by ${this.st.childId()})` : ""}, volumes ${v.volumeUuids.join(", ")}`));
  }

  async step(i: number, s: Step): Promise<void> {
    switch (s.op) {
      case "backup": {
        const vm = this.vms[s.vm % this.vms.length]!;
        const volumeUuid = vm.volumeUuids[s.disk % vm.volumeUuids.length]!;
        try {
          const { backup, jobUuid } = await this.st.backups.createBackup({ volumeUuid, backupStorageUuid: this.backupStorageUuid, mode: s.mode === "full" ? BackupMode.FULL : BackupMode.INCREMENTAL });
          this.backups.push({ uuid: backup!.uuid, jobUuid, volumeUuid, vm: s.vm % this.vms.length, step: i });
          this.log.push(`${i}. backup ${s.mode} of ${volumeUuid}: backup ${backup!.uuid}, job ${jobUuid}`);
        } catch (e) {
          this.refused(i, `backup ${s.mode} of ${volumeUuid}`, e, (err) => s.mode === "incremental" && err.reason === "NO_PARENT_BACKUP");
        }
        return;
      }
      case "cancelBackup": {
        if (this.backups.length === 0) return void this.log.push(`${i}. cancel backup: none started`);
        const b = this.backups[s.pick % this.backups.length]!;
        if (s.when === "running") await this.untilPoint(b.jobUuid, (fire) => this.onTaskStart(b.uuid, fire));
        const { job } = await this.st.jobs.cancelJob({ uuid: b.jobUuid });
        this.log.push(`${i}. cancel backup job ${b.jobUuid} (${s.when}): ${JobState[job!.state]}`);
        return;
      }
      case "migrate": {
        const vmIndex = s.vm % this.vms.length;
        const vm = this.vms[vmIndex]!;
        const mine = this.backups.filter((b) => b.vm === vmIndex).map((b) => b.jobUuid);
        const named = s.cancel === "all" ? mine : s.cancel === "partial" ? mine.slice(0, Math.floor(mine.length / 2)) : [];
        const { vm: now } = await this.st.vms.getVm({ uuid: vm.uuid });
        const targetHostUuid = s.target === "auto" ? "" : this.st.hostUuids[(this.st.hostUuids.indexOf(now!.hostUuid) + s.target) % this.st.hostUuids.length]!;
        const what = `migrate vm${vmIndex} from ${now!.hostUuid} to ${targetHostUuid || "(auto)"} naming [${named.join(", ")}]`;
        try {
          const { jobUuid } = await this.st.vms.migrateVm({ uuid: vm.uuid, targetHostUuid, cancelBackupJobUuids: named, backupWaitTimeoutMs: BACKUP_WAIT_MS });
          this.migrations.push({ jobUuid, vm: vmIndex, step: i, named, cancelled: false });
          this.log.push(`${i}. ${what}: job ${jobUuid}`);
        } catch (e) {
          // A VM still migrating (VM_BUSY), or one that moved to the named host between the read and the call.
          this.refused(i, what, e, (err) => err.reason === "VM_BUSY" || (err.code === Code.INVALID_ARGUMENT && err.violations.some((v) => v.field === "target_host_uuid")));
        }
        return;
      }
      case "cancelMigration": {
        if (this.migrations.length === 0) return void this.log.push(`${i}. cancel migration: none started`);
        const m = this.migrations[s.pick % this.migrations.length]!;
        await this.untilMigrationPoint(m, s.when);
        m.cancelled = true;
        const { job } = await this.st.jobs.cancelJob({ uuid: m.jobUuid });
        this.log.push(`${i}. cancel migration job ${m.jobUuid} (${s.when}): ${JobState[job!.state]}`);
        return;
      }
      case "fault": {
        const vm = this.vms[s.vm % this.vms.length]!;
        const host = this.st.sim.hosts.find((h) => h.state.vms.has(vm.uuid)) ?? this.st.sim.hosts[0]!;
        const { command, ...spec } = s.fault;
        host.injectFault({ command, times: 1, ...spec });
        this.faults++;
        this.log.push(`${i}. fault on host ${host.uuid} (vm${s.vm % this.vms.length}'s): ${JSON.stringify(s.fault)}`);
        return;
      }
      case "crash": {
        const m = this.migrations.at(-1);
        if (m) await this.untilMigrationPoint(m, s.when);
        await this.st.crashChild();
        this.crashed = true;
        this.log.push(`${i}. crash (kill -9) of ${this.st.childId()}${m ? ` at ${s.when} of migration job ${m.jobUuid}` : ""}`);
        return;
      }
    }
  }

  /**
   * A synchronous refusal: expected ones are logged, anything else is a violation (bad input the
   * test did not mean to send, or a bug). After a crash, calls routed to the dead owner are
   * refused UNAVAILABLE until the membership drops it: what a client retries.
   */
  refused(i: number, what: string, e: unknown, expected: (err: StratumError) => boolean): void {
    if (!(e instanceof StratumError)) throw e;
    this.log.push(`${i}. ${what}: refused ${e.reason}: ${e.message}`);
    const deadOwner = this.crashed && e.code === Code.UNAVAILABLE && e.reason === OWNER_UNREACHABLE;
    if (!expected(e) && !deadOwner) this.violations.push(`step ${i} (${what}) was refused unexpectedly: ${e.reason}: ${e.message}`);
  }

  async untilMigrationPoint(m: StartedMigration, when: "now" | "waiting" | "copying"): Promise<void> {
    if (when === "now") return;
    const vmUuid = this.vms[m.vm]!.uuid;
    if (when === "copying") return this.untilPoint(m.jobUuid, (fire) => this.onCopyStart(vmUuid, fire));
    // Waiting for the backups, or already past it (a progress report may be coalesced away).
    const past = new Set(["waiting-for-backups", "copying-memory", "switching"]);
    await this.untilPoint(m.jobUuid, (fire) => {
      const ac = new AbortController();
      void (async () => {
        try {
          for await (const r of this.st.jobs.watchJob({ uuid: m.jobUuid }, { signal: ac.signal })) if (past.has(r.job?.progress?.stage ?? "")) return fire();
        } catch {
          // Aborted once the point was reached another way.
        }
      })();
      return () => ac.abort();
    });
  }

  /** Resolves at the point `arm` reports (it returns its disarm), when the job has ended, or after the bound: whichever first. */
  async untilPoint(jobUuid: string, arm: (fire: () => void) => () => void): Promise<void> {
    let disarm = () => {};
    const ended = new AbortController();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POINT_BOUND_MS);
      const fire = () => {
        clearTimeout(timer);
        resolve();
      };
      disarm = arm(fire);
      void this.st.finalJob(jobUuid, POINT_BOUND_MS, ended.signal).then((r) => r.final && fire());
    });
    disarm();
    ended.abort();
  }

  /** Fires when a memory copy of the VM runs or starts, on any host (the agent's own event: what follows lands inside the copy). */
  onCopyStart(vmUuid: string, fire: () => void): () => void {
    const tl = this.st.sim.timeline(this.since);
    const last = (event: string) => tl.filter((e) => e.event === event && "vmUuid" in e && e.vmUuid === vmUuid).at(-1)?.seq ?? 0;
    if (last("migrate-copy-start") > last("migrate-copy-end")) {
      fire();
      return () => {};
    }
    const on = (m: { vmUuid: string }) => {
      if (m.vmUuid === vmUuid) fire();
    };
    for (const h of this.st.sim.hosts) h.state.migrations.events.on("copy-start", on);
    return () => {
      for (const h of this.st.sim.hosts) h.state.migrations.events.off("copy-start", on);
    };
  }

  /** Fires when the backup's agent task starts (its task uuid is the backup's). */
  onTaskStart(taskUuid: string, fire: () => void): () => void {
    if (this.st.sim.timeline(this.since).some((e) => e.event === "volume-task-start" && e.taskUuid === taskUuid)) {
      fire();
      return () => {};
    }
    const on = (t: { taskUuid: string }) => {
      if (t.taskUuid === taskUuid) fire();
    };
    for (const h of this.st.sim.hosts) h.state.volumeTasks.events.on("start", on);
    return () => {
      for (const h of this.st.sim.hosts) h.state.volumeTasks.events.off("start", on);
    };
  }

  async untilVm(uuid: string, pick: (s: VmState) => boolean, timeoutMs: number): Promise<VmState | undefined> {
    let last: VmState | undefined;
    try {
      for await (const m of this.st.vms.watchVm({ uuid }, { timeoutMs })) {
        last = m.vm!.state;
        if (pick(last)) return last;
      }
    } catch {
      // The bound passed: the caller sees the state it stopped at.
    }
    return last;
  }

  /** Every job to its end (WatchJob), bounded; then every VM out of Migrating. A job still running after the bound is "stuck". */
  async settle(): Promise<Map<string, Job>> {
    const bound = this.crashed ? SETTLE_AFTER_CRASH_MS : SETTLE_MS;
    const deadline = Date.now() + bound;
    const uuids = [...this.backups.map((b) => b.jobUuid), ...this.migrations.map((m) => m.jobUuid)];
    const ends = await Promise.all(uuids.map((u) => this.st.finalJob(u, bound)));
    const jobs = new Map<string, Job>();
    for (const [i, { job, final }] of ends.entries()) {
      if (!final) this.violations.push(`stuck: job ${uuids[i]} is ${job ? JobState[job.state] : "unseen"} ${bound} ms after the schedule (stage ${job?.progress?.stage ?? "-"})`);
      if (job) jobs.set(uuids[i]!, job);
    }
    await Promise.all(this.vms.map((vm) => this.untilVm(vm.uuid, (s) => s !== VmState.MIGRATING, Math.max(1_000, deadline - Date.now()))));
    for (const m of this.migrations) {
      const j = jobs.get(m.jobUuid);
      this.log.push(`migration job ${m.jobUuid}: ${j ? JobState[j.state] : "?"} (attempt ${j?.attempt ?? "?"})${j?.error?.reason ? ` ${j.error.reason}: ${j.error.message}` : ""}`);
    }
    for (const b of this.backups) {
      const j = jobs.get(b.jobUuid);
      this.log.push(`backup job ${b.jobUuid}: ${j ? JobState[j.state] : "?"}${j?.error?.reason ? ` ${j.error.reason}: ${j.error.message}` : ""}`);
    }
    return jobs;
  }

  async check(jobs: Map<string, Job>): Promise<void> {
    const { st } = this;
    const timeline = st.sim.timeline(this.since);
    const finalState = (uuid: string): FinalJobState | undefined => {
      const j = jobs.get(uuid);
      return j && FINAL.has(j.state) ? (stateName(JobState, j.state) as FinalJobState) : undefined;
    };
    const v = this.violations;
    // 1
    v.push(...copyNeverOverlapsBackup(timeline, this.vms));
    // 2
    const placed = await Promise.all(this.vms.map(async (vm) => {
      const { vm: row } = await st.vms.getVm({ uuid: vm.uuid });
      return {
        uuid: vm.uuid,
        computeState: stateName(VmState, row!.state),
        computeHostUuid: row!.hostUuid,
        simHostsOf: st.sim.hosts.filter((h) => h.state.vms.get(vm.uuid)?.state === "running").map((h) => h.uuid),
      };
    }));
    v.push(...vmOnExactlyOneHost(placed));
    // 3: over every VM of the stack, so a leak of an earlier schedule shows too.
    const { hosts } = await st.hosts.listHosts({});
    v.push(...capacityMatchesPlacement(hosts, (await this.allVms()).map((x) => ({ uuid: x.uuid, hostUuid: x.hostUuid, cpu: x.cpu, memoryBytes: x.memoryBytes }))));
    // 4 and 7: only migrations that ended (a stuck one is reported already).
    const ended = this.migrations.flatMap((m) => {
      const state = finalState(m.jobUuid);
      return state ? [{ jobUuid: m.jobUuid, vmUuid: this.vms[m.vm]!.uuid, state, failedOver: (jobs.get(m.jobUuid)?.attempt ?? 1) > 1 }] : [];
    });
    v.push(...oneCopyPerJob(timeline, ended));
    v.push(...outcomeMatchesCopy(timeline, ended));
    // 5
    const backups = await Promise.all(this.backups.map(async (b) => {
      const { backup } = await st.backups.getBackup({ uuid: b.uuid });
      return { uuid: b.uuid, jobUuid: b.jobUuid, state: stateName(BackupState, backup!.state) as BackupStateName, jobState: finalState(b.jobUuid), sizeBytes: backup!.sizeBytes };
    }));
    const { backupStorage } = await st.backups.getBackupStorage({ uuid: this.backupStorageUuid });
    v.push(...backupsAgreeWithJobs(backups.flatMap((b) => (b.jobState ? [{ ...b, jobState: b.jobState }] : [])), { uuid: this.backupStorageUuid, usedBytes: backupStorage!.usedBytes }));
    // 6
    const cases: CancelFirstCase[] = ended.map((e) => {
      const m = this.migrations.find((x) => x.jobUuid === e.jobUuid)!;
      const onVm = this.backups.filter((b) => b.vm === m.vm);
      const error = jobs.get(e.jobUuid)?.error;
      return {
        jobUuid: e.jobUuid,
        vmUuid: e.vmUuid,
        state: e.state,
        ...(error?.reason ? { error: `${error.reason}: ${error.message}` } : {}),
        named: m.named,
        backupsBefore: onVm.filter((b) => b.step < m.step).map((b) => b.jobUuid),
        backupsAfter: onVm.some((b) => b.step > m.step),
        cancelled: m.cancelled,
        queuedBehind: this.migrations.some((x) => x.vm === m.vm && x.step < m.step),
      };
    });
    v.push(...cancelFirstSucceeds(cases, { faults: this.faults, crashed: this.crashed }));
  }

  async allVms() {
    const out = [];
    let pageToken = "";
    do {
      const page = await this.st.vms.listVms({ pageSize: 1_000, pageToken });
      out.push(...page.vms);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }
}

/** "Running" from VmState.RUNNING, "Available" from BackupState.AVAILABLE: the names the invariants speak. */
function stateName(e: Record<number, string>, value: number): string {
  const raw = e[value] ?? String(value);
  return raw.charAt(0) + raw.slice(1).toLowerCase();
}
