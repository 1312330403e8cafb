import { createHash } from "node:crypto";
import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { HostService, HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";

/** A host whose agent storage talks to. */
export interface AgentHost {
  readonly uuid: string;
  readonly agentUrl: string;
}

/** What a volume's placement says about where its agent is. */
export interface VolumePlacement {
  readonly uuid: string;
  /** The VM it is attached to, if any. */
  readonly vmUuid: string | null;
  /** The host of its primary storage when that storage is local to one. */
  readonly storageHostUuid: string | null;
}

const CALL_TIMEOUT_MS = 10_000;
/** How long a host's agent URL is reused without asking compute again. */
export const HOST_URL_TTL_MS = 5_000;

/**
 * Where a volume's agent is, asked of compute (it owns hosts and VMs): the host of the VM the
 * volume is attached to; else the host of its local storage; else a Connected host chosen by
 * rendezvous hashing of the volume's UUID, so every replica (and a resumed job) picks the same
 * one while the set of connected hosts is the same.
 */
export class HostLocator {
  constructor(
    private readonly hosts: ServiceRouter<typeof HostService>,
    private readonly vms: ServiceRouter<typeof VmService>,
  ) {}

  /** Agent URLs looked up recently: a host's URL changes only when it is re-added. */
  readonly #urls = new Map<string, { host: AgentHost; until: number }>();

  /**
   * The host's agent, from compute — or from a lookup of the last {@link HOST_URL_TTL_MS}: a
   * migration's wait for its backups asks on its critical path, and an agent URL outlives that.
   */
  async host(uuid: string, signal?: AbortSignal): Promise<AgentHost> {
    signal?.throwIfAborted();
    const known = this.#urls.get(uuid);
    if (known && known.until > Date.now()) return known.host;
    const { host } = await this.hosts.call(uuid, (c) => c.getHost({ uuid }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
    const found = { uuid: host!.uuid, agentUrl: host!.agentUrl };
    this.#urls.set(uuid, { host: found, until: Date.now() + HOST_URL_TTL_MS });
    if (this.#urls.size > 10_000) this.#urls.delete(this.#urls.keys().next().value!);
    return found;
  }

  async locate(v: VolumePlacement, signal?: AbortSignal): Promise<AgentHost> {
    if (v.vmUuid) {
      const { vm } = await this.vms.call(v.vmUuid, (c) => c.getVm({ uuid: v.vmUuid! }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      if (vm?.hostUuid) return this.host(vm.hostUuid, signal);
    }
    if (v.storageHostUuid) return this.host(v.storageHostUuid, signal);
    const connected = await this.connected(signal);
    if (connected.length === 0) {
      throw new StratumError(Code.FAILED_PRECONDITION, `no connected host can reach volume ${v.uuid}: it is on shared storage, not attached, and no host is connected`, {
        reason: "NO_CONNECTED_HOST",
        resources: { volumeUuid: v.uuid },
      });
    }
    const score = (h: AgentHost) => createHash("sha256").update(`${v.uuid}/${h.uuid}`).digest("hex");
    return connected.reduce((best, h) => (score(h) < score(best) ? h : best));
  }

  async connected(signal?: AbortSignal): Promise<AgentHost[]> {
    const out: AgentHost[] = [];
    let pageToken = "";
    do {
      // A listing is answered by any replica; the ring's owner of the storage service's own name is as good as any.
      const page = await this.hosts.call("storage", (c) => c.listHosts({ status: HostStatus.CONNECTED, pageSize: 1000, pageToken }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      out.push(...page.hosts.map((h) => ({ uuid: h.uuid, agentUrl: h.agentUrl })));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }
}
