import type { ServiceRouter } from "@stratum/bus";
import { Code, errorMessage, StratumError } from "@stratum/core";
import type { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";

/** Deadline of one CreateRootVolumes or ReleaseVmVolumes call: a batch is one statement on storage's side. */
const CALL_TIMEOUT_MS = 10_000;

/** One VM's root volume to ask storage for. */
export interface RootVolumeAsk {
  vmUuid: string;
  hostUuid: string;
  sizeBytes: number;
  /** Empty: storage chooses. */
  primaryStorageUuid: string;
}

/** Storage's answer for one VM: its root volume's uuid, or the error it has none for. */
export type RootVolumeAnswer = { vmUuid: string; volumeUuid: string } | { vmUuid: string; error: StratumError };

/** What compute asks of storage about VMs' volumes. */
export interface VmVolumes {
  /** One CreateRootVolumes call for the batch; throws (UNAVAILABLE `STORAGE_UNAVAILABLE`) when storage did not answer. */
  createRoots(asks: readonly RootVolumeAsk[]): Promise<RootVolumeAnswer[]>;
  /** One ReleaseVmVolumes call. */
  release(vmUuids: readonly string[]): Promise<void>;
}

/**
 * {@link VmVolumes} over the kit's router to storage. Storage serves both calls on whichever
 * replica they reach, so the key only spreads the batches over its replicas.
 */
export function vmVolumes(storage: ServiceRouter<typeof StorageService>): VmVolumes {
  return {
    async createRoots(asks) {
      let results;
      try {
        ({ results } = await storage.call(asks[0]!.vmUuid, (c) =>
          c.createRootVolumes({ volumes: asks.map((a) => ({ vmUuid: a.vmUuid, hostUuid: a.hostUuid, sizeBytes: BigInt(a.sizeBytes), primaryStorageUuid: a.primaryStorageUuid })) }, { timeoutMs: CALL_TIMEOUT_MS }),
        ));
      } catch (e) {
        throw storageUnavailable("create the root volumes", e);
      }
      const byVm = new Map(results.map((r) => [r.vmUuid, r]));
      return asks.map((a) => {
        const r = byVm.get(a.vmUuid);
        if (r?.volume) return { vmUuid: a.vmUuid, volumeUuid: r.volume.uuid };
        const code = r ? (Code[r.errorCode as keyof typeof Code] ?? Code.INTERNAL) : Code.INTERNAL;
        const message = r ? r.errorMessage : `storage answered no result for VM ${a.vmUuid}`;
        return { vmUuid: a.vmUuid, error: new StratumError(code, `the root volume of VM ${a.vmUuid} could not be created: ${message}`, { reason: rootVolumeReason(code), resources: { vmUuid: a.vmUuid } }) };
      });
    },
    async release(vmUuids) {
      await storage.call(vmUuids[0]!, (c) => c.releaseVmVolumes({ vmUuids: [...vmUuids] }, { timeoutMs: CALL_TIMEOUT_MS }));
    },
  };
}

function rootVolumeReason(code: Code): string {
  return code === Code.RESOURCE_EXHAUSTED ? "PRIMARY_STORAGE_FULL" : code === Code.NOT_FOUND ? "PRIMARY_STORAGE_NOT_FOUND" : "ROOT_VOLUME_FAILED";
}

/** UNAVAILABLE `STORAGE_UNAVAILABLE`: storage did not answer (a retry may reach it). */
function storageUnavailable(what: string, e: unknown): StratumError {
  const cause = StratumError.from(e);
  const code = cause.code === Code.INVALID_ARGUMENT || cause.code === Code.INTERNAL ? cause.code : Code.UNAVAILABLE;
  return new StratumError(code, `storage could not ${what}: ${errorMessage(e)}`, { reason: code === Code.UNAVAILABLE ? "STORAGE_UNAVAILABLE" : cause.reason, cause });
}
