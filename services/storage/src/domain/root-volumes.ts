import { randomUUID } from "node:crypto";
import { Code, codeName, StratumError, type Logger } from "@stratum/core";
import { volumeBackupRunning } from "../store/busy-backups";
import { RootVolumeRace, type NewRootVolume, type RootVolumeStore } from "../store/root-volume-store";
import type { PrimaryStorageRow, VolumeRow } from "../store/schema";

/** One VM's root volume to create (RootVolumeSpec). */
export interface RootVolumeRequest {
  vmUuid: string;
  hostUuid: string;
  sizeBytes: number;
  /** Empty: storage chooses. */
  primaryStorageUuid: string;
}

/** One VM's outcome: its root volume, or the error it has none for. */
export type RootVolumeOutcome = { vmUuid: string; volume: VolumeRow } | { vmUuid: string; error: StratumError };

/** How often a batch is tried again when a racing create of one of its VMs committed first. */
const RACE_ATTEMPTS = 3;

/**
 * Root volumes for compute's placement batches, and the release of destroyed VMs' volumes.
 *
 * Served by whichever replica the call reaches, not by the volumes' owners: a batch names up to
 * a thousand VMs (their volumes have as many owners), its volumes are new rows, and the store's
 * fencing rule is this replica's lease, not ownership (every VolumeStore write checks only
 * that). The database arbitrates what owners would: capacity by the locked storage rows and
 * their CHECK, one root volume per VM by a unique index, a release by locking the rows it moves.
 */
export class RootVolumes {
  constructor(private readonly d: { store: RootVolumeStore; log: Logger }) {}

  /**
   * Each VM's root volume: the one it has (a retry), or a new one on the storage chosen for it —
   * the named one, else its host's local storage with room, else the shared one with the most
   * free. A VM without room gets RESOURCE_EXHAUSTED naming the storage; the others go on.
   */
  async create(requests: readonly RootVolumeRequest[]): Promise<RootVolumeOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#createOnce(requests);
      } catch (e) {
        if (!(e instanceof RootVolumeRace) || attempt >= RACE_ATTEMPTS) throw e;
        // Another call gave one of these VMs its root volume first: the next pass answers it.
      }
    }
  }

  async #createOnce(requests: readonly RootVolumeRequest[]): Promise<RootVolumeOutcome[]> {
    const vmUuids = requests.map((r) => r.vmUuid);
    const existing = new Map((await this.d.store.rootVolumesOf(vmUuids)).map((v) => [v.vmUuid!, v]));
    const todo = requests.filter((r) => !existing.has(r.vmUuid));
    const outcome = new Map<string, RootVolumeOutcome>();
    for (const [vmUuid, volume] of existing) outcome.set(vmUuid, { vmUuid, volume });
    if (todo.length > 0) {
      const storages = await this.d.store.candidates(
        [...new Set(todo.map((r) => r.hostUuid))],
        [...new Set(todo.map((r) => r.primaryStorageUuid).filter(Boolean))],
      );
      const free = new Map(storages.map((s) => [s.uuid, { s, free: s.totalCapacity - s.usedBytes }]));
      const planned: NewRootVolume[] = [];
      for (const r of todo) {
        const chosen = choose(r, [...free.values()]);
        if ("error" in chosen) {
          outcome.set(r.vmUuid, { vmUuid: r.vmUuid, error: chosen.error });
          continue;
        }
        free.get(chosen.storage.uuid)!.free -= r.sizeBytes;
        planned.push({ uuid: randomUUID(), name: `root-${r.vmUuid.slice(0, 8)}`, vmUuid: r.vmUuid, primaryStorageUuid: chosen.storage.uuid, sizeBytes: r.sizeBytes });
      }
      const inserted = await this.d.store.insert(planned);
      for (const v of inserted) outcome.set(v.vmUuid!, { vmUuid: v.vmUuid!, volume: v });
      const missed = planned.filter((p) => !outcome.has(p.vmUuid));
      if (missed.length > 0) {
        // Nothing at all inserted can mean the lease is gone: the whole batch is this replica's failure then.
        if (inserted.length === 0 && !(await this.d.store.leaseHeld())) throw this.d.store.leaseLost();
        const now = new Map((await this.d.store.storages([...new Set(missed.map((m) => m.primaryStorageUuid))])).map((s) => [s.uuid, s]));
        for (const m of missed) {
          const s = now.get(m.primaryStorageUuid);
          outcome.set(m.vmUuid, { vmUuid: m.vmUuid, error: s ? storageFull(s, m.vmUuid, m.sizeBytes) : storageNotFound(m.primaryStorageUuid, m.vmUuid) });
        }
      }
    }
    return requests.map((r) => outcome.get(r.vmUuid)!);
  }

  /**
   * Releases the volumes of destroyed VMs: root volumes deleted (bytes back), data volumes
   * detached. Refused, changing nothing, while a backup is being created from one of their root
   * volumes (FAILED_PRECONDITION naming it and its job): the caller tries again later.
   */
  async release(vmUuids: readonly string[]): Promise<VolumeRow[]> {
    const released = await this.d.store.release(vmUuids);
    if ("busy" in released) throw volumeBackupRunning(released.busy[0]!, "released with its VM");
    return released;
  }
}

