/** The event every VM state change writes (`stratum.compute.vm_state_changed.<vmUuid>`); see VmStateChanged. */
export const VM_STATE_CHANGED = "vm_state_changed";

/**
 * The JSON of a `vm_state_changed` event (domain/events.ts VmStateChanged) built in SQL from the
 * changed row `alias`, with `from` the state before (SQL). It carries the whole row too (`vm`),
 * and its NICs (`nics`, as committed before the statement; absent for a VM without any, which
 * costs no lookup), so a WatchVm reads Postgres only when it starts and after a quiet spell, not
 * per change.
 */
export function vmChangePayload(alias: string, from: string): string {
  const nics = `CASE WHEN ${alias}.nic_count > 0 THEN (SELECT jsonb_agg(to_jsonb(n) ORDER BY n.device_index) FROM compute.vm_nics AS n WHERE n.vm_uuid = ${alias}.uuid) END`;
  return `jsonb_build_object('vmUuid', ${alias}.uuid, 'hostUuid', ${alias}.host_uuid, 'from', ${from}, 'to', ${alias}.state, 'lastError', ${alias}.last_error, 'vm', to_jsonb(${alias}), 'nics', ${nics})`;
}

/** The event's subject key (its last token) from the changed row `alias`: the VM's UUID, so one VM's watchers subscribe to its events alone. */
export function vmEventKey(alias: string): string {
  return `${alias}.uuid::text`;
}
