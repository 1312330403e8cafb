import { subject, watchResource, type Bus } from "@stratum/bus";
import { rowMapper } from "@stratum/db";
import { vmNics, vms, type VmNicRow, type VmRow } from "../store/schema";
import { VM_STATE_CHANGED } from "../store/vm-events";
import type { VmStore } from "../store/vm-store";

const toRow = rowMapper(vms);
const toNic = rowMapper(vmNics);

/** A VM with its NICs, as WatchVm streams it. */
export interface WatchedVm {
  vm: VmRow;
  nics: VmNicRow[];
}

/**
 * A VM's changes until it is Destroyed (the kit's `watchResource`, by the VM's own event subject).
 * Its events carry the whole row and its NICs, so a watcher reads Postgres only at the start and
 * after a quiet spell; the revision is the VM's fence, which every change increments (a NIC's
 * new address too). Any replica serves it: nothing here belongs to the VM's owner.
 */
export function watchVm(bus: Bus, store: VmStore, uuid: string, signal: AbortSignal): AsyncGenerator<WatchedVm> {
  return watchResource<WatchedVm>({
    nc: bus.nc,
    subject: subject(bus.prefix, "stratum", "compute", VM_STATE_CHANGED, uuid),
    read: async () => {
      const vm = await store.get(uuid);
      return vm ? { vm, nics: (await store.nicsOf([vm])).get(uuid) ?? [] } : undefined;
    },
    fromEvent: (json) => {
      if (!json.vm || typeof json.vm !== "object") return undefined;
      const nics = Array.isArray(json.nics) ? (json.nics as Record<string, unknown>[]).map((n) => toNic(n)) : [];
      return { vm: toRow(json.vm as Record<string, unknown>), nics };
    },
    revision: (v) => v.vm.fence,
    done: (v) => v.vm.state === "Destroyed",
    kind: "vm",
    uuid,
    signal,
  });
}
