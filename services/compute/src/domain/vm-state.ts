import { Code, StratumError } from "@stratum/core";
import type { VmStateValue } from "../store/schema";
import { TRANSIENT_STATES } from "../store/vm-store";

export type VmState = VmStateValue;

/** The operations that move a VM between stable states, each through one transient state. */
export type VmOperation = "start" | "stop" | "reboot" | "destroy";

export interface Transition {
  /** Stable states the operation may start from. */
  readonly from: readonly VmState[];
  /** Transient state while the agent works. */
  readonly via: VmState;
  /** State on success. On failure the VM returns to the state it came from (see each flow). */
  readonly to: VmState;
}

/**
 * The VM state machine. A create goes Created → Starting → Running (or Error); every other change
 * is one of these operations. Keeping it a table makes the legal moves reviewable at a glance and
 * lets every refusal name the current state.
 */
export const TRANSITIONS: Readonly<Record<VmOperation, Transition>> = {
  start: { from: ["Stopped"], via: "Starting", to: "Running" },
  stop: { from: ["Running"], via: "Stopping", to: "Stopped" },
  reboot: { from: ["Running"], via: "Rebooting", to: "Running" },
  destroy: { from: ["Created", "Running", "Stopped", "Error"], via: "Destroying", to: "Destroyed" },
};

/** Throws FAILED_PRECONDITION `VM_STATE_INVALID` naming the current state when `op` is not legal from it. */
export function assertCanRun(op: VmOperation, vmUuid: string, current: VmState): Transition {
  const t = TRANSITIONS[op];
  if (!t.from.includes(current)) throw stateInvalid(op, vmUuid, current);
  return t;
}

/** FAILED_PRECONDITION `VM_STATE_INVALID`: `op` cannot start from the VM's state, whatever happens next. */
export function stateInvalid(op: VmOperation, vmUuid: string, current: VmState): StratumError {
  const t = TRANSITIONS[op];
  return new StratumError(Code.FAILED_PRECONDITION, `cannot ${op} vm ${vmUuid}: it is ${current} (${op} needs ${t.from.join(" or ")})`, {
    reason: "VM_STATE_INVALID",
    resources: { vmUuid, state: current },
  });
}

/**
 * FAILED_PRECONDITION `VM_BUSY`: another operation is working on the VM (it is in that
 * operation's transient state). Nova's 409 on a set task_state: one operation at a time, and
 * the caller watches the VM and retries once it has settled, instead of queueing blind behind it.
 */
export function vmBusy(op: VmOperation, vmUuid: string, current: VmState): StratumError {
  return new StratumError(Code.FAILED_PRECONDITION, `cannot ${op} vm ${vmUuid}: it is ${current}, another operation is in progress (watch the VM and retry once it has settled)`, {
    reason: "VM_BUSY",
    resources: { vmUuid, state: current },
  });
}

/** States a VM's NIC may change its address in: a stable one in which it keeps its NICs. */
export const NIC_IP_CHANGE_STATES: readonly VmState[] = ["Running", "Stopped"];

/**
 * Throws FAILED_PRECONDITION unless a NIC of the VM may change its address now: `VM_BUSY` while an
 * operation holds it (a transient state), `VM_STATE_INVALID` naming the state otherwise.
 */
export function assertNicIpChangeable(vmUuid: string, current: VmState): void {
  if (NIC_IP_CHANGE_STATES.includes(current)) return;
  const transient = TRANSIENT_STATES.includes(current);
  throw new StratumError(
    Code.FAILED_PRECONDITION,
    transient
      ? `cannot change a NIC address of vm ${vmUuid}: it is ${current}, another operation is in progress (watch the VM and retry once it has settled)`
      : `cannot change a NIC address of vm ${vmUuid}: it is ${current} (it needs ${NIC_IP_CHANGE_STATES.join(" or ")})`,
    { reason: transient ? "VM_BUSY" : "VM_STATE_INVALID", resources: { vmUuid, state: current } },
  );
}
