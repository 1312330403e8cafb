/**
 * The payloads of compute's domain events. Both are written into the outbox in the statement that
 * makes the change they report (store/vm-events.ts, HostStore.setStatus) and published by the
 * kit's relay, so none is lost to a crash or a NATS outage.
 */
import type { HostStatusValue, VmStateValue } from "../store/schema";

/**
 * `stratum.compute.vm_state_changed.<vmUuid>`: one per VM state transition (and per change of
 * one of its NICs' address: `from` = `to` then), on the VM's own subject (subscribe `compute.vm_state_changed.>` for every VM's).
 */
export interface VmStateChanged {
  vmUuid: string;
  hostUuid: string | null;
  from: VmStateValue | null;
  to: VmStateValue;
  lastError: string;
  /** The changed `compute.vms` row as JSON (SQL column names): what WatchVm streams without a read. */
  vm: Record<string, unknown>;
  /** Its `compute.vm_nics` rows as JSON, in device order; null for a VM without NICs. */
  nics: Record<string, unknown>[] | null;
}

/** `stratum.compute.host_status_changed`: a host connected or disconnected. */
export interface HostStatusChanged {
  hostUuid: string;
  from: HostStatusValue | null;
  to: HostStatusValue;
  lastError: string;
}
