import { subject, watchResource, type Bus } from "@stratum/bus";
import { rowMapper } from "@stratum/db";
import { vms, type VmRow } from "../store/schema";
import { VM_STATE_CHANGED } from "../store/vm-events";
import type { VmStore } from "../store/vm-store";

const toRow = rowMapper(vms);

/**
 * A VM's changes until it is Destroyed (the kit's `watchResource`, by the VM's own event subject).
 * Its events carry the whole row, so a watcher reads Postgres only at the start and after a quiet
 * spell; the revision is the VM's fence, which every change increments. Any replica serves it:
 * nothing here belongs to the VM's owner.
 */
export function watchVm(bus: Bus, store: VmStore, uuid: string, signal: AbortSignal): AsyncGenerator<VmRow> {
  return watchResource<VmRow>({
    nc: bus.nc,
    subject: subject(bus.prefix, "stratum", "compute", VM_STATE_CHANGED, uuid),
    read: () => store.get(uuid),
    fromEvent: (json) => (json.vm && typeof json.vm === "object" ? toRow(json.vm as Record<string, unknown>) : undefined),
    revision: (vm) => vm.fence,
    done: (vm) => vm.state === "Destroyed",
    kind: "vm",
    uuid,
    signal,
  });
}