/** The storage a VM's root volume goes on, or why there is none. */
function choose(r: RootVolumeRequest, storages: Array<{ s: PrimaryStorageRow; free: number }>): { storage: PrimaryStorageRow } | { error: StratumError } {
  if (r.primaryStorageUuid) {
    const named = storages.find((c) => c.s.uuid === r.primaryStorageUuid);
    if (!named) return { error: storageNotFound(r.primaryStorageUuid, r.vmUuid) };
    if (named.s.hostUuid !== null && named.s.hostUuid !== r.hostUuid) {
      return {
        error: new StratumError(Code.FAILED_PRECONDITION, `primary storage ${named.s.uuid} is local to host ${named.s.hostUuid}, and VM ${r.vmUuid} is placed on host ${r.hostUuid}`, {
          reason: "PRIMARY_STORAGE_NOT_ON_HOST",
          resources: { primaryStorageUuid: named.s.uuid, vmUuid: r.vmUuid, hostUuid: r.hostUuid },
        }),
      };
    }
    // Whether it has room is the insert's to say, on the locked row.
    return { storage: named.s };
  }
  const usable = storages.filter((c) => c.s.hostUuid === null || c.s.hostUuid === r.hostUuid);
  if (usable.length === 0) {
    return {
      error: new StratumError(Code.FAILED_PRECONDITION, `no primary storage can hold the root volume of VM ${r.vmUuid}: host ${r.hostUuid} has no local storage and there is no shared one`, {
        reason: "NO_PRIMARY_STORAGE",
        resources: { vmUuid: r.vmUuid, hostUuid: r.hostUuid },
      }),
    };
  }
  const fits = (c: { free: number }) => c.free >= r.sizeBytes;
  const local = usable.filter((c) => c.s.hostUuid !== null && fits(c)).sort((a, b) => b.free - a.free)[0];
  if (local) return { storage: local.s };
  const shared = usable.filter((c) => c.s.hostUuid === null && fits(c)).sort((a, b) => b.free - a.free)[0];
  if (shared) return { storage: shared.s };
  const best = [...usable].sort((a, b) => b.free - a.free)[0]!;
  return { error: storageFull({ ...best.s, usedBytes: best.s.totalCapacity - best.free }, r.vmUuid, r.sizeBytes) };
}

function storageFull(s: PrimaryStorageRow, vmUuid: string, size: number): StratumError {
  return new StratumError(Code.RESOURCE_EXHAUSTED, `primary storage ${s.uuid} has ${s.totalCapacity - s.usedBytes} bytes free, the root volume of VM ${vmUuid} needs ${size}`, {
    reason: "PRIMARY_STORAGE_FULL",
    resources: { primaryStorageUuid: s.uuid, vmUuid },
  });
}

function storageNotFound(uuid: string, vmUuid: string): StratumError {
  return new StratumError(Code.NOT_FOUND, `primary storage ${uuid} not found`, { reason: "PRIMARY_STORAGE_NOT_FOUND", resources: { primaryStorageUuid: uuid, vmUuid } });
}

/** The wire form of an outcome's error (RootVolumeResult.error_code is the code's name). */
export function errorCodeName(e: StratumError): string {
  return codeName(e.code);
}
