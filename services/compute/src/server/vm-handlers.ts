import type { Bus } from "@stratum/bus";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import type { MigrationCheckDeps } from "../domain/migration-check";
import type { VmManager } from "../domain/vm-manager";
import { submitMigration } from "../domain/vm-migration";
import { watchVm } from "../domain/vm-watch";
import type { VmRow } from "../store/schema";
import type { VmStore } from "../store/vm-store";
import { VM_STATE_FROM_PROTO, vmToProto } from "./convert";


/**
 * VmService: the handlers only call the domain. The kit validates each request (the limits are
 * declared in vm.proto), routes each mutation to the owner of its VM and answers retried request
 * ids, by the rules below. Mutations answer once accepted; reads and WatchVm (no routing rule)
 * are served by whichever replica the call reached.
 */
export function vmApi(manager: VmManager, store: VmStore, bus: Bus, migrations: MigrationCheckDeps): ServiceApi {
  /** The VM with its NICs (a read only for a VM that has some). */
  const view = async (vm: VmRow) => vmToProto(vm, (await store.nicsOf([vm])).get(vm.uuid));
  return serviceApi(
    VmService,
    {
      async createVm(req) {
        const vm = await manager.create({
          uuid: req.uuid,
          name: req.name,
          cpu: req.cpu,
          memory: Number(req.memoryBytes),
          hostUuid: req.hostUuid,
          clientRequestId: req.clientRequestId,
          rootVolume: { sizeBytes: Number(req.rootVolumeSizeBytes), primaryStorageUuid: req.primaryStorageUuid },
          l3NetworkUuids: req.l3NetworkUuids,
        });
        return { vm: await view(vm) };
      },
      async getVm(req) {
        return { vm: await view(await manager.get(req.uuid)) };
      },
      async listVms(req) {
        const state = VM_STATE_FROM_PROTO.get(req.state);
        const afterSeq = decodePageToken(req.pageToken, vmFilters(req));
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(state ? { state } : {}), ...(req.hostUuid ? { hostUuid: req.hostUuid } : {}), ...(req.name ? { name: req.name } : {}), afterSeq, limit: limit + 1 });
        const page = rows.slice(0, limit);
        // The page's NICs in one query (none when no VM of it has any).
        const nics = await store.nicsOf(page);
        return { vms: page.map((vm) => vmToProto(vm, nics.get(vm.uuid))), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, vmFilters(req)) : "" };
      },
      async startVm(req) {
        return { vm: await view(await manager.start(req.uuid, req.clientRequestId)) };
      },
      async stopVm(req) {
        return { vm: await view(await manager.stop(req.uuid, req.force, req.clientRequestId)) };
      },
      async rebootVm(req) {
        return { vm: await view(await manager.reboot(req.uuid, req.clientRequestId)) };
      },
      async destroyVm(req) {
        return { vm: await view(await manager.destroy(req.uuid, req.clientRequestId)) };
      },
      async setVmNicIp(req) {
        return { vm: await view(await manager.setNicIp(req.uuid, req.nicUuid, req.ip, req.clientRequestId)) };
      },
      async migrateVm(req) {
        const { vm, jobUuid } = await submitMigration(migrations, {
          vmUuid: req.uuid,
          targetHostUuid: req.targetHostUuid,
          cancelBackupJobUuids: req.cancelBackupJobUuids,
          backupWaitTimeoutMs: req.backupWaitTimeoutMs,
          clientRequestId: req.clientRequestId,
        });
        return { vm: await view(vm), jobUuid };
      },
      async *watchVm(req, ctx) {
        for await (const { vm, nics } of watchVm(bus, store, req.uuid, ctx.signal)) yield { vm: vmToProto(vm, nics) };
      },
    },
    {
      createVm: {
        // The VM's UUID is chosen before routing, so the create runs on its owner: derived from the
        // request id when there is one, so a retry reaches the same owner and the same row.
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("vm", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      // A token is bound to the filters it was issued for: checked before anything runs.
      listVms: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, vmFilters(r)) },
      startVm: mutationOf(),
      stopVm: mutationOf(),
      rebootVm: mutationOf(),
      destroyVm: mutationOf(),
      // On the VM's owner, like every operation on it; a retry gets the first job.
      migrateVm: mutationOf(),
      // In the VM's queue on its owner; a retry gets the first outcome.
      setVmNicIp: mutationOf(),
    },
  );
}

/** The filters of a listing, which its page tokens are bound to. */
function vmFilters(r: { state: number; hostUuid: string; name: string }) {
  return { state: r.state, hostUuid: r.hostUuid, name: r.name };
}
