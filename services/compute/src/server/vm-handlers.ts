import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Violations, type ServiceImpl } from "@stratum/rpc";
import type { VmManager } from "../domain/vm-manager";
import type { VmStore } from "../store/vm-store";
import { decodePageToken, encodePageToken, MAX_PAGE_SIZE, pageSize } from "../store/page";
import { VM_STATE_FROM_PROTO, vmToProto } from "./convert";
import { enumField, MIB, nameField, requestIdField, uuidField } from "./validate";

/** Largest VM memory accepted: 16 TiB, far above any host, and safely below 2^53. */
const MAX_VM_MEMORY = 16n * 1024n * 1024n * MIB;

/** gRPC handlers of VmService: validate the request, then call the domain. */
export function vmHandlers(manager: VmManager, store: VmStore): ServiceImpl<typeof VmService> {
  const byUuid = (uuid: string) => {
    const v = new Violations();
    uuidField(v, "uuid", uuid, true);
    v.throwIfAny();
  };
  return {
    async createVm(req, ctx) {
      const v = new Violations();
      nameField(v, "name", req.name);
      v.range("cpu", req.cpu, 1, 512);
      v.range("memory_bytes", req.memoryBytes, 16n * MIB, MAX_VM_MEMORY);
      uuidField(v, "host_uuid", req.hostUuid, false);
      uuidField(v, "uuid", req.uuid, false);
      requestIdField(v, "client_request_id", req.clientRequestId);
      v.throwIfAny();
      const vm = await manager.create(
        { uuid: req.uuid, name: req.name, cpu: req.cpu, memory: Number(req.memoryBytes), hostUuid: req.hostUuid, clientRequestId: req.clientRequestId },
        ctx.signal,
      );
      return { vm: vmToProto(vm) };
    },
    async getVm(req) {
      byUuid(req.uuid);
      return { vm: vmToProto(await manager.get(req.uuid)) };
    },
    async listVms(req) {
      const v = new Violations();
      const state = enumField(v, "state", req.state, VM_STATE_FROM_PROTO, true);
      uuidField(v, "host_uuid", req.hostUuid, false);
      v.range("page_size", req.pageSize, 0, MAX_PAGE_SIZE);
      v.maxLength("name", req.name, 128);
      v.throwIfAny();
      const afterSeq = decodePageToken(req.pageToken);
      const limit = pageSize(req.pageSize);
      const rows = await store.list({ ...(state ? { state } : {}), ...(req.hostUuid ? { hostUuid: req.hostUuid } : {}), ...(req.name ? { name: req.name } : {}), afterSeq, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { vms: page.map(vmToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq) : "" };
    },
    async startVm(req, ctx) {
      byUuid(req.uuid);
      return { vm: vmToProto(await manager.start(req.uuid, ctx.signal)) };
    },
    async stopVm(req, ctx) {
      byUuid(req.uuid);
      return { vm: vmToProto(await manager.stop(req.uuid, req.force, ctx.signal)) };
    },
    async rebootVm(req, ctx) {
      byUuid(req.uuid);
      return { vm: vmToProto(await manager.reboot(req.uuid, ctx.signal)) };
    },
    async destroyVm(req, ctx) {
      byUuid(req.uuid);
      return { vm: vmToProto(await manager.destroy(req.uuid, ctx.signal)) };
    },
  };
}
