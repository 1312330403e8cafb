import type { ServiceRouter } from "@stratum/bus";
import type { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";

/** A host whose agent a service talks to. */
export interface AgentHost {
  readonly uuid: string;
  readonly agentUrl: string;
}

const CALL_TIMEOUT_MS = 10_000;
/** How long a host's agent URL is reused without asking compute again. */
export const HOST_URL_TTL_MS = 5_000;
/** Hosts remembered at most: the oldest is forgotten first. */
const MAX_REMEMBERED = 10_000;

/**
 * Where hosts' agents are, asked of compute (it owns hosts), for the services that drive agents
 * besides compute (storage's volume tasks, network's EIP rules). A host's URL is reused for
 * {@link HOST_URL_TTL_MS}: it changes only when the host is re-added, and lookups sit on the
 * critical path of a migration's wait and of every EIP apply.
 */
export class HostDirectory {
  readonly #urls = new Map<string, { host: AgentHost; until: number }>();

  constructor(
    private readonly hosts: ServiceRouter<typeof HostService>,
    private readonly ttlMs = HOST_URL_TTL_MS,
  ) {}

  /** The host's agent; NOT_FOUND (compute's error) for a host compute does not know. */
  async host(uuid: string, signal?: AbortSignal): Promise<AgentHost> {
    signal?.throwIfAborted();
    const known = this.#urls.get(uuid);
    if (known && known.until > Date.now()) return known.host;
    const { host } = await this.hosts.call(uuid, (c) => c.getHost({ uuid }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
    const found = { uuid: host!.uuid, agentUrl: host!.agentUrl };
    this.#urls.set(uuid, { host: found, until: Date.now() + this.ttlMs });
    if (this.#urls.size > MAX_REMEMBERED) this.#urls.delete(this.#urls.keys().next().value!);
    return found;
  }

  /** Every Connected host, from compute. */
  async connected(signal?: AbortSignal): Promise<AgentHost[]> {
    const out: AgentHost[] = [];
    let pageToken = "";
    do {
      // A listing is answered by any replica: the routing key only picks one.
      const page = await this.hosts.call("hosts", (c) => c.listHosts({ status: HostStatus.CONNECTED, pageSize: 1000, pageToken }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      out.push(...page.hosts.map((h) => ({ uuid: h.uuid, agentUrl: h.agentUrl })));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }
}
