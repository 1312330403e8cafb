import type { EventBus } from "@stratum/bus";
import type { Logger } from "@stratum/core";
import type { HostStatusValue, VmStateValue } from "../store/schema";

/** `stratum.compute.vm_state_changed`: one per VM state transition. */
export interface VmStateChanged {
  vmUuid: string;
  hostUuid: string | null;
  from: VmStateValue | null;
  to: VmStateValue;
  lastError: string;
}

/** `stratum.compute.host_status_changed`: a host connected or disconnected. */
export interface HostStatusChanged {
  hostUuid: string;
  from: HostStatusValue | null;
  to: HostStatusValue;
  lastError: string;
}

/**
 * Publishes compute's domain events. The event id is derived from the transition (resource,
 * target state, row update time), so a re-published event is stored once by JetStream.
 * Events are published after the state change is committed in Postgres, the source of truth,
 * without waiting for JetStream's acknowledgement (see EventBus.publishUnconfirmed): a VM
 * operation must not fail, nor wait a round trip per transition, for a notification.
 */
export class ComputeEvents {
  constructor(
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  vmStateChanged(change: VmStateChanged, at: Date): void {
    // from, to and the update time in ms: two transitions of one VM share none of these in practice.
    this.#publish("vm_state_changed", change, `vm-${change.vmUuid}-${change.from ?? "new"}-${change.to}-${at.getTime()}`);
  }

  hostStatusChanged(change: HostStatusChanged): void {
    this.#publish("host_status_changed", change, `host-${change.hostUuid}-${change.to}-${Date.now()}`);
  }

  #publish(event: string, data: object, id: string): void {
    try {
      this.events.publishUnconfirmed("compute", event, data, { id });
    } catch (e) {
      // Only a closed connection throws here (shutdown); the change itself is committed.
      this.log.warn("event publish failed", { event, eventId: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
