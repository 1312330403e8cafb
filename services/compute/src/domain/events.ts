import type { EventBus } from "@stratum/bus";
import type { Logger } from "@stratum/rpc";
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
 * target state, row update time), so a retried publish is stored once by JetStream.
 * A publish failure is logged, not thrown: the state change is already committed in Postgres,
 * which is the source of truth, and failing the operation would make the caller retry work that
 * succeeded.
 */
export class ComputeEvents {
  constructor(
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  async vmStateChanged(change: VmStateChanged, at: Date): Promise<void> {
    await this.#publish("vm_state_changed", change, `vm-${change.vmUuid}-${change.to}-${at.getTime()}`);
  }

  async hostStatusChanged(change: HostStatusChanged): Promise<void> {
    await this.#publish("host_status_changed", change, `host-${change.hostUuid}-${change.to}-${Date.now()}`);
  }

  async #publish(event: string, data: object, id: string): Promise<void> {
    try {
      await this.events.publish("compute", event, data, { id });
    } catch (e) {
      this.log.warn("event publish failed", { event, eventId: id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
