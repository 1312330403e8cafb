import { StratumError } from "@stratum/core";
import { VOLUME_TASK_WAIT_MAX_MS } from "@stratum/agent-protocol";
import type { AgentHost, HostLocator } from "../clients/hosts";
import type { HostVolumeTask, VolumeAgents } from "../clients/volume-agents";
import type { BackupStore } from "../store/backup-store";
import type { VolumeStore } from "../store/volume-store";
import { placementOf } from "./volume-placement";

interface HostVolumes {
  host: AgentHost;
  volumeUuids: string[];
}

/**
 * Which tasks run on which volumes, asked of the agents that run them: each volume's agent (see
 * HostLocator), plus the host a backup or restore job of the volume recorded for its task (the
 * volume may have been attached elsewhere since). One call per agent, for all its volumes.
 */
export class VolumeTaskDirectory {
  constructor(
    private readonly volumes: VolumeStore,
    private readonly backups: BackupStore,
    private readonly locator: HostLocator,
    private readonly agents: VolumeAgents,
  ) {}

  async list(volumeUuids: readonly string[], kinds: readonly string[], signal?: AbortSignal): Promise<HostVolumeTask[]> {
    const groups = await this.#byAgent(volumeUuids, signal);
    const lists = await Promise.all(groups.map(async (g) => {
      const on = new Set(g.volumeUuids);
      return (await this.agents.running(g.host, signal)).filter((t) => on.has(t.volumeUuid) && (kinds.length === 0 || kinds.includes(t.kind)));
    }));
    return lists.flat();
  }

  /**
   * Long-polls every agent of the volumes with `volume/task/wait` (each round at most the agent's
   * longest wait, sent again until `timeoutMs`): answered by the agent on the tasks' exit, so the
   * caller hears of the last exit within a round trip. Exited only when no agent has a matching
   * task running; the caller hanging up (`signal`) aborts every pending long-poll at once.
   */
  async wait(volumeUuids: readonly string[], kinds: readonly string[], timeoutMs: number, signal?: AbortSignal, hostUuid?: string): Promise<{ exited: boolean; running: HostVolumeTask[] }> {
    const deadline = Date.now() + timeoutMs;
    const groups = hostUuid ? await this.#onHost(hostUuid, volumeUuids, signal) : await this.#byAgent(volumeUuids, signal);
    const still = await Promise.all(groups.map(async (g) => {
      for (;;) {
        const left = Math.max(0, deadline - Date.now());
        const reply = await this.agents.wait(g.host, { volumeUuids: g.volumeUuids, ...(kinds.length > 0 ? { kinds: [...kinds] } : {}), timeoutMs: Math.min(left, VOLUME_TASK_WAIT_MAX_MS) }, signal);
        if (reply.exited) return [];
        if (Date.now() >= deadline) return reply.running.map((t) => ({ ...t, hostUuid: g.host.uuid }));
      }
    }));
    const running = still.flat();
    return { exited: running.length === 0, running };
  }

  /**
   * The caller says where the volumes are (compute, for a VM's disks): that agent for all of them,
   * without locating each volume through compute — the hops a migration waits on otherwise —
   * plus the hosts storage recorded for its own tasks on them (a backup started elsewhere).
   */
  async #onHost(hostUuid: string, volumeUuids: readonly string[], signal?: AbortSignal): Promise<HostVolumes[]> {
    const uuids = [...new Set(volumeUuids)];
    const [host, recorded] = await Promise.all([
      this.locator.host(hostUuid, signal),
      this.backups.activeTasksOn(uuids),
      // Local reads only: an unknown volume is still NOT_FOUND, as without the hint.
      ...uuids.map(async (uuid) => {
        if (!(await this.volumes.get(uuid))) throw StratumError.notFound("volume", uuid);
      }),
    ]);
    const groups = new Map<string, HostVolumes>([[host.uuid, { host, volumeUuids: uuids }]]);
    for (const t of recorded) {
      if (groups.has(t.hostUuid)) continue;
      const other = await this.locator.host(t.hostUuid, signal);
      groups.set(other.uuid, { host: other, volumeUuids: recorded.filter((r) => r.hostUuid === t.hostUuid).map((r) => r.volumeUuid) });
    }
    return [...groups.values()];
  }

  async #byAgent(volumeUuids: readonly string[], signal?: AbortSignal): Promise<HostVolumes[]> {
    const uuids = [...new Set(volumeUuids)];
    const groups = new Map<string, HostVolumes>();
    const add = (host: AgentHost, volumeUuid: string) => {
      const g = groups.get(host.uuid) ?? { host, volumeUuids: [] };
      if (!g.volumeUuids.includes(volumeUuid)) g.volumeUuids.push(volumeUuid);
      groups.set(host.uuid, g);
    };
    const rows = await Promise.all(uuids.map(async (uuid) => {
      const v = await this.volumes.get(uuid);
      if (!v) throw StratumError.notFound("volume", uuid);
      return v;
    }));
    await Promise.all(rows.filter((v) => v.state !== "Deleted").map(async (v) => add(await this.locator.locate(await placementOf(this.volumes, v), signal), v.uuid)));
    for (const t of await this.backups.activeTasksOn(uuids)) {
      if (!groups.has(t.hostUuid)) add(await this.locator.host(t.hostUuid, signal), t.volumeUuid);
      else add(groups.get(t.hostUuid)!.host, t.volumeUuid);
    }
    return [...groups.values()];
  }
}
