/** The event every VM state change writes (`stratum.compute.vm_state_changed.<vmUuid>`); see VmStateChanged. */
export const VM_STATE_CHANGED = "vm_state_changed";

/**
 * The JSON of a `vm_state_changed` event (domain/events.ts VmStateChanged) built in SQL from the
 * changed row `alias`, with `from` the state before (SQL). It carries the whole row too (`vm`),
 * so a WatchVm reads Postgres only when it starts and after a quiet spell, not per change.
 */
export function vmChangePayload(alias: string, from: string): string {
  return `jsonb_build_object('vmUuid', ${alias}.uuid, 'hostUuid', ${alias}.host_uuid, 'from', ${from}, 'to', ${alias}.state, 'lastError', ${alias}.last_error, 'vm', to_jsonb(${alias}))`;
}

/** The event's subject key (its last token) from the changed row `alias`: the VM's UUID, so one VM's watchers subscribe to its events alone. */
export function vmEventKey(alias: string): string {
  return `${alias}.uuid::text`;
}
