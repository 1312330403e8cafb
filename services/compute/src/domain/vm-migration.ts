import { createHash, randomUUID } from "node:crypto";
import type { JsonObject } from "@bufbuild/protobuf";
import { uuidForRequest } from "@stratum/validation";
import type { VmRow } from "../store/schema";
import { checkMigration, type MigrationCheckDeps, type MigrationRequest } from "./migration-check";
import { MIGRATE_JOB_TYPE } from "./migrate-job";

export interface MigrateVmSpec extends MigrationRequest {
  /** 0: the default (`STRATUM_MIGRATE_BACKUP_WAIT_MS`). */
  backupWaitTimeoutMs: number;
  /** The caller's request id (AIP-155); empty: none. */
  clientRequestId: string;
}

/**
 * The longjob request id of the migration a MigrateVm request submits: derived from the caller's
 * (and the VM), so a retry — on any replica, after any crash — submits the same job and gets it
 * back, and never collides with the caller's own request ids on longjob.
 */
export function migrationRequestId(vmUuid: string, clientRequestId: string): string {
  return `compute.migrate:${createHash("sha256").update(`${vmUuid}\n${clientRequestId}`).digest("hex")}`;
}

/**
 * MigrateVm: checks the migration before anything changes (see `checkMigration`), then submits
 * the `compute.migrate` job and answers at once with the VM as it is and the job. The job does
 * the rest (see `migrate-job.ts`).
 */
export async function submitMigration(d: MigrationCheckDeps, spec: MigrateVmSpec): Promise<{ vm: VmRow; jobUuid: string }> {
  const vm = await checkMigration(d, spec);
  const requestId = spec.clientRequestId ? migrationRequestId(spec.vmUuid, spec.clientRequestId) : "";
  const parameters: JsonObject = {
    ...(spec.targetHostUuid ? { targetHostUuid: spec.targetHostUuid } : {}),
    ...(spec.cancelBackupJobUuids.length > 0 ? { cancelBackupJobUuids: [...spec.cancelBackupJobUuids] } : {}),
    ...(spec.backupWaitTimeoutMs > 0 ? { backupWaitTimeoutMs: spec.backupWaitTimeoutMs } : {}),
  };
  const job = await d.peers.submitJob({
    uuid: requestId ? uuidForRequest("job", requestId) : randomUUID(),
    type: MIGRATE_JOB_TYPE,
    targetUuid: spec.vmUuid,
    parameters,
    clientRequestId: requestId,
  });
  return { vm, jobUuid: job.uuid };
}
