import type { AgentClient } from "@stratum/agent-client";
import { Code, StratumError } from "@stratum/core";
import type { VolumeTaskInfo, VolumeTaskWaitReply } from "@stratum/agent-protocol";
import type { AgentHost } from "./hosts";

/** A byte task's start, as storage sends it (the agent protocol's byte-counting volume tasks). */
export interface VolumeTaskStart {
  volumeUuid: string;
  kind: string;
  taskUuid: string;
  sizeBytes: number;
  incremental?: boolean;
  /** The VM the volume is a disk of on that host: the agent refuses the task where the VM is not (it moved). */
  vmUuid?: string;
  /** The task's own arguments (the backup, its parent, its storage…): the agent keeps them. */
  args?: Record<string, unknown>;
}

export interface VolumeTaskWait {
  volumeUuids?: string[];
  taskUuids?: string[];
  kinds?: string[];
  timeoutMs: number;
}

/** A volume task as the agent reports it, with the host that runs it. */
export type HostVolumeTask = VolumeTaskInfo & { hostUuid: string };

/**
 * Storage's calls to host agents for volume tasks, typed by the agent protocol. Not queued per
 * host as compute's VM commands are: a `volume/task/wait` is a long-poll that would hold a slot
 * for its whole wait, and these commands are cheap lookups or start a task that runs on its own.
 * Every call takes the caller's signal, so a cancelled job or a caller that hung up aborts it.
 */
export class VolumeAgents {
  constructor(private readonly client: AgentClient) {}

  async start(host: AgentHost, t: VolumeTaskStart, signal?: AbortSignal): Promise<HostVolumeTask> {
    const body = { ...t.args, volumeUuid: t.volumeUuid, kind: t.kind, taskUuid: t.taskUuid, sizeBytes: t.sizeBytes, ...(t.incremental ? { incremental: true } : {}), ...(t.vmUuid ? { vmUuid: t.vmUuid } : {}) };
    // The task uuid is the task id too: a retried start (a lost reply) is answered from the first.
    const { task } = await this.client.call(host.agentUrl, "volume/task/start", body, this.#options(host, signal, `vtask-${t.taskUuid}`));
    return { ...task, hostUuid: host.uuid };
  }

  /** The task, or undefined when the agent does not know it (never started there, or forgotten). */
  async status(host: AgentHost, taskUuid: string, signal?: AbortSignal): Promise<HostVolumeTask | undefined> {
    try {
      const { tasks } = await this.client.call(host.agentUrl, "volume/task/status", { taskUuid }, this.#options(host, signal));
      return tasks[0] ? { ...tasks[0], hostUuid: host.uuid } : undefined;
    } catch (e) {
      if (e instanceof StratumError && e.code === Code.NOT_FOUND && e.resources["agentErrorCode"] === "VOLUME_TASK_NOT_FOUND") return undefined;
      throw e;
    }
  }

  /** The running tasks of the host (every volume, every kind: the caller filters). */
  async running(host: AgentHost, signal?: AbortSignal): Promise<HostVolumeTask[]> {
    const { tasks } = await this.client.call(host.agentUrl, "volume/task/status", {}, this.#options(host, signal));
    return tasks.map((t) => ({ ...t, hostUuid: host.uuid }));
  }

  async cancel(host: AgentHost, taskUuid: string, signal?: AbortSignal): Promise<HostVolumeTask> {
    const { task } = await this.client.call(host.agentUrl, "volume/task/cancel", { taskUuid }, this.#options(host, signal));
    return { ...task, hostUuid: host.uuid };
  }

  /** The long-poll: answers on the exit of the matching tasks, or at `timeoutMs` with those still running. */
  async wait(host: AgentHost, w: VolumeTaskWait, signal?: AbortSignal): Promise<VolumeTaskWaitReply> {
    return this.client.call(host.agentUrl, "volume/task/wait", w as never, this.#options(host, signal));
  }

  close(): Promise<void> {
    return this.client.close();
  }

  #options(host: AgentHost, signal: AbortSignal | undefined, taskId?: string) {
    return { hostUuid: host.uuid, ...(taskId ? { taskId } : {}), ...(signal ? { signal } : {}) };
  }
}
