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
 * The steps every migration runs. Empty for now: the network service fills this (issue: EIPs and
 * NICs follow the VM) with calls to it, so compute never reads network's tables.
 */
export const MIGRATION_STEPS: readonly MigrationStep[] = [];
