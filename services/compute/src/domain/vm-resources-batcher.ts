import { Code, currentWork, errorMessage, StratumError, type Logger } from "@stratum/core";
import { TurnBatcher } from "@stratum/db";
import { crashPoint } from "@stratum/runtime";
import type { NicIpAnswer, VmNetwork } from "../clients/network";
import type { RootVolumeAnswer, VmVolumes } from "../clients/volumes";
import type { VmNicRow, VmRow } from "../store/schema";
import type { FinishedCreate, VmStore } from "../store/vm-store";
import { plannedNics } from "./vm-nics";

/** CreateVmRequest's default root volume size (root_volume_size_bytes = 0). */
export const DEFAULT_ROOT_VOLUME_BYTES = 10 * 1024 ** 3;
/** CreateRootVolumesRequest's limit (VMs). */
const MAX_BATCH = 1000;
/** AllocateNicIpsRequest's limit (NICs): a batch of VMs with many NICs each is cut shorter. */
const MAX_NICS = 1000;

/** What a create asks of other services for its VM. */
export interface VmResourcesWish {
  /** Its root volume: size and storage (empty: storage chooses). */
  rootVolume: { sizeBytes: number; primaryStorageUuid: string };
  /** A NIC on each of these L3 networks, in this order. */
  l3NetworkUuids: readonly string[];
  /**
   * Skip what the VM has already (a create retried after its first attempt recorded part of it):
   * its root volume when `vm.rootVolumeUuid` is set, its NICs when `nicsRecorded`.
   */
  nicsRecorded?: boolean;
}

/** A placed VM with what its create recorded. */
export interface PlacedVm {
  vm: VmRow;
  nics: VmNicRow[];
}

interface Pending {
  vm: VmRow;
  /** Its NICs, still without addresses; empty when it asks for none. */
  nics: Array<Omit<VmNicRow, "ip">>;
  wantsRoot: boolean;
  wish: VmResourcesWish;
  requestId: string | null;
  resolve(placed: PlacedVm): void;
  reject(e: unknown): void;
}

/** One VM's outcome of a batch: what it got, or the error it is rolled back for, and what may be held for it. */
interface Outcome {
  rootVolumeUuid?: string;
  nics: VmNicRow[];
  error?: StratumError;
  /** Storage made, or may have made, its root volume. */
  volumeMaybeMade: boolean;
  /** Network gave, or may have given, one of its NICs an address. */
  nicsMaybeHeld: boolean;
}

/**
 * The step of a create between placement and its answer: the VMs placed in one event-loop turn
 * (a PlacementBatcher batch, and the lone or host-named creates of that turn) get what other
 * services give them in ONE call per service, made concurrently — their root volumes from
 * storage (CreateRootVolumes) and, for those created on L3 networks, their NICs' addresses from
 * network (AllocateNicIps; a batch without NICs makes no such call) — and their outcomes are
 * recorded in one transaction (VmStore.finishCreates). A VM that got everything records it and
 * answers Created; one that did not is removed with its host capacity given back, and its create
 * answers the first error (storage's, else network's: RESOURCE_EXHAUSTED naming the storage or
 * network without room). What the other service did give it is marked for release (a root volume
 * made for a VM whose NIC got no address; the addresses of its other NICs). When a service did
 * not answer at all, every VM that asked it is rolled back and answers UNAVAILABLE, and each is
 * marked for that release, since the service may have acted and lost only its answer.
 *
 * One batch at a time, as placement does one batch at a time: while the services answer one, the
 * next fills up, so the two overlap instead of adding up.
 */
export class VmResourcesBatcher {
  readonly #batcher = new TurnBatcher<Pending>((pending) => this.#flush(pending), (p, e) => p.reject(e));

  constructor(private readonly d: { vms: VmStore; volumes: VmVolumes; network: VmNetwork; log: Logger }) {}

