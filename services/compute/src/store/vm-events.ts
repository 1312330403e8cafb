/** The event every VM state change writes (`stratum.compute.vm_state_changed`); see VmStateChanged. */
export const VM_STATE_CHANGED = "vm_state_changed";

/**
 * The JSON of a `vm_state_changed` event (domain/events.ts VmStateChanged) built in SQL from the
 * changed row `alias`, with `from` the state before (SQL).
 */
export function vmChangePayload(alias: string, from: string): string {
  return `jsonb_build_object('vmUuid', ${alias}.uuid, 'hostUuid', ${alias}.host_uuid, 'from', ${from}, 'to', ${alias}.state, 'lastError', ${alias}.last_error)`;
}
