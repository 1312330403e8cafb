import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import type { HostManager } from "../domain/host-manager";
import type { HostStore } from "../store/host-store";
import { HOST_STATE_FROM_PROTO, HOST_STATUS_FROM_PROTO, hostToProto } from "./convert";


/**
 * HostService: the handlers only call the domain. The kit validates each request (the limits
 * are declared in host.proto), routes it to the owner of its host and answers retried request
 * ids, by the rules below.
 */
export function hostApi(manager: HostManager, store: HostStore): ServiceApi {
  return serviceApi(
    HostService,
    {
      async addHost(req, ctx) {
        const host = await manager.add(
          { uuid: req.uuid, name: req.name, agentUrl: req.agentUrl, cpuCapacity: req.cpuCapacity, memoryCapacity: Number(req.memoryCapacityBytes), clientRequestId: req.clientRequestId },
          ctx.signal,
        );
        return { host: hostToProto(host) };
      },
      async getHost(req) {
        return { host: hostToProto(await manager.get(req.uuid)) };
      },
      async listHosts(req) {
        const status = HOST_STATUS_FROM_PROTO.get(req.status);
        const afterSeq = decodePageToken(req.pageToken, { status: req.status });
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(status ? { status } : {}), afterSeq, limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { hosts: page.map(hostToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, { status: req.status }) : "" };
      },
      async reconnectHost(req, ctx) {
        return { host: hostToProto(await manager.reconnect(req.uuid, ctx.signal)) };
      },
      async changeHostState(req, ctx) {
        return { host: hostToProto(await manager.changeState(req.uuid, HOST_STATE_FROM_PROTO.get(req.state)!, ctx.signal)) };
      },
      async deleteHost(req, ctx) {
        await manager.delete(req.uuid, ctx.signal);
        return {};
      },
    },
    {
      addHost: {
        // What a proto rule cannot say: the URL must be an agent's origin, the one form it is kept in.
        validate(r, v) {
          if (r.agentUrl) v.check(agentOrigin(r.agentUrl) !== undefined, "agent_url", "must be an http(s) URL of the agent with no path, query or credentials, such as http://10.0.0.5:7070");
        },
        // The agent URL in the one form it is stored and compared in; the host's UUID chosen before
        // routing (derived from the request id when there is one, so a retry reaches the same owner).
        normalize: (r) => ({
          ...r,
          agentUrl: agentOrigin(r.agentUrl)!,
          uuid: resourceUuid("host", r),
        }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listHosts: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, { status: r.status }) },
      reconnectHost: mutationOf(),
      changeHostState: mutationOf(),
      deleteHost: mutationOf(),
    },
  );
}

/**
 * The agent's origin (`http://10.0.0.5:7070`), the one form it is stored and compared in, so the
 * same agent cannot be registered twice under two spellings (and its capacity counted twice).
 */
function agentOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    const http = url.protocol === "http:" || url.protocol === "https:";
    if (!http || !url.hostname || url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== "")) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}
