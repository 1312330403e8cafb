import { isFenced } from "@stratum/agent-client";
import { Code, errorMessage, fieldPath, StratumError, Violations } from "@stratum/core";
import { UUID_PATTERN } from "@stratum/validation";
import { JobCanceledError, JobSupersededError, type JobContext, type JobTypeDefinition } from "@stratum/jobs";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { fenceOf, type AgentHost, type HostAgents } from "../clients/agents";
import type { MigrationPeers } from "../clients/peers";
import type { HostStore } from "../store/host-store";
import type { VmRow } from "../store/schema";
import type { VmStore } from "../store/vm-store";
import { checkMigration, notRunning, targetProblem } from "./migration-check";
import type { MigrationStep, MigrationStepContext } from "./migration-steps";

export const MIGRATE_JOB_TYPE = "compute.migrate";
/** How long a migration waits for the backup tasks on its VM's volumes by default (`STRATUM_MIGRATE_BACKUP_WAIT_MS`). */
export const DEFAULT_MIGRATE_BACKUP_WAIT_MS = 30_000;
/** The volume-task kind that blocks a live migration (libvirt refuses one while a block job runs). */
const BLOCKING_KIND = "backup";
/** How often the copy's progress is read from the agent while `vm/migrate` runs (display only: the outcome is the call's answer). */
const PROGRESS_INTERVAL_MS = 500;
/** How soon an abort is sent again while `vm/migrate` is still on its way to the agent (no copy to abort yet). */
const ABORT_RETRY_MS = 100;
/** How long a resumed migration waits for its dead predecessor's lease to lapse before it may claim the VM. */
const CLAIM_WAIT_MS = 60_000;
const CLAIM_RETRY_MS = 250;

const STAGES = ["cancelling-backups", "waiting-for-backups", "copying-memory", "switching"] as const;

export interface MigrateParams {
  targetHostUuid?: string;
  cancelBackupJobUuids?: string[];
  backupWaitTimeoutMs?: number;
}

export interface MigrateResult {
  vmUuid: string;
  hostUuid: string;
  sourceHostUuid?: string;
  [field: string]: unknown;
}

export interface MigrateJobDeps {
  vms: VmStore;
  hosts: HostStore;
  agents: HostAgents;
  peers: MigrationPeers;
  steps: readonly MigrationStep[];
  /** Default bound of the wait for backup tasks, ms. */
  backupWaitMs: number;
  incarnation: () => string;
}

/** The request key a migration records on its VM (`vms.op_request`): its job, so a resumed attempt recognises its own VM. */
export function migrationKey(jobUuid: string): string {
  return `${MIGRATE_JOB_TYPE}:${jobUuid}`;
}

/** The migration job a VM's request key names, if it is one. */
export function migrationJobOf(opRequest: string | null): string | undefined {
  return opRequest?.startsWith(`${MIGRATE_JOB_TYPE}:`) ? opRequest.slice(MIGRATE_JOB_TYPE.length + 1) : undefined;
}

/** The copy of a migration in flight on this replica, which a cancel aborts. */
interface Copy {
  abort(): Promise<void>;
}

/**
 * `compute.migrate`: live-migrates a Running VM, after cancelling the backups it was asked to and
 * waiting until no backup task runs on the VM's volumes (seed 001). Runs in the VM's queue
 * (`vm-<uuid>`), so lifecycle operations queue behind it and are refused (VM_BUSY) meanwhile.
 * Resumable: every step is idempotent by the job's uuid (the VM records it, the agent call's
 * task id is derived from it), so a resumed job joins or reads the first migration and never
 * starts a second.
 */
