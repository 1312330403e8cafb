import type { InstanceStateName, OperationKindName } from "../store/schema";

/**
 * An instance's life, in one place:
 *
 *     Provisioning ─ok→ Ready ─update→ Updating ─ok|failed→ Ready
 *          │              │
 *        failed       deprovision
 *          ↓              ↓
 *        Failed ─deprovision→ Deprovisioning ─ok→ Deleted (the key is free again)
 *                                  └─failed→ Failed (deprovision again)
 *
 * A transient state belongs to exactly one operation (the instance's `operation`, a long job);
 * only that job's end moves the instance on ({@link settledState}). A failed update leaves the
 * instance Ready with its old parameters and the error; a failed provision has released what it
 * made, but the instance stays (Failed) until it is deprovisioned, as OSB's orphan mitigation
 * expects.
 */
export const TRANSIENT_OF: Readonly<Record<OperationKindName, InstanceStateName>> = {
  provision: "Provisioning",
  update: "Updating",
  deprovision: "Deprovisioning",
};

/** The states an operation may start from. */
export const STARTS_FROM: Readonly<Record<"update" | "deprovision", readonly InstanceStateName[]>> = {
  update: ["Ready"],
  deprovision: ["Ready", "Failed"],
};

export function isTransient(state: InstanceStateName): boolean {
  return state === "Provisioning" || state === "Updating" || state === "Deprovisioning";
}

/** Where an operation's end takes the instance. */
export function settledState(kind: OperationKindName, succeeded: boolean): InstanceStateName {
  if (kind === "provision") return succeeded ? "Ready" : "Failed";
  if (kind === "update") return "Ready";
  return succeeded ? "Deleted" : "Failed";
}
