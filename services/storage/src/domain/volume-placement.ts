import { StratumError } from "@stratum/core";
import type { HostLocator, VolumeAgent, VolumePlacement } from "../clients/hosts";
import type { VolumeRow } from "../store/schema";
import type { VolumeStore } from "../store/volume-store";

/** What the locator needs of a volume: its VM and, for a local storage, the storage's host. */
export async function placementOf(volumes: VolumeStore, v: VolumeRow): Promise<VolumePlacement> {
  const storage = await volumes.getStorage(v.primaryStorageUuid);
  return { uuid: v.uuid, vmUuid: v.vmUuid, storageHostUuid: storage?.hostUuid ?? null };
}

/** The host whose agent runs the tasks of volume `uuid` now, and the VM it is a disk of there (see HostLocator). */
export async function agentOfVolume(volumes: VolumeStore, locator: HostLocator, uuid: string, signal?: AbortSignal): Promise<VolumeAgent> {
  const v = await volumes.get(uuid);
  if (!v) throw StratumError.notFound("volume", uuid);
  return locator.place(await placementOf(volumes, v), signal);
}
