import { Code, fieldPath, StratumError, Violations } from "@stratum/core";
import type { MigrationPeers } from "../clients/peers";
import type { HostStore } from "../store/host-store";
import type { HostRow, VmRow } from "../store/schema";
import type { VmStore } from "../store/vm-store";

/** The job type of backups, whose jobs a migration may name to cancel first. */
export const BACKUP_JOB_TYPE = "storage.backup";

/** A migration as asked: by MigrateVm, or by a `compute.migrate` job submitted directly. */
export interface MigrationRequest {
  vmUuid: string;
  /** Empty or absent: the allocator chooses. */
  targetHostUuid?: string | undefined;
  cancelBackupJobUuids: readonly string[];
}

export interface MigrationCheckDeps {
  vms: VmStore;
  hosts: HostStore;
  peers: MigrationPeers;
}

/**
 * Checks a migration before anything changes, and answers the first thing wrong: the VM is
 * Running (FAILED_PRECONDITION naming its state), the named target exists, is Connected and
 * Enabled, has room and is not the VM's own host, and every backup job to cancel is a
 * `storage.backup` job of one of the VM's volumes (INVALID_ARGUMENT naming each one that is not,
 * and why). Returns the VM as read.
 */
export async function checkMigration(d: MigrationCheckDeps, req: MigrationRequest): Promise<VmRow> {
  const vm = await d.vms.get(req.vmUuid);
  if (!vm) throw StratumError.notFound("vm", req.vmUuid);
  if (vm.state !== "Running") throw notRunning(vm);
  if (req.targetHostUuid) await checkTarget(d, vm, req.targetHostUuid);
  if (req.cancelBackupJobUuids.length > 0) await checkBackupJobs(d, vm, req.cancelBackupJobUuids);
  return vm;
}

/** FAILED_PRECONDITION: only a Running VM migrates (a Migrating one is busy with another migration). */
export function notRunning(vm: VmRow): StratumError {
  const busy = vm.state === "Migrating";
  return new StratumError(
    Code.FAILED_PRECONDITION,
    busy
      ? `cannot migrate vm ${vm.uuid}: it is Migrating, another migration is in progress (watch the VM and retry once it has settled)`
      : `cannot migrate vm ${vm.uuid}: it is ${vm.state} (migrate needs Running)`,
    { reason: busy ? "VM_BUSY" : "VM_STATE_INVALID", resources: { vmUuid: vm.uuid, state: vm.state } },
  );
}

async function checkTarget(d: MigrationCheckDeps, vm: VmRow, targetUuid: string): Promise<void> {
  if (targetUuid === vm.hostUuid) {
    throw StratumError.invalidArgument([{ field: "target_host_uuid", description: `host ${targetUuid} is the host vm ${vm.uuid} runs on: name another one, or none` }], { vmUuid: vm.uuid });
  }
  const host = await d.hosts.get(targetUuid);
  if (!host) throw StratumError.notFound("host", targetUuid);
  const problem = targetProblem(vm, targetUuid, host);
  if (problem) throw problem;
}

/** Why `host` cannot take the migrating `vm` now (FAILED_PRECONDITION `HOST_UNAVAILABLE`), or undefined when it can. */
export function targetProblem(vm: VmRow, targetUuid: string, host: HostRow | undefined): StratumError | undefined {
  if (!host) return StratumError.notFound("host", targetUuid);
  const why =
    host.uuid === vm.hostUuid ? "it is the VM's own host"
    : host.status !== "Connected" ? `it is ${host.status}`
    : host.state !== "Enabled" ? `it is ${host.state}`
    : host.cpuCapacity - host.cpuUsed < vm.cpu || host.memoryCapacity - host.memoryUsed < vm.memory
      ? `it has ${host.cpuCapacity - host.cpuUsed} CPU and ${host.memoryCapacity - host.memoryUsed} bytes free, the VM needs ${vm.cpu} CPU and ${vm.memory} bytes`
      : undefined;
  if (!why) return undefined;
  return new StratumError(Code.FAILED_PRECONDITION, `cannot migrate vm ${vm.uuid} to host ${targetUuid}: ${why}`, {
    reason: "HOST_UNAVAILABLE",
    resources: { vmUuid: vm.uuid, hostUuid: targetUuid },
  });
}

async function checkBackupJobs(d: MigrationCheckDeps, vm: VmRow, jobUuids: readonly string[]): Promise<void> {
  const [volumes, jobs] = await Promise.all([d.peers.vmVolumes(vm.uuid), Promise.all(jobUuids.map((uuid) => d.peers.job(uuid)))]);
  const mine = new Set(volumes);
  const v = new Violations();
  jobUuids.forEach((uuid, i) => {
    const field = fieldPath("cancel_backup_job_uuids", i);
    const job = jobs[i];
    if (!job) v.add(field, `job ${uuid} not found`);
    else if (job.type !== BACKUP_JOB_TYPE) v.add(field, `job ${uuid} is a ${job.type} job, not a backup (${BACKUP_JOB_TYPE})`);
    else if (!mine.has(job.target?.uuid ?? "")) {
      v.add(field, `job ${uuid} is a backup of volume ${job.target?.uuid ?? "(none)"}, which is not attached to vm ${vm.uuid}${volumes.length ? ` (its volumes: ${volumes.join(", ")})` : " (it has no volumes)"}`);
    }
  });
  v.throwIfAny({ vmUuid: vm.uuid });
}
