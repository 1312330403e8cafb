import type {
  AgentClient, AgentCommand, AgentReply, AgentRequest, HostConnectReply, HostPingReply, HostVmsReply, VmRefCommand, VmStartRequest,
} from "@stratum/agent-client";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { currentWork } from "@stratum/core";

/** What the compute service needs to know of a host to talk to its agent. */
export interface AgentHost {
  readonly uuid: string;
  readonly agentUrl: string;
  /** The host's fencing token as read (`hosts.fence`): sent with the host's own commands when known. */
  readonly fence?: number;
}

/**
 * Facts the agent reports on connect, as the protocol defines them; `cpuNum` and `memoryBytes`
 * are what the host really has, the bound of any capacity registered for it.
 */
export type ConnectReply = HostConnectReply;
export type PingReply = HostPingReply;
/** What the hypervisor runs, as its agent reports it. */
export type VmsReply = HostVmsReply;

/** The VM lifecycle commands compute sends, and the body each takes. */
export type VmCommand = "vm/start" | VmRefCommand;
export type VmCommandBody<C extends VmCommand> = C extends "vm/start" ? VmStartRequest : AgentRequest<C>;

/**
 * Per-call bound tighter than the command's policy: the call's deadline is the smaller of the two.
 * The pinger uses it so that its probes and handshakes fit in one ping interval whatever the
 * policy says (see `HostManager`), while explicit calls keep the policy's deadline.
 */
export interface HostCallBound {
  atMostMs?: number;
}

/** A fencing token for one resource (`vm:<uuid>`, `host:<uuid>`), as the agent client sends it. */
export interface Fence {
  resource: string;
  token: number;
}

/** The host's own fence, when the caller read it (`hosts.fence`). */
function hostFence(host: AgentHost): Fence | undefined {
  return host.fence === undefined ? undefined : { resource: `host:${host.uuid}`, token: host.fence };
}

/** A VM's fence, as the sender's last write of the VM returned it (`vms.fence`). */
export function fenceOf(vm: { uuid: string; fence: number }): Fence {
  return { resource: `vm:${vm.uuid}`, token: vm.fence };
}

/** Default of how many agent commands one replica sends one host at once. */
export const DEFAULT_HOST_SYNC_LEVEL = 16;

/**
 * The compute service's calls to host agents, typed by the agent protocol. Every command to a
 * host runs in the replica's chain-task queue under `host-agent-<uuid>` with the host's sync
 * level, so a burst of VM operations cannot open hundreds of requests against one hypervisor
 * (ZStack bounds per-host concurrency the same way). VM commands carry a task id, which makes
 * them safe for the agent client to retry and for the agent to deduplicate.
 */
export class HostAgents {
  constructor(
    private readonly client: AgentClient,
    private readonly queue: ChainTaskQueue,
    private readonly hostSyncLevel = DEFAULT_HOST_SYNC_LEVEL,
  ) {}

  connect(host: AgentHost, signal?: AbortSignal, bound?: HostCallBound): Promise<ConnectReply> {
    return this.#send(host, "host/connect", { hostUuid: host.uuid }, undefined, signal, bound, hostFence(host));
  }

  ping(host: AgentHost, signal?: AbortSignal, bound?: HostCallBound): Promise<PingReply> {
    return this.#send(host, "host/ping", { hostUuid: host.uuid }, undefined, signal, bound, hostFence(host));
  }

  /**
   * The VMs the host runs, for the VM state sync after a reconnect. `fencedFor` (a takeover asking
   * about one VM) sends that VM's fence: the agent answers after any older command on it has
   * ended, and refuses the old owner's commands from then on.
   */
  vms(host: AgentHost, signal?: AbortSignal, fencedFor?: Fence): Promise<VmsReply> {
    return this.#send(host, "host/vms", {}, undefined, signal, undefined, fencedFor ?? hostFence(host));
  }

  /**
   * A VM lifecycle command; `taskId` names this one operation so a retry runs once on the agent,
   * `fence` is the VM's fencing token as the sender's last write of it returned (`vms.fence`).
   */
  vm<C extends VmCommand>(host: AgentHost, command: C, body: VmCommandBody<C>, taskId: string, fence: Fence, signal?: AbortSignal): Promise<AgentReply<C>>;
  /**
   * @deprecated An untyped body, for callers that build it as a plain record (the domain's
   * `startBody`): type it as `VmStartRequest` / `VmRefRequest` and this overload can go.
   */
  vm(host: AgentHost, command: VmCommand, body: Record<string, unknown>, taskId: string, fence: Fence, signal?: AbortSignal): Promise<unknown>;
  vm(host: AgentHost, command: VmCommand, body: VmCommandBody<VmCommand> | Record<string, unknown>, taskId: string, fence: Fence, signal?: AbortSignal): Promise<unknown> {
    return this.#send(host, command, body as AgentRequest<VmCommand>, taskId, signal, undefined, fence);
  }

  /**
   * Live-migrates a VM from `source` to `target` (`vm/migrate`): answers when the memory copy has
   * ended. `taskId` names the migration, so a resumed job joins (or reads) the first one instead of
   * starting a second. No abort signal on purpose: dropping the request would leave the copy
   * running with its outcome unknown; a cancel aborts the copy on the agent ({@link migrateAbort}).
   */
  migrate(source: AgentHost, target: AgentHost, volumeUuids: string[], vmUuid: string, taskId: string, fence: Fence): Promise<AgentReply<"vm/migrate">> {
    return this.#send(source, "vm/migrate", { vmUuid, targetAgentUrl: target.agentUrl, volumeUuids }, taskId, undefined, undefined, fence);
  }

  /** The VM's last migration from this host: its state and how much memory is copied. */
  migrateStatus(source: AgentHost, vmUuid: string, signal?: AbortSignal): Promise<AgentReply<"vm/migrate/status">> {
    return this.#send(source, "vm/migrate/status", { vmUuid }, undefined, signal);
  }

  /** Aborts the VM's memory copy from this host (Nova's abort); `aborted` false when none ran. */
  migrateAbort(source: AgentHost, vmUuid: string, fence: Fence): Promise<AgentReply<"vm/migrate/abort">> {
    return this.#send(source, "vm/migrate/abort", { vmUuid }, undefined, undefined, undefined, fence);
  }

  #send<C extends AgentCommand>(
    host: AgentHost, command: C, body: AgentRequest<C>, taskId: string | undefined, signal: AbortSignal | undefined, bound?: HostCallBound, fence?: Fence,
  ): Promise<AgentReply<C>> {
    // Taken now, at submission: the queue may run the call later, under another caller's turn.
    const requestId = currentWork()?.requestId;
    const timeoutMs = bound?.atMostMs === undefined ? undefined : Math.min(this.client.policyOf(command).timeoutMs, bound.atMostMs);
    return this.queue.submit(
      {
        signature: `host-agent-${host.uuid}`,
        syncLevel: this.hostSyncLevel,
        name: command,
        run: () => this.client.call(host.agentUrl, command, body, {
          hostUuid: host.uuid, ...(taskId ? { taskId } : {}), ...(requestId ? { requestId } : {}), ...(signal ? { signal } : {}),
          ...(fence ? { fence } : {}),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        }),
      },
      signal ? { signal } : undefined,
    );
  }
}