export function migrateJob(d: MigrateJobDeps): JobTypeDefinition<MigrateParams, MigrateResult> {
  const copies = new Map<string, Copy>();
  return {
    name: MIGRATE_JOB_TYPE,
    description: "Live-migrates a Running VM: cancels the named backup jobs, waits until no backup task runs on its volumes, copies its memory to the target, then moves it and its capacity there at once.",
    stages: STAGES,
    parameters: [
      { name: "targetHostUuid", kind: "string", description: "host to migrate to (default: the one with the most free memory that fits)" },
      { name: "cancelBackupJobUuids", kind: "stringList", description: "storage.backup jobs on the VM's volumes to cancel first" },
      { name: "backupWaitTimeoutMs", kind: "number", min: 1_000, max: 600_000, description: `how long to wait for backup tasks to exit (default ${DEFAULT_MIGRATE_BACKUP_WAIT_MS})` },
    ],
    onInterrupt: "resume",
    targetRequired: true,
    signature: ({ targetUuid }) => `vm-${targetUuid}`,
    run: (ctx) => new Migration(d, ctx, copies).run(),
    // Not awaited: the abort is re-sent until vm/migrate answers (see Migration#copy), and the
    // StopJob that runs this hook must not wait for a copy.
    async cancel(ctx) {
      const copy = copies.get(ctx.jobUuid);
      if (copy) return void copy.abort();
      // No copy of this attempt here: a resumed attempt met by a cancel (its predecessor died,
      // maybe mid-copy) gets this hook before its run. A copy the dead attempt started is aborted
      // from here; the run then settles the VM from what the agents say (a copy that had finished
      // makes the job Succeeded), or the takeover does.
      const vm = await d.vms.get(ctx.targetUuid);
      if (vm?.state === "Migrating" && vm.opRequest === migrationKey(ctx.jobUuid) && vm.migrateTargetUuid) {
        void stopOrphanCopy(d, vm).catch((e: unknown) => ctx.log.warn("could not abort the memory copy of a cancelled migration", { vmUuid: vm.uuid, error: errorMessage(e) }));
      }
    },
  };
}

/** How long a copy that nobody waits for any more is given to end once aborted. */
const ORPHAN_ABORT_WAIT_MS = 10_000;

/**
 * Makes sure no memory copy of the VM runs from its host any more, for a migration none of whose
 * attempts waits for it (its replica died; its job ended): aborts one that still copies and
 * waits (bounded) for the source agent to say it ended. Resolves once none runs; throws when the
 * agent cannot say, so the caller decides nothing yet.
 */
export async function stopOrphanCopy(d: Pick<MigrateJobDeps, "agents" | "hosts">, vm: VmRow): Promise<void> {
  const source = vm.hostUuid ? await d.hosts.agentOf(vm.hostUuid) : undefined;
  if (!source) return;
  const until = Date.now() + ORPHAN_ABORT_WAIT_MS;
  for (let aborted = false; ; ) {
    let state: string | undefined;
    try {
      state = (await d.agents.migrateStatus(source, vm.uuid)).state;
    } catch (e) {
      if (StratumError.from(e).code === Code.NOT_FOUND) return; // no migration of the VM from there, ever
      throw e;
    }
    if (state !== "copying") return;
    if (!aborted) aborted = (await d.agents.migrateAbort(source, vm.uuid, fenceOf(vm))).aborted;
    if (Date.now() > until) throw new StratumError(Code.UNAVAILABLE, `the memory copy of vm ${vm.uuid} from host ${source.uuid} is still running after its abort`, { reason: "MIGRATION_STILL_COPYING", resources: { vmUuid: vm.uuid } });
    await sleep(ABORT_RETRY_MS);
  }
}

/** Thrown when the agents cannot tell whether the VM moved: the VM stays Migrating for the takeover to settle (see VmReconciler). */
class OutcomeUnknown extends StratumError {}

class Migration {
  readonly key: string;
  readonly vmUuid: string;
  /** Whether the steps' `beforeCopy` ran (their rollback is then due if the VM does not move). */
  #stepsStarted = false;
  /** Whether vm/migrate may have been sent for this migration (by this attempt or a dead one). */
  #copyMayRun = false;

