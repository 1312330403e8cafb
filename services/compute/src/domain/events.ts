import type { EventBus } from "@stratum/bus";
import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";
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
 * Publishes compute's host events. (VM events are not published here: every VM state change
 * writes its `vm_state_changed` into the outbox in the same statement — see store/vm-events.ts —
 * and the kit's relay publishes it, so none is lost to a crash or a NATS outage.) Host status
 * events still go out after the change is committed, without waiting for JetStream's
 * acknowledgement (EventBus.publishUnconfirmed): moving them to the outbox is left to do.
 */
export class ComputeEvents {
  constructor(
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  hostStatusChanged(change: HostStatusChanged): void {
    this.#publish("host_status_changed", change, `host-${change.hostUuid}-${change.to}-${Date.now()}`);
  }

  #publish(event: string, data: object, id: string): void {
    try {
      this.events.publishUnconfirmed("compute", event, data, { id });
    } catch (e) {
      // Only a closed connection throws here (shutdown); the change itself is committed.
      this.log.warn("event publish failed", { event, eventId: id, error: errorMessage(e) });
    }
  }
}
