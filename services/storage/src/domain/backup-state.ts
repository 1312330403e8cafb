import type { BackupStateValue } from "../store/schema";

/**
 * The backup state machine, in one place (backup.proto's BackupState repeats it for clients).
 * Every write of a backup's state is a conditional update from the states listed here (see
 * `BackupStore.transition`), so no race — a job finishing while a delete arrives, two restores —
 * can take a backup along an edge that is not.
 */
export const BACKUP_TRANSITIONS: Readonly<Record<BackupStateValue, readonly BackupStateValue[]>> = {
  // Its job succeeded; failed (error says why); was cancelled (nothing of it counts as available).
  Creating: ["Available", "Error", "Canceled"],
  // A restore job writes it back to a volume; it is deleted.
  Available: ["Restoring", "Deleting"],
  // The restore ended (succeeded, failed or cancelled: the backup itself is intact).
  Restoring: ["Available"],
  Error: ["Deleting"],
  Canceled: ["Deleting"],
  Deleting: ["Deleted"],
  Deleted: [],
};

/** The states `to` may be reached from. */
export function backupStatesLeadingTo(to: BackupStateValue): BackupStateValue[] {
  return (Object.keys(BACKUP_TRANSITIONS) as BackupStateValue[]).filter((s) => BACKUP_TRANSITIONS[s].includes(to));
}

/** States in which a backup's bytes are on its storage for good (it can be chained from and restored). */
export const COMPLETE_STATES: readonly BackupStateValue[] = ["Available", "Restoring"];

/** States in which a job works on the backup: it cannot be deleted meanwhile. */
export const BUSY_STATES: readonly BackupStateValue[] = ["Creating", "Restoring"];
