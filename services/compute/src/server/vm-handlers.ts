import { randomUUID } from "node:crypto";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import type { VmManager } from "../domain/vm-manager";
import type { VmStore } from "../store/vm-store";
import { uuidForRequest } from "../domain/ids";
import { decodePageToken, encodePageToken, MAX_PAGE_SIZE, pageSize } from "../store/page";
import { VM_STATE_FROM_PROTO, vmToProto } from "./convert";
import { enumField, MIB, nameField, requestIdField, uuidField } from "./validate";
import { mutationOf } from "./rules";

/** Largest VM memory accepted: 16 TiB, far above any host, and safely below 2^53. */
const MAX_VM_MEMORY = 16n * 1024n * 1024n * MIB;

/**
 * VmService: the handlers only call the domain; the kit validates each request, routes it to the
 * owner of its VM and answers retried request ids, by the rules below.
 */
export function vmApi(manager: VmManager, store: VmStore): ServiceApi {
  return serviceApi(
    VmService,
    {
      async createVm(req, ctx) {
        const vm = await manager.create({ uuid: req.uuid, name: req.name, cpu: req.cpu, memory: Number(req.memoryBytes), hostUuid: req.hostUuid, clientRequestId: req.clientRequestId }, ctx.signal);
        return { vm: vmToProto(vm) };
      },
      async getVm(req) {
        return { vm: vmToProto(await manager.get(req.uuid)) };
      },
      async listVms(req) {
        const state = VM_STATE_FROM_PROTO.get(req.state);
        const afterSeq = decodePageToken(req.pageToken);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(state ? { state } : {}), ...(req.hostUuid ? { hostUuid: req.hostUuid } : {}), ...(req.name ? { name: req.name } : {}), afterSeq, limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { vms: page.map(vmToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq) : "" };
      },
      async startVm(req, ctx) {
        return { vm: vmToProto(await manager.start(req.uuid, ctx.signal)) };
      },
      async stopVm(req, ctx) {
        return { vm: vmToProto(await manager.stop(req.uuid, req.force, ctx.signal)) };
      },
      async rebootVm(req, ctx) {
        return { vm: vmToProto(await manager.reboot(req.uuid, ctx.signal)) };
      },
      async destroyVm(req, ctx) {
        return { vm: vmToProto(await manager.destroy(req.uuid, ctx.signal)) };
      },
    },
    {
      createVm: {
        validate(r, v) {
          nameField(v, "name", r.name);
          v.range("cpu", r.cpu, 1, 512);
          v.range("memory_bytes", r.memoryBytes, 16n * MIB, MAX_VM_MEMORY);
          uuidField(v, "host_uuid", r.hostUuid, false);
          uuidField(v, "uuid", r.uuid, false);
          requestIdField(v, "client_request_id", r.clientRequestId);
        },
        // The VM's UUID is chosen before routing, so the create runs on its owner: derived from the
        // request id when there is one, so a retry reaches the same owner and the same row.
        normalize: (r) => (r.uuid ? r : { ...r, uuid: r.clientRequestId ? uuidForRequest("vm", r.clientRequestId) : randomUUID() }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      getVm: { validate: (r, v) => uuidField(v, "uuid", r.uuid, true) },
      listVms: {
        validate(r, v) {
          enumField(v, "state", r.state, VM_STATE_FROM_PROTO, true);
          uuidField(v, "host_uuid", r.hostUuid, false);
          v.range("page_size", r.pageSize, 0, MAX_PAGE_SIZE);
          v.maxLength("name", r.name, 128);
        },
      },
      startVm: mutationOf(),
      stopVm: mutationOf(),
      rebootVm: mutationOf(),
      destroyVm: mutationOf(),
    },
  );
}
