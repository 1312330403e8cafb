import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import { errorCodeName, type RootVolumes } from "../domain/root-volumes";
import type { VolumeManager } from "../domain/volume-manager";
import type { VolumeTaskDirectory } from "../domain/volume-tasks";
import type { VolumeStore } from "../store/volume-store";
import { storageToProto, VOLUME_KIND_FROM_PROTO, VOLUME_STATE_FROM_PROTO, volumeTaskToProto, volumeToProto } from "./convert";

/**
 * StorageService: the handlers only call the domain. The kit validates each request (limits in
 * storage.proto), routes mutations to the owner of the volume's (or storage's) UUID and answers
 * retried request ids. Reads are answered by any replica, from Postgres, and so are compute's
 * batches of root volumes and releases (see RootVolumes).
 */
export function storageApi(manager: VolumeManager, store: VolumeStore, tasks: VolumeTaskDirectory, roots: RootVolumes): ServiceApi {
  return serviceApi(
    StorageService,
    {
      async addPrimaryStorage(req) {
        const s = await manager.addStorage({
          uuid: req.uuid,
          name: req.name,
          hostUuid: req.hostUuid || null,
          totalCapacity: Number(req.totalCapacityBytes),
          clientRequestId: req.clientRequestId || null,
        });
        return { primaryStorage: storageToProto(s) };
      },
      async getPrimaryStorage(req) {
        return { primaryStorage: storageToProto(await manager.getStorage(req.uuid)) };
      },
      async listPrimaryStorages(req) {
        const filters = { hostUuid: req.hostUuid };
        const limit = pageSize(req.pageSize);
        const rows = await store.listStorages({ ...(req.hostUuid ? { hostUuid: req.hostUuid } : {}), afterSeq: decodePageToken(req.pageToken, filters), limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { primaryStorages: page.map(storageToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, filters) : "" };
      },
      async deletePrimaryStorage(req) {
        await manager.deleteStorage(req.uuid);
        return {};
      },
      async createVolume(req) {
        const v = await manager.create({
          uuid: req.uuid,
          name: req.name,
          primaryStorageUuid: req.primaryStorageUuid,
          kind: VOLUME_KIND_FROM_PROTO.get(req.kind)!, // the proto rules admit ROOT and DATA only
          sizeBytes: Number(req.sizeBytes),
          clientRequestId: req.clientRequestId,
        });
        return { volume: volumeToProto(v) };
      },
      async getVolume(req) {
        return { volume: volumeToProto(await manager.get(req.uuid)) };
      },
      async listVolumes(req) {
        const state = VOLUME_STATE_FROM_PROTO.get(req.state);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({
          ...(req.primaryStorageUuid ? { primaryStorageUuid: req.primaryStorageUuid } : {}),
          ...(state ? { state } : {}),
          ...(req.vmUuid ? { vmUuid: req.vmUuid } : {}),
          afterSeq: decodePageToken(req.pageToken, volumeFilters(req)),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return { volumes: page.map(volumeToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, volumeFilters(req)) : "" };
      },
      async resizeVolume(req) {
        return { volume: volumeToProto(await manager.resize(req.uuid, Number(req.sizeBytes))) };
      },
      async attachVolume(req) {
        return { volume: volumeToProto(await manager.attach(req.uuid, req.vmUuid)) };
      },
      async detachVolume(req) {
        return { volume: volumeToProto(await manager.detach(req.uuid)) };
      },
      async deleteVolume(req) {
        return { volume: volumeToProto(await manager.delete(req.uuid)) };
      },
      async listVolumeTasks(req, ctx) {
        return { tasks: (await tasks.list(req.volumeUuids, req.kinds, ctx.signal)).map(volumeTaskToProto) };
      },
      async createRootVolumes(req) {
        const outcomes = await roots.create(
          req.volumes.map((v) => ({ vmUuid: v.vmUuid, hostUuid: v.hostUuid, sizeBytes: Number(v.sizeBytes), primaryStorageUuid: v.primaryStorageUuid })),
        );
        return {
          results: outcomes.map((o) =>
            "volume" in o ? { vmUuid: o.vmUuid, volume: volumeToProto(o.volume) } : { vmUuid: o.vmUuid, errorCode: errorCodeName(o.error), errorMessage: o.error.message },
          ),
        };
      },
      async releaseVmVolumes(req) {
        return { volumes: (await roots.release(req.vmUuids)).map(volumeToProto) };
      },
      async waitVolumeTasks(req, ctx) {
        const { exited, running } = await tasks.wait(req.volumeUuids, req.kinds, req.timeoutMs, ctx.signal, req.hostUuid || undefined);
        return { exited, running: running.map(volumeTaskToProto) };
      },
    },
    {
      addPrimaryStorage: {
        // The UUID is chosen before routing, derived from the request id when there is one, so a
        // retry reaches the same owner and the same row.
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("primary-storage", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listPrimaryStorages: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, { hostUuid: r.hostUuid }) },
      deletePrimaryStorage: mutationOf(),
      createVolume: {
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("volume", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listVolumes: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, volumeFilters(r)) },
      resizeVolume: mutationOf(),
      attachVolume: mutationOf(),
      detachVolume: mutationOf(),
      deleteVolume: mutationOf(),
      // No owner: served where the call lands (see RootVolumes). Idempotent per VM, not per request id.
      createRootVolumes: {
        validate: (r, v) => {
          const seen = new Set<string>();
          r.volumes.forEach((s, i) => {
            v.check(!seen.has(s.vmUuid), `volumes[${i}].vm_uuid`, `VM ${s.vmUuid} is named more than once`);
            seen.add(s.vmUuid);
          });
        },
      },
    },
  );
}

/** The filters of a volume listing, which its page tokens are bound to. */
function volumeFilters(r: { primaryStorageUuid: string; state: number; vmUuid: string }) {
  return { primaryStorageUuid: r.primaryStorageUuid, state: r.state, vmUuid: r.vmUuid };
}
