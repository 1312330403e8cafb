import { createHash } from "node:crypto";
import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import type { AgentHost, HostDirectory } from "@stratum/agent-client";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";

export type { AgentHost } from "@stratum/agent-client";

/** What a volume's placement says about where its agent is. */
export interface VolumePlacement {
  readonly uuid: string;
  /** The VM it is attached to, if any. */
  readonly vmUuid: string | null;
  /** The host of its primary storage when that storage is local to one. */
  readonly storageHostUuid: string | null;
}

/** Where a volume's tasks run: the host, and the VM through which it was found (the volume is its disk there). */
export interface VolumeAgent {
  readonly host: AgentHost;
  /** Set when the host is the one of the VM the volume is attached to: the agent runs the task as that VM's. */
  readonly vmUuid?: string;
}

const CALL_TIMEOUT_MS = 10_000;

/**
 * Where a volume's agent is, asked of compute (it owns hosts and VMs): the host of the VM the
 * volume is attached to; else the host of its local storage; else a Connected host chosen by
 * rendezvous hashing of the volume's UUID, so every replica (and a resumed job) picks the same
 * one while the set of connected hosts is the same.
 */
export class HostLocator {
  constructor(
    private readonly hosts: HostDirectory,
    private readonly vms: ServiceRouter<typeof VmService>,
  ) {}

  /** The host's agent (see HostDirectory: reused for a few seconds). */
  host(uuid: string, signal?: AbortSignal): Promise<AgentHost> {
    return this.hosts.host(uuid, signal);
  }

  async locate(v: VolumePlacement, signal?: AbortSignal): Promise<AgentHost> {
    return (await this.place(v, signal)).host;
  }

  /** As {@link locate}, saying also which VM's host it is, when the volume's VM gave it. */
  async place(v: VolumePlacement, signal?: AbortSignal): Promise<VolumeAgent> {
    if (v.vmUuid) {
      const { vm } = await this.vms.call(v.vmUuid, (c) => c.getVm({ uuid: v.vmUuid! }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      if (vm?.hostUuid) return { host: await this.host(vm.hostUuid, signal), vmUuid: v.vmUuid };
    }
    return { host: await this.#unattached(v, signal) };
  }

  async #unattached(v: VolumePlacement, signal?: AbortSignal): Promise<AgentHost> {
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

  connected(signal?: AbortSignal): Promise<AgentHost[]> {
    return this.hosts.connected(signal);
  }
}