  constructor(
    private readonly d: MigrateJobDeps,
    private readonly ctx: JobContext<MigrateParams>,
    private readonly copies: Map<string, Copy>,
  ) {
    this.key = migrationKey(ctx.jobUuid);
    this.vmUuid = ctx.targetUuid;
  }

  async run(): Promise<MigrateResult> {
    const { ctx, d } = this;
    let vm = await this.#get();
    if (vm.opRequest === this.key && vm.state !== "Migrating") return this.#endedEarlier(vm);
    if (vm.state === "Migrating" && vm.opRequest === this.key) {
      try {
        vm = await this.#claim(vm);
      } catch (e) {
        // The takeover settled the VM while this attempt waited for the dead one's lease: what it
        // found (on the target: the copy won, also over a cancel) is this job's outcome.
        const now = await this.#get();
        if (now.opRequest === this.key && now.state !== "Migrating") return this.#endedEarlier(now);
        throw e;
      }
    } else {
      checkParams(ctx.params);
      // Checked again here: a job may be submitted to longjob directly, without MigrateVm, and the
      // VM may have changed since MigrateVm checked it (another migration queued before this one
      // may have taken it to this one's target: refused then, a job never succeeds without a copy).
      await checkMigration(d, { vmUuid: this.vmUuid, targetHostUuid: ctx.params.targetHostUuid, cancelBackupJobUuids: ctx.params.cancelBackupJobUuids ?? [] });
      await ctx.checkpoint();
      vm = await this.#begin(vm);
    }
    const source = vm.hostUuid!;
    try {
      const volumes = await d.peers.vmVolumes(this.vmUuid);
      const resumedReserved = vm.migrateTargetUuid !== null;
      this.#copyMayRun = resumedReserved;
      // The target first: a migration with nowhere to go does not cancel the backups it names, and
      // once they have exited only a checkpoint stands between their exit and the copy (the
      // reservation's commit is off that path). A failure or cancel from here releases it (#revert).
      if (!resumedReserved) vm = await this.#reserve(vm);
      const target = vm.migrateTargetUuid!;
      const [from, to] = await Promise.all([this.#agentOf(source), this.#agentOf(target)]);
      // A resumed job that had reserved may find its predecessor's copy done or still running: the
      // VM's fate is that copy's. Otherwise (it died before the copy) it cancels and waits again:
      // both are idempotent (the cancels' request ids), and the wait is never skipped.
      const earlier = resumedReserved ? await this.#earlierCopy(from, to) : "none";
      if (earlier === "none") {
        // The wait starts with the cancels, so it is already pending on the agents when the tasks
        // exit: the migration learns of the exit within a round trip, not after the cancel's.
        await this.#waitForBackups(volumes, this.#cancelBackups(ctx.params.cancelBackupJobUuids ?? []), source);
      }
      const step: MigrationStepContext = { jobUuid: ctx.jobUuid, vm, sourceHostUuid: source, targetHostUuid: target, signal: ctx.signal };
      this.#stepsStarted = true;
      for (const s of d.steps) await s.beforeCopy?.(step);
      // Right before the agent call: a cancel recorded by now never reaches vm/migrate.
      if (earlier === "none") await ctx.checkpoint();
      if (earlier !== "moved") await this.#copy(from, to, vm, volumes);
      ctx.progress({ stage: "switching", percent: 95 });
      const moved = await d.vms.endMigration(this.vmUuid, this.key, "switch", "");
      if (!moved) throw await this.#lost();
      vm = moved;
    } catch (e) {
      const after = await this.#revert(e, source);
      if (!after) throw e;
      // The copy won the race with the failure or the cancel (ZStack's rule: the work wins): done.
      vm = after;
    }
    // The VM runs on the target now, whatever a step after the switch says.
    for (const s of d.steps) await s.afterSwitch?.({ jobUuid: ctx.jobUuid, vm, sourceHostUuid: source, targetHostUuid: vm.hostUuid!, signal: ctx.signal });
    ctx.log.info("vm migrated", { vmUuid: this.vmUuid, sourceHostUuid: source, hostUuid: vm.hostUuid });
    return { vmUuid: this.vmUuid, sourceHostUuid: source, hostUuid: vm.hostUuid! };
  }

  async #get(): Promise<VmRow> {
    const vm = await this.d.vms.get(this.vmUuid);
    if (!vm) throw StratumError.notFound("vm", this.vmUuid);
    return vm;
  }

  /** Running → Migrating, recording this job on the VM: from here on other operations see VM_BUSY. */
  async #begin(vm: VmRow): Promise<VmRow> {
    const moved = await this.d.vms.transition(this.vmUuid, "Running", "Migrating", undefined, this.key);
    if (moved) return moved;
    const now = await this.#get();
    if (now.state !== "Running") throw notRunning(now);
    throw await this.#lost(vm.state);
  }