  /** The VM (placed, Created, its capacity held) with its root volume and NICs recorded; rejects with why not, the VM then removed. */
  attach(vm: VmRow, wish: VmResourcesWish): Promise<PlacedVm> {
    const requestId = currentWork()?.requestId ?? null;
    const nics = wish.nicsRecorded ? [] : plannedNics(vm.uuid, wish.l3NetworkUuids);
    return new Promise((resolve, reject) => this.#batcher.submit({ vm, nics, wantsRoot: !vm.rootVolumeUuid, wish, requestId, resolve, reject }));
  }

  async #flush(pending: Pending[]): Promise<Pending[]> {
    let nicCount = 0;
    let cut = 0;
    while (cut < pending.length && cut < MAX_BATCH && (cut === 0 || nicCount + pending[cut]!.nics.length <= MAX_NICS)) nicCount += pending[cut++]!.nics.length;
    const batch = pending.slice(0, cut);
    const later = pending.slice(cut);
    const roots = batch.filter((p) => p.wantsRoot);
    const nicAsks = batch.flatMap((p) => p.nics.map((n) => ({ nicUuid: n.uuid, vmUuid: n.vmUuid, l3NetworkUuid: n.l3NetworkUuid })));
    const [volumes, addresses] = await Promise.allSettled([
      roots.length > 0 ? this.d.volumes.createRoots(roots.map((p) => ({ vmUuid: p.vm.uuid, hostUuid: p.vm.hostUuid!, sizeBytes: p.wish.rootVolume.sizeBytes || DEFAULT_ROOT_VOLUME_BYTES, primaryStorageUuid: p.wish.rootVolume.primaryStorageUuid }))) : Promise.resolve([]),
      nicAsks.length > 0 ? this.d.network.allocateNicIps(nicAsks) : Promise.resolve([]),
    ]);
    const rootsByVm = new Map<string, RootVolumeAnswer>(volumes.status === "fulfilled" ? volumes.value.map((a) => [a.vmUuid, a]) : []);
    const ipsByNic = new Map<string, NicIpAnswer>(addresses.status === "fulfilled" ? addresses.value.map((a) => [a.nicUuid, a]) : []);
    const outcomes = new Map<string, Outcome>();
    for (const p of batch) {
      const o: Outcome = { nics: [], volumeMaybeMade: false, nicsMaybeHeld: false };
      if (!p.wantsRoot) o.rootVolumeUuid = p.vm.rootVolumeUuid!;
      else if (volumes.status === "rejected") {
        o.error = StratumError.from(volumes.reason);
        o.volumeMaybeMade = true;
      } else {
        const a = rootsByVm.get(p.vm.uuid);
        if (a && "volumeUuid" in a) {
          o.rootVolumeUuid = a.volumeUuid;
          o.volumeMaybeMade = true;
        } else o.error = a?.error ?? new StratumError(Code.INTERNAL, `storage answered no root volume for VM ${p.vm.uuid}`, { reason: "ROOT_VOLUME_FAILED", resources: { vmUuid: p.vm.uuid } });
      }
      if (p.nics.length > 0) {
        if (addresses.status === "rejected") {
          o.error ??= StratumError.from(addresses.reason);
          o.nicsMaybeHeld = true;
        } else {
          for (const n of p.nics) {
            const a = ipsByNic.get(n.uuid);
            if (a && "ip" in a) {
              o.nics.push({ ...n, ip: a.ip });
              o.nicsMaybeHeld = true;
            } else o.error ??= a?.error ?? new StratumError(Code.INTERNAL, `network answered no address for NIC ${n.uuid} of VM ${p.vm.uuid}`, { reason: "NIC_IP_FAILED", resources: { vmUuid: p.vm.uuid } });
          }
        }
      }
      outcomes.set(p.vm.uuid, o);
    }
    await this.#settle(batch, outcomes);
    return later;
  }

  async #settle(batch: Pending[], outcomes: Map<string, Outcome>): Promise<void> {
    const done: FinishedCreate[] = [];
    const failed: Array<{ uuid: string; fence: number }> = [];
    const volumesMaybeMade: string[] = [];
    const nicsMaybeHeld: string[] = [];
    for (const p of batch) {
      const o = outcomes.get(p.vm.uuid)!;
      if (!o.error) {
        done.push({ uuid: p.vm.uuid, fence: p.vm.fence, rootVolumeUuid: o.rootVolumeUuid!, nics: o.nics, requestId: p.requestId });
        continue;
      }
      failed.push({ uuid: p.vm.uuid, fence: p.vm.fence });
      if (o.volumeMaybeMade) volumesMaybeMade.push(p.vm.uuid);
      if (o.nicsMaybeHeld) nicsMaybeHeld.push(p.vm.uuid);
    }
    // Storage and network have answered (and may have made a root volume, given addresses); the
    // VMs are placed, Created, with no event yet: a replica that dies here leaves them to the takeover.
    crashPoint("compute:create-resources-answered");
    let result;
    try {
      result = await this.d.vms.finishCreates(done, failed, volumesMaybeMade, nicsMaybeHeld);
    } catch (e) {
      // Left Created without their root volume and NICs: the takeover scan removes them as failed
      // creates (this replica's own VMs with no operation on them); their creates answer this error.
      this.d.log.warn("could not record the outcome of root volumes and nics", { vms: batch.length, error: errorMessage(e) });
      for (const p of batch) p.reject(e);
      return;
    }
    for (const p of batch) {
      const o = outcomes.get(p.vm.uuid)!;
      const refused = o.error ?? result.refused.get(p.vm.uuid);
      if (refused) {
        p.reject(refused);
        continue;
      }
      const row = result.recorded.get(p.vm.uuid);
      if (row) p.resolve({ vm: row, nics: o.nics });
      else p.reject(new StratumError(Code.UNAVAILABLE, `vm ${p.vm.uuid} could not record its root volume and nics: this replica may no longer write it; retry`, { reason: "VM_TAKEN_OVER", resources: { vmUuid: p.vm.uuid } }));
    }
  }
}
