import type { AgentClient } from "@stratum/agent-client";
import type { ChainTaskQueue } from "@stratum/chain-task";

/** What the compute service needs to know of a host to talk to its agent. */
export interface AgentHost {
  readonly uuid: string;
  readonly agentUrl: string;
}

/** Facts the agent reports on connect (the subset compute keeps). */
export interface ConnectReply {
  hostUuid: string;
  bootId: string;
  cpuNum: number;
  memoryBytes: number;
}

export interface PingReply {
  bootId: string;
}

/** What the hypervisor runs, as its agent reports it. */
export interface VmsReply {
  vms: Array<{ vmUuid: string; state: "running" | "stopped" }>;
}

/** Default of how many agent commands one replica sends one host at once. */
export const DEFAULT_HOST_SYNC_LEVEL = 16;

/**
 * The compute service's calls to host agents. Every command to a host runs in the replica's
 * chain-task queue under `host-agent-<uuid>` with the host's sync level, so a burst of VM
 * operations cannot open hundreds of requests against one hypervisor (ZStack bounds per-host
 * concurrency the same way). VM commands carry a task id, which makes them safe for the agent
 * client to retry and for the agent to deduplicate.
 */
export class HostAgents {
  constructor(
    private readonly client: AgentClient,
    private readonly queue: ChainTaskQueue,
    private readonly hostSyncLevel = DEFAULT_HOST_SYNC_LEVEL,
  ) {}

  connect(host: AgentHost, signal?: AbortSignal): Promise<ConnectReply> {
    return this.#send<ConnectReply>(host, "host/connect", { hostUuid: host.uuid }, undefined, signal);
  }

  ping(host: AgentHost, signal?: AbortSignal): Promise<PingReply> {
    return this.#send<PingReply>(host, "host/ping", { hostUuid: host.uuid }, undefined, signal);
  }

  /** The VMs the host runs, for the VM state sync after a reconnect. */
  vms(host: AgentHost, signal?: AbortSignal): Promise<VmsReply> {
    return this.#send<VmsReply>(host, "host/vms", {}, undefined, signal);
  }

  /** A VM lifecycle command; `taskId` names this one operation so a retry runs once on the agent. */
  vm(host: AgentHost, command: "vm/start" | "vm/stop" | "vm/reboot" | "vm/destroy", body: Record<string, unknown>, taskId: string, signal?: AbortSignal): Promise<unknown> {
    return this.#send(host, command, body, taskId, signal);
  }

  #send<T>(host: AgentHost, command: string, body: unknown, taskId: string | undefined, signal: AbortSignal | undefined): Promise<T> {
    return this.queue.submit(
      {
        signature: `host-agent-${host.uuid}`,
        syncLevel: this.hostSyncLevel,
        name: command,
        run: () => this.client.call<T>(host.agentUrl, command, body, { hostUuid: host.uuid, ...(taskId ? { taskId } : {}), ...(signal ? { signal } : {}) }),
      },
      signal ? { signal } : undefined,
    );
  }
}
