import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import type { EipManager } from "../domain/eip-manager";
import { ipToInt } from "../domain/ipv4";
import { l3NetworkViolations, type NetworkManager } from "../domain/network-manager";
import type { NetworkStore } from "../store/network-store";
import { addressToProto, l3ToProto, nicResultToProto, rangeToProto } from "./convert";

/**
 * NetworkService: the handlers only call the domain. The kit validates each request (limits in
 * network.proto, the rest in `validate`), routes a network's changes to the owner of its UUID and
 * answers retried request ids. Reads, and compute's batches of NIC allocations and releases, are
 * served where they land: each address is settled by its unique key, not by an owner.
 */
export function networkApi(networks: NetworkManager, eips: EipManager, store: NetworkStore): ServiceApi {
  return serviceApi(
    NetworkService,
    {
      async createL3Network(req) {
        const n = await networks.create({ uuid: req.uuid, name: req.name, cidr: req.cidr, gateway: req.gateway, dns: req.dns, public: req.public, clientRequestId: req.clientRequestId });
        return { l3Network: l3ToProto(n) };
      },
      async getL3Network(req) {
        return { l3Network: l3ToProto(await networks.get(req.uuid)) };
      },
      async listL3Networks(req) {
        const filters = { public: req.public };
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(req.public === undefined ? {} : { public: req.public }), afterSeq: decodePageToken(req.pageToken, filters), limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { l3Networks: page.map(l3ToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, filters) : "" };
      },
      async deleteL3Network(req) {
        await networks.delete(req.uuid);
        return {};
      },
      async addIpRange(req) {
        const r = await networks.addRange({ uuid: req.uuid, l3NetworkUuid: req.l3NetworkUuid, startIp: req.startIp, endIp: req.endIp, clientRequestId: req.clientRequestId });
        return { ipRange: rangeToProto(r) };
      },
      async listIpRanges(req) {
        return { ipRanges: (await networks.ranges(req.l3NetworkUuid)).map(rangeToProto) };
      },
      async deleteIpRange(req) {
        await networks.deleteRange(req.uuid);
        return {};
      },
      async listIpAddresses(req) {
        const filters = { l3NetworkUuid: req.l3NetworkUuid };
        const limit = pageSize(req.pageSize);
        await networks.get(req.l3NetworkUuid);
        // The position is the last address's integer + 1 (0 = none): addresses are unique per network.
        const after = decodePageToken(req.pageToken, filters) - 1;
        const rows = await store.addresses(req.l3NetworkUuid, after, limit + 1);
        const page = rows.slice(0, limit);
        return { ipAddresses: page.map(addressToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.ipInt + 1, filters) : "" };
      },
      async allocateNicIps(req) {
        const outcomes = await networks.allocateNics(req.nics.map((n) => ({ nicUuid: n.nicUuid, vmUuid: n.vmUuid, l3NetworkUuid: n.l3NetworkUuid, ip: n.ip })));
        return { results: outcomes.map(nicResultToProto) };
      },
      async releaseVmNics(req) {
        const { released, detached } = await eips.releaseVmNics(req.vmUuids);
        return { released: released.map(addressToProto), detachedEipUuids: detached };
      },
      async changeNicIp(req) {
        const { address, network } = await networks.changeNicIp(req.nicUuid, req.ip);
        return { result: nicResultToProto({ nicUuid: req.nicUuid, address, network }) };
      },
    },
    {
      createL3Network: {
        validate: (r, v) => {
          for (const x of l3NetworkViolations(r.cidr, r.gateway)) v.add(x.field, x.description);
        },
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("l3-network", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listL3Networks: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, { public: r.public }) },
      deleteL3Network: mutationOf(),
      addIpRange: {
        validate: (r, v) => {
          if (r.startIp && r.endIp) v.check(ipToInt(r.startIp) <= ipToInt(r.endIp), "end_ip", `end_ip ${r.endIp} is before start_ip ${r.startIp}`);
        },
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("ip-range", r) }),
        // A network's ranges change one at a time, on the network's owner.
        owner: (r) => r.l3NetworkUuid,
        requestId: (r) => r.clientRequestId,
      },
      deleteIpRange: mutationOf(),
      listIpAddresses: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, { l3NetworkUuid: r.l3NetworkUuid }) },
      // No owner and no request id: idempotent per NIC, served where the call lands.
      allocateNicIps: {
        validate: (r, v) => {
          const seen = new Set<string>();
          r.nics.forEach((n, i) => {
            v.check(!seen.has(n.nicUuid), `nics[${i}].nic_uuid`, `NIC ${n.nicUuid} is named more than once`);
            seen.add(n.nicUuid);
          });
        },
      },
      changeNicIp: { owner: (r) => r.nicUuid, requestId: (r) => r.clientRequestId },
    },
  );
}
