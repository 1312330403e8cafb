import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { Violations, type ServiceImpl } from "@stratum/rpc";
import type { HostManager } from "../domain/host-manager";
import type { HostStore } from "../store/host-store";
import { decodePageToken, encodePageToken, MAX_PAGE_SIZE, pageSize } from "../store/page";
import { HOST_STATE_FROM_PROTO, HOST_STATUS_FROM_PROTO, hostToProto } from "./convert";
import { enumField, MIB, nameField, requestIdField, uuidField } from "./validate";

const MAX_HOST_MEMORY = 1024n * 1024n * 1024n * MIB; // 1 PiB

/** gRPC handlers of HostService: validate the request, then call the domain. */
export function hostHandlers(manager: HostManager, store: HostStore): ServiceImpl<typeof HostService> {
  const byUuid = (uuid: string) => {
    const v = new Violations();
    uuidField(v, "uuid", uuid, true);
    v.throwIfAny();
  };
  return {
    async addHost(req, ctx) {
      const v = new Violations();
      nameField(v, "name", req.name);
      v.required("agent_url", req.agentUrl);
      const agentUrl = req.agentUrl ? agentOrigin(req.agentUrl) : undefined;
      if (req.agentUrl) v.check(agentUrl !== undefined, "agent_url", "must be an http(s) URL of the agent with no path, query or credentials, such as http://10.0.0.5:7070");
      v.range("cpu_capacity", req.cpuCapacity, 1, 100_000);
      v.range("memory_capacity_bytes", req.memoryCapacityBytes, 64n * MIB, MAX_HOST_MEMORY);
      requestIdField(v, "client_request_id", req.clientRequestId);
      uuidField(v, "uuid", req.uuid, false);
      v.throwIfAny();
      const host = await manager.add(
        {
          uuid: req.uuid,
          name: req.name,
          agentUrl: agentUrl!,
          cpuCapacity: req.cpuCapacity,
          memoryCapacity: Number(req.memoryCapacityBytes),
          clientRequestId: req.clientRequestId,
        },
        ctx.signal,
      );
      return { host: hostToProto(host) };
    },
    async getHost(req) {
      byUuid(req.uuid);
      return { host: hostToProto(await manager.get(req.uuid)) };
    },
    async listHosts(req) {
      const v = new Violations();
      const status = enumField(v, "status", req.status, HOST_STATUS_FROM_PROTO, true);
      v.range("page_size", req.pageSize, 0, MAX_PAGE_SIZE);
      v.throwIfAny();
      const afterSeq = decodePageToken(req.pageToken);
      const limit = pageSize(req.pageSize);
      const rows = await store.list({ ...(status ? { status } : {}), afterSeq, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { hosts: page.map(hostToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq) : "" };
    },
    async reconnectHost(req, ctx) {
      byUuid(req.uuid);
      return { host: hostToProto(await manager.reconnect(req.uuid, ctx.signal)) };
    },
    async changeHostState(req, ctx) {
      const v = new Violations();
      uuidField(v, "uuid", req.uuid, true);
      const state = enumField(v, "state", req.state, HOST_STATE_FROM_PROTO, false);
      v.throwIfAny();
      return { host: hostToProto(await manager.changeState(req.uuid, state!, ctx.signal)) };
    },
    async deleteHost(req, ctx) {
      byUuid(req.uuid);
      await manager.delete(req.uuid, ctx.signal);
      return {};
    },
  };
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
