import type { VolumeStateValue } from "../store/schema";

/**
 * The volume state machine, in one place (volume.proto's VolumeState repeats it for clients).
 * Every write of a volume's state is a conditional update from a state listed here whose row count
 * is checked, so no race can take a volume along an edge that is not. A resize keeps the state
 * (Available or InUse). Transient states (Creating, Resizing) come with the agent's volume tasks.
 */
export const VOLUME_TRANSITIONS: Readonly<Record<VolumeStateValue, readonly VolumeStateValue[]>> = {
  // Attached to a VM; deleted (its bytes given back); a backup is restored into it.
  Available: ["InUse", "Deleted", "Restoring"],
  // Detached from its VM.
  InUse: ["Available"],
  // The restore ended (done, failed or cancelled: the agent swaps the copy in only at the end).
  Restoring: ["Available"],
  Deleted: [],
};

/** The states `to` may be reached from. */
export function statesLeadingTo(to: VolumeStateValue): VolumeStateValue[] {
  return (Object.keys(VOLUME_TRANSITIONS) as VolumeStateValue[]).filter((s) => VOLUME_TRANSITIONS[s].includes(to));
}

/** The states in which a volume may be resized. */
export const RESIZABLE_STATES: readonly VolumeStateValue[] = ["Available", "InUse"];
