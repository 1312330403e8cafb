import { randomUUID } from "node:crypto";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import type { HostManager } from "../domain/host-manager";
import { uuidForRequest } from "../domain/ids";
import type { HostStore } from "../store/host-store";
import { decodePageToken, encodePageToken, MAX_PAGE_SIZE, pageSize } from "../store/page";
import { HOST_STATE_FROM_PROTO, HOST_STATUS_FROM_PROTO, hostToProto } from "./convert";
import { mutationOf } from "./rules";
import { enumField, MIB, nameField, requestIdField, uuidField } from "./validate";

const MAX_HOST_MEMORY = 1024n * 1024n * 1024n * MIB; // 1 PiB

/**
 * HostService: the handlers only call the domain; the kit validates each request, routes it to
 * the owner of its host and answers retried request ids, by the rules below.
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
        const afterSeq = decodePageToken(req.pageToken);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(status ? { status } : {}), afterSeq, limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { hosts: page.map(hostToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq) : "" };
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
        validate(r, v) {
          nameField(v, "name", r.name);
          v.required("agent_url", r.agentUrl);
          if (r.agentUrl) v.check(agentOrigin(r.agentUrl) !== undefined, "agent_url", "must be an http(s) URL of the agent with no path, query or credentials, such as http://10.0.0.5:7070");
          v.range("cpu_capacity", r.cpuCapacity, 1, 100_000);
          v.range("memory_capacity_bytes", r.memoryCapacityBytes, 64n * MIB, MAX_HOST_MEMORY);
          requestIdField(v, "client_request_id", r.clientRequestId);
          uuidField(v, "uuid", r.uuid, false);
        },
        // The agent URL in the one form it is stored and compared in; the host's UUID chosen before
        // routing (derived from the request id when there is one, so a retry reaches the same owner).
        normalize: (r) => ({
          ...r,
          agentUrl: agentOrigin(r.agentUrl)!,
          uuid: r.uuid || (r.clientRequestId ? uuidForRequest("host", r.clientRequestId) : randomUUID()),
        }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      getHost: { validate: (r, v) => uuidField(v, "uuid", r.uuid, true) },
      listHosts: {
        validate(r, v) {
          enumField(v, "status", r.status, HOST_STATUS_FROM_PROTO, true);
          v.range("page_size", r.pageSize, 0, MAX_PAGE_SIZE);
        },
      },
      reconnectHost: mutationOf(),
      changeHostState: mutationOf((r, v) => enumField(v, "state", r.state, HOST_STATE_FROM_PROTO, false)),
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
