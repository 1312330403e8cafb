import { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import type { EipAudit } from "../domain/eip-audit";
import type { EipManager } from "../domain/eip-manager";
import type { EipStore } from "../store/eip-store";
import { driftToProto, EIP_STATUS_FROM_PROTO, eipToProto } from "./convert";

/**
 * EipService: an EIP's mutations run on the owner of its UUID (in its queue); compute's
 * SyncVmEips and ReconcileHostEips and the reads are served where they land (a sync is recorded
 * in the database and handed to each EIP's owner).
 */
export function eipApi(eips: EipManager, audit: EipAudit, store: EipStore): ServiceApi {
  return serviceApi(
    EipService,
    {
      async createEip(req) {
        return { eip: eipToProto(await eips.create({ uuid: req.uuid, name: req.name, l3NetworkUuid: req.l3NetworkUuid, vipIp: req.vipIp, clientRequestId: req.clientRequestId })) };
      },
      async getEip(req) {
        return { eip: eipToProto(await eips.get(req.uuid)) };
      },
      async listEips(req) {
        const status = EIP_STATUS_FROM_PROTO.get(req.status);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({
          ...(status ? { status } : {}),
          ...(req.vmUuid ? { vmUuid: req.vmUuid } : {}),
          ...(req.l3NetworkUuid ? { l3NetworkUuid: req.l3NetworkUuid } : {}),
          afterSeq: decodePageToken(req.pageToken, eipFilters(req)),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return { eips: page.map(eipToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, eipFilters(req)) : "" };
      },
      async attachEip(req) {
        return { eip: eipToProto(await eips.attach(req.uuid, req.vmNicUuid)) };
      },
      async detachEip(req) {
        return { eip: eipToProto(await eips.detach(req.uuid)) };
      },
      async deleteEip(req) {
        const left = await eips.delete(req.uuid);
        return left ? { eip: eipToProto(left) } : {};
      },
      async syncVmEips(req) {
        return { eipUuids: await eips.syncVms(req.vmUuids) };
      },
      async reconcileHostEips(req, ctx) {
        return { drift: driftToProto(await audit.reconcile(req.hostUuid, ctx.signal)) };
      },
      async auditEips(req, ctx) {
        return { hosts: (await audit.audit(req.hostUuids, ctx.signal)).map(driftToProto) };
      },
    },
    {
      createEip: {
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("eip", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listEips: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, eipFilters(r)) },
      attachEip: mutationOf(),
      detachEip: mutationOf(),
      deleteEip: mutationOf(),
      // Served where they land; a host's reconcile runs on the owner of the host's UUID, so two
      // reconnects of one host do not reconcile it side by side.
      reconcileHostEips: { owner: (r) => r.hostUuid, requestId: (r) => r.clientRequestId },
    },
  );
}

/** The filters of an EIP listing, which its page tokens are bound to. */
function eipFilters(r: { status: number; vmUuid: string; l3NetworkUuid: string }) {
  return { status: r.status, vmUuid: r.vmUuid, l3NetworkUuid: r.l3NetworkUuid };
}
