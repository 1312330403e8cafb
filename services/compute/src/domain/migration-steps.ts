import { errorMessage, type Logger } from "@stratum/core";
import type { VmRow } from "../store/schema";

/** What a migration step is told: the VM, where it runs and where it goes. */
export interface MigrationStepContext {
  readonly jobUuid: string;
  readonly vm: VmRow;
  readonly sourceHostUuid: string;
  readonly targetHostUuid: string;
  readonly signal: AbortSignal;
}

/**
 * ZStack's migrate extension points as calls: work of another service that must follow the VM.
 * `beforeCopy` runs once the target is chosen and reserved, right before the agent copies the
 * memory (e.g. plumb the VM's NICs on the target); `afterSwitch` once the VM is recorded on the
 * target (e.g. move its EIPs). Both must be idempotent by `jobUuid`: a resumed migration runs them
 * again. `rollback` undoes `beforeCopy` when the migration does not happen.
 */
export interface MigrationStep {
  readonly name: string;
  beforeCopy?(ctx: MigrationStepContext): Promise<void>;
  afterSwitch?(ctx: MigrationStepContext): Promise<void>;
  rollback?(ctx: MigrationStepContext): Promise<void>;
}

/**
 * `afterSwitch`: the VM's elastic IPs follow it to the target — network is asked (SyncVmEips,
 * which reads where the VM runs now from compute) to release their rules on the source and apply
 * them on the target. The switch itself already wrote the VM's EIP sync mark, in its own
 * statement (the `vms_eip_sync` trigger: its EIP host changed), so a crash right after the
 * switch loses nothing; this step is the extension point made explicit: it asks again (an
 * idempotent mark) and has the mark drained now. A VM without NICs has no EIPs: nothing is written.
 * A failure to mark is only logged: the switch's mark stands, and the VM runs on the target
 * whatever a step after the switch says.
 */
export function eipSyncStep(syncs: { request(vmUuids: readonly string[]): Promise<void> }, log: Logger): MigrationStep {
  return {
    name: "eip-sync",
    async afterSwitch(ctx) {
      if (ctx.vm.nicCount === 0) return;
      await syncs.request([ctx.vm.uuid]).catch((e: unknown) =>
        log.warn("could not mark the migrated vm's EIP sync again; the switch's own mark stands", { vmUuid: ctx.vm.uuid, jobUuid: ctx.jobUuid, error: errorMessage(e) }),
      );
    },
  };
}

/**
 * The steps every migration runs: calls to other services, so compute never reads their tables.
 * `eipSyncs` sends the VMs' EIP syncs to network (a MarkDrainer over `eip_syncs`).
 */
export function migrationSteps(d: { eipSyncs: { request(vmUuids: readonly string[]): Promise<void> }; log: Logger }): readonly MigrationStep[] {
  return [eipSyncStep(d.eipSyncs, d.log)];
}