  /** An earlier attempt of this job ended the migration (its report was lost with its replica): its outcome. */
  #endedEarlier(vm: VmRow): MigrateResult {
    if (vm.lastError) {
      throw new StratumError(Code.FAILED_PRECONDITION, `migration of vm ${this.vmUuid} ended in an earlier attempt of job ${this.ctx.jobUuid}: ${vm.lastError}`, {
        reason: "MIGRATION_FAILED",
        resources: { vmUuid: this.vmUuid },
      });
    }
    return { vmUuid: this.vmUuid, hostUuid: vm.hostUuid ?? "" };
  }

  /**
   * A resumed job takes the VM its dead predecessor left Migrating: the claim stamps this replica
   * and moves the fence on, so the predecessor — if it was only paused — can neither write the VM
   * nor command its agent any more. Possible once its lease has lapsed (a lease is time, not an event).
   */
  async #claim(vm: VmRow): Promise<VmRow> {
    if (vm.lastActor === this.d.incarnation()) return vm;
    const until = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      const claimed = await this.d.vms.claim(this.vmUuid, "Migrating");
      if (claimed?.opRequest === this.key) return claimed;
      const now = await this.#get();
      if (now.state !== "Migrating" || now.opRequest !== this.key) throw await this.#lost("Migrating");
      if (Date.now() > until) {
        throw new StratumError(Code.UNAVAILABLE, `vm ${this.vmUuid} is still held by replica ${now.lastActor.split("@")[0]} (its lease has not lapsed)`, { reason: "VM_HELD", resources: { vmUuid: this.vmUuid } });
      }
      // A cancel does not end the claim: the VM must be settled either way (the dead attempt's
      // copy may have moved it, and then the job succeeded). Only a newer attempt stops it.
      if (this.ctx.signal.aborted && !(this.ctx.signal.reason instanceof JobCanceledError)) throw this.ctx.signal.reason;
      await sleep(CLAIM_RETRY_MS);
    }
  }

  /**
   * Asks longjob to cancel each named backup job; a cancel longjob refuses fails the migration,
   * naming the job and why. The jobs still stopping (Canceling), whose end the wait watches.
   */
  async #cancelBackups(jobUuids: readonly string[]): Promise<string[]> {
    if (jobUuids.length === 0) return [];
    this.ctx.progress({ stage: "cancelling-backups", percent: 1 });
    const outcomes = await Promise.allSettled(jobUuids.map((uuid) => this.d.peers.cancelJob(uuid, `${this.key}:cancel:${uuid}`)));
    const failed = jobUuids.flatMap((uuid, i) => {
      const o = outcomes[i]!;
      return o.status === "rejected" ? [{ uuid, error: StratumError.from(o.reason) }] : [];
    });
    if (failed.length > 0) throw this.#cancelFailed(failed);
    const stopping: string[] = [];
    for (const [i, o] of outcomes.entries()) {
      if (o.status !== "fulfilled") continue;
      this.ctx.log.info("backup job cancelled before migration", { backupJobUuid: jobUuids[i], state: JobState[o.value.state] });
      if (o.value.state === JobState.CANCELING) stopping.push(jobUuids[i]!);
    }
    return stopping;
  }

  #cancelFailed(failed: Array<{ uuid: string; error: { reason: string; message: string } }>): StratumError {
    const why = failed.map((f) => `backup job ${f.uuid}: ${f.error.reason ? `${f.error.reason}: ` : ""}${f.error.message}`).join("; ");
    return new StratumError(Code.FAILED_PRECONDITION, `cannot migrate vm ${this.vmUuid}: cancelling ${why}`, {
      reason: "BACKUP_CANCEL_FAILED",
      resources: { vmUuid: this.vmUuid, jobUuid: failed[0]!.uuid, jobUuids: failed.map((f) => f.uuid).join(",") },
    });
  }

  /**
   * Waits until no backup task runs on the VM's volumes — other kinds (a snapshot, a resize) do not
   * block a migration — bounded, and woken by the tasks' exits (storage long-polls the agents) or
   * by a cancel of this job (its signal). Meanwhile the cancelled backup jobs are followed to their
   * end: one whose cancel could not stop its task (it ends Failed, JOB_CANCEL_FAILED) fails the
   * migration at once, naming the job and why, instead of timing out on a task that will not exit.
   */
  async #waitForBackups(volumes: string[], cancels: Promise<string[]>, hostUuid: string): Promise<void> {
    const timeoutMs = this.ctx.params.backupWaitTimeoutMs || this.d.backupWaitMs;
    const startedAt = Date.now();
    const done = new AbortController();
    const signal = AbortSignal.any([this.ctx.signal, done.signal]);
    let cancelsSettled = false;
    const waitOnce = (ms: number) => (volumes.length === 0 ? Promise.resolve({ exited: true, running: [] }) : this.d.peers.waitVolumeTasks(volumes, [BLOCKING_KIND], ms, signal, hostUuid));
    const first = waitOnce(timeoutMs).then((r) => ({ ...r, beforeCancels: !cancelsSettled }));
    first.catch(() => {}); // a wait cut short by a failed cancel: that failure is the answer
    try {
      const stopping = await cancels;
      cancelsSettled = true;
      this.ctx.progress({ stage: "waiting-for-backups", percent: 5 });
      const cancelFailures = stopping.map(async (uuid) => {
        const job = await this.d.peers.finalJob(uuid, done.signal);
        if (job.state === JobState.FAILED && job.error?.reason === "JOB_CANCEL_FAILED") throw this.#cancelFailed([{ uuid, error: { reason: job.error.reason, message: job.error.message } }]);
      });
      // A watch that ends for another reason (its stream broke) only loses the early answer: the wait still bounds the step.
      const early = Promise.all(cancelFailures.map((p) => p.catch((e: unknown) => { if (e instanceof StratumError && e.reason === "BACKUP_CANCEL_FAILED") throw e; }))).then(() => new Promise<never>(() => {}));
      let r = await Promise.race([first, early]);
      // No backup ran before the cancels were recorded: asked again, so a backup job that was
      // about to start its task (and has been told to stop) is seen.
      if (r.exited && r.beforeCancels && stopping.length > 0) r = { ...(await Promise.race([waitOnce(Math.max(0, timeoutMs - (Date.now() - startedAt))), early])), beforeCancels: false };
      if (r.exited) return;
      const tasks = r.running.map((t) => `task ${t.taskUuid} (${t.kind} on volume ${t.volumeUuid}, ${t.state})`).join(", ");
      throw new StratumError(Code.DEADLINE_EXCEEDED, `cannot migrate vm ${this.vmUuid}: backup tasks still running on its volumes after ${timeoutMs} ms: ${tasks}`, {
        reason: "BACKUP_WAIT_TIMEOUT",
        resources: { vmUuid: this.vmUuid, taskUuids: r.running.map((t) => t.taskUuid).join(",") },
      });
    } finally {
      done.abort();
    }
  }

  /** Chooses the target (the named one, or by free capacity; never the source) and reserves its capacity. */
  async #reserve(vm: VmRow): Promise<VmRow> {
    const named = this.ctx.params.targetHostUuid || undefined;
    const reserved = await this.d.vms.reserveMigrationTarget(this.vmUuid, this.key, named);
    if (reserved) return reserved;
    const now = await this.#get();
    if (now.state !== "Migrating" || now.opRequest !== this.key || now.lastActor !== this.d.incarnation()) throw await this.#lost("Migrating");
    if (named) {
      const host = await this.d.hosts.get(named);
      throw targetProblem(vm, named, host) ?? new StratumError(Code.ABORTED, `host ${named} changed while vm ${this.vmUuid} was placed on it; retry`, { reason: "HOST_CHANGED", resources: { vmUuid: this.vmUuid, hostUuid: named } });
    }
    throw new StratumError(Code.RESOURCE_EXHAUSTED, `cannot migrate vm ${this.vmUuid}: no connected, enabled host other than ${vm.hostUuid} has ${vm.cpu} CPU and ${vm.memory} bytes of memory free`, {
      reason: "NO_HOST_CAPACITY",
      resources: { vmUuid: this.vmUuid },
    });
  }

  /**
   * The memory copy on the source's agent, its progress read while it runs. A cancel meanwhile
   * aborts it on the agent (the job's cancel hook). When the call fails, the agents say where the
   * VM runs: an error after the VM moved (a reset, a resumed job whose first copy ended long ago)
   * is a migration done.
   */
  async #copy(from: AgentHost, to: AgentHost, vm: VmRow, volumes: string[]): Promise<void> {
    const { ctx, d } = this;
    const fence = fenceOf(vm);
    let settled = false;
    this.copies.set(ctx.jobUuid, {
      // The abort may overtake vm/migrate on its way to the agent (nothing to abort yet): sent
      // again until the call has its answer.
      abort: async () => {
        while (!settled) {
          try {
            if ((await d.agents.migrateAbort(from, this.vmUuid, fence)).aborted) return;
          } catch (e) {
            ctx.log.warn("migration abort failed; retrying", { vmUuid: this.vmUuid, error: errorMessage(e) });
          }
          await sleep(ABORT_RETRY_MS);
        }
      },
    });
    try {
      if (ctx.signal.aborted) throw new JobCanceledError(ctx.jobUuid);
      ctx.progress({ stage: "copying-memory", percent: 10 });
      this.#copyMayRun = true;
      const call = d.agents.migrate(from, to, volumes, this.vmUuid, `migrate-${ctx.jobUuid}`, fence);
      const answered = new AbortController();
      const progress = this.#followProgress(from, answered.signal);
      try {
        await Promise.race([call, superseded(ctx.signal)]);
      } catch (e) {
        if (e instanceof JobSupersededError) {
          // Handed over (this replica stops) or run by a newer attempt: that one joins the copy by
          // its task id and settles the VM; this one stops waiting for it.
          call.catch(() => {});
          throw e;
        }
        if (isFenced(e)) throw await this.#lost("Migrating");
        const where = await this.#locate(from, to, e);
        if (where === "target") {
          ctx.log.warn("vm/migrate failed but the VM runs on the target: the migration is done", { vmUuid: this.vmUuid, error: errorMessage(e) });
          return;
        }
        if (ctx.signal.aborted) throw new JobCanceledError(ctx.jobUuid);
        throw new StratumError(StratumError.from(e).code, `migration of vm ${this.vmUuid} from host ${from.uuid} to host ${to.uuid} failed on the agent: ${errorMessage(e)}`, {
          reason: "MIGRATION_FAILED",
          resources: { vmUuid: this.vmUuid, hostUuid: from.uuid, targetHostUuid: to.uuid },
          cause: e,
        });
      } finally {
        settled = true;
        answered.abort();
        await progress;
      }
    } finally {
      settled = true;
      this.copies.delete(ctx.jobUuid);
    }
  }

  /** Reports the copy's percent (from `vm/migrate/status`) until `answered` aborts (vm/migrate has its answer). */
  async #followProgress(from: AgentHost, answered: AbortSignal): Promise<void> {
    while (!answered.aborted) {
      try {
        await sleep(PROGRESS_INTERVAL_MS, answered);
        const s = await this.d.agents.migrateStatus(from, this.vmUuid, answered);
        if (s.state === "copying") {
          this.ctx.progress({ stage: "copying-memory", percent: 10 + Math.floor(s.percent * 0.85), bytesDone: s.memoryBytesDone, bytesTotal: s.memoryBytesTotal });
        }
      } catch {
        // Answered meanwhile, or the agent knows no copy of the VM yet (it has not started): nothing to show.
      }
    }
  }

  /** Where the VM runs after a failed `vm/migrate`, as the agents say; OutcomeUnknown when they cannot tell. */
  async #locate(from: AgentHost, to: AgentHost, failure: unknown): Promise<"source" | "target"> {
    try {
      const [onTarget, onSource] = await Promise.all([this.d.agents.vms(to), this.d.agents.vms(from)]);
      if (onTarget.vms.some((v) => v.vmUuid === this.vmUuid && v.state === "running")) return "target";
      if (onSource.vms.some((v) => v.vmUuid === this.vmUuid)) return "source";
    } catch (e) {
      this.ctx.log.warn("cannot ask the agents where the vm runs after a failed migration", { vmUuid: this.vmUuid, error: errorMessage(e) });
    }
    throw new OutcomeUnknown(Code.UNAVAILABLE, `migration of vm ${this.vmUuid} from host ${from.uuid} to host ${to.uuid} failed (${errorMessage(failure)}) and the agents cannot say where the VM runs; it stays Migrating until its owner learns it`, {
      reason: "MIGRATION_OUTCOME_UNKNOWN",
      resources: { vmUuid: this.vmUuid, hostUuid: from.uuid, targetHostUuid: to.uuid },
      cause: failure,
    });
  }

  /**
   * The migration did not happen: the VM is Running on its source again and the target's
   * reservation released — unless another attempt or replica owns the VM now (it settles it),
   * or nobody can tell where the VM runs.
   */
  async #revert(e: unknown, source: string): Promise<VmRow | undefined> {
    const { ctx, d } = this;
    if (e instanceof JobSupersededError || e instanceof OutcomeUnknown) return;
    if (e instanceof StratumError && (e.reason === "VM_TAKEN_OVER" || e.reason === "VM_CONCURRENT_UPDATE" || e.reason === "LEASE_LOST")) return;
    const cancelled = ctx.signal.aborted || e instanceof JobCanceledError;
    if (this.#copyMayRun) {
      // A copy may run or have ended without this attempt's knowing (a resumed job cancelled at
      // its checkpoint; a call that failed): it is over before the VM is recorded anywhere.
      const vm = await d.vms.get(this.vmUuid);
      if (vm?.state !== "Migrating" || vm.opRequest !== this.key || !vm.migrateTargetUuid) return;
      try {
        await stopOrphanCopy(d, vm);
        const target = await this.#agentOf(vm.migrateTargetUuid);
        if ((await d.agents.vms(target)).vms.some((v) => v.vmUuid === this.vmUuid && v.state === "running")) {
          const moved = await d.vms.endMigration(this.vmUuid, this.key, "switch", "");
          if (moved) ctx.log.warn("the memory copy had succeeded: the vm runs on the target", { vmUuid: this.vmUuid, hostUuid: moved.hostUuid, error: errorMessage(e) });
          return moved;
        }
      } catch (err) {
        // Nobody can say where the VM runs: it stays Migrating, for the takeover once this job has ended.
        ctx.log.warn("cannot tell whether the vm moved; left Migrating for the takeover", { vmUuid: this.vmUuid, error: errorMessage(err) });
        return;
      }
    }
    if (this.#stepsStarted) {
      const vm = await d.vms.get(this.vmUuid);
      for (const s of [...d.steps].reverse()) {
        await s.rollback?.({ jobUuid: ctx.jobUuid, vm: vm!, sourceHostUuid: source, targetHostUuid: vm?.migrateTargetUuid ?? "", signal: AbortSignal.timeout(30_000) }).catch((err: unknown) =>
          ctx.log.warn("migration step rollback failed", { step: s.name, vmUuid: this.vmUuid, error: errorMessage(err) }),
        );
      }
    }
    const why = cancelled ? `migration job ${ctx.jobUuid} was cancelled; the VM stays on host ${source}` : errorMessage(e);
    const back = await d.vms.endMigration(this.vmUuid, this.key, "revert", why).catch((err: unknown) => {
      ctx.log.warn("could not put the vm back on its source after a failed migration", { vmUuid: this.vmUuid, error: errorMessage(err) });
      return undefined;
    });
    if (!back) ctx.log.warn("migration rollback matched no row", { vmUuid: this.vmUuid, expectedState: "Migrating" });
    else ctx.log.info(cancelled ? "migration cancelled; the vm stays on its source" : "migration failed; the vm stays on its source", { vmUuid: this.vmUuid, hostUuid: source, error: errorMessage(e) });
  }

  /** What became of the copy a dead attempt may have started: done (the VM runs on the target), still copying, or none. */
  async #earlierCopy(from: AgentHost, to: AgentHost): Promise<"moved" | "copying" | "none"> {
    try {
      if ((await this.d.agents.migrateStatus(from, this.vmUuid)).state === "copying") return "copying";
    } catch (e) {
      if (StratumError.from(e).code !== Code.NOT_FOUND) throw e;
    }
    return (await this.d.agents.vms(to)).vms.some((v) => v.vmUuid === this.vmUuid && v.state === "running") ? "moved" : "none";
  }

  async #agentOf(hostUuid: string): Promise<AgentHost> {
    const host = await this.d.hosts.agentOf(hostUuid);
    if (!host) throw StratumError.notFound("host", hostUuid);
    return host;
  }

  /** The VM moved under the migration: taken over by another replica (UNAVAILABLE, it settles it) or changed concurrently. */
  async #lost(expected = "Migrating"): Promise<StratumError> {
    const now = await this.d.vms.get(this.vmUuid).catch(() => undefined);
    if (now && now.lastActor !== this.d.incarnation()) {
      return new StratumError(Code.UNAVAILABLE, `vm ${this.vmUuid} was taken over by replica ${now.lastActor.split("@")[0]} during its migration`, { reason: "VM_TAKEN_OVER", resources: { vmUuid: this.vmUuid } });
    }
    return new StratumError(Code.ABORTED, `vm ${this.vmUuid} changed during its migration (expected ${expected}${now ? `, it is ${now.state}` : ""})`, {
      reason: "VM_CONCURRENT_UPDATE",
      resources: { vmUuid: this.vmUuid },
    });
  }
}

/** A job submitted without MigrateVm has had only longjob's checks (kinds, bounds): its uuids are checked here. */
function checkParams(p: MigrateParams): void {
  const v = new Violations();
  if (p.targetHostUuid) v.check(UUID_PATTERN.test(p.targetHostUuid), "targetHostUuid", "must be a host UUID");
  (p.cancelBackupJobUuids ?? []).forEach((uuid, i) => v.check(UUID_PATTERN.test(uuid), fieldPath("cancelBackupJobUuids", i), "must be a job UUID"));
  v.throwIfAny();
}

/** Rejects with the signal's reason once it aborts for a newer attempt (never for a cancel: a cancel aborts the copy on the agent). */
function superseded(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const check = () => {
      if (signal.reason instanceof JobSupersededError) reject(signal.reason);
    };
    if (signal.aborted) check();
    else signal.addEventListener("abort", check, { once: true });
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
