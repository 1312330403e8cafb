import type { AgentSim, SimHost } from "@stratum/agent-sim";
import type { VolumeTaskInfo } from "@stratum/agent-protocol";

/** Resolves once a sim host has the task (at once if one already has): the host and the task as it started. */
export function untilTaskStarts(sim: AgentSim, taskUuid: string): Promise<{ host: SimHost; task: VolumeTaskInfo }> {
  for (const host of sim.hosts) {
    const task = host.state.volumeTasks.get(taskUuid);
    if (task) return Promise.resolve({ host, task });
  }
  return new Promise((resolve) => {
    const offs: Array<() => void> = [];
    for (const host of sim.hosts) {
      const on = (t: VolumeTaskInfo) => {
        if (t.taskUuid !== taskUuid) return;
        for (const off of offs) off();
        resolve({ host, task: t });
      };
      host.state.volumeTasks.events.on("start", on);
      offs.push(() => host.state.volumeTasks.events.off("start", on));
    }
  });
}

/** Resolves once the task is in `state` on `host`: woken by the task's own events, checked on each. */
export async function untilTaskState(host: SimHost, taskUuid: string, state: string, timeoutMs = 10_000): Promise<VolumeTaskInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = host.state.volumeTasks.get(taskUuid);
    if (t?.state === state) return t;
    if (Date.now() > deadline) throw new Error(`volume task ${taskUuid} is ${t?.state ?? "unknown"}, never ${state}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** How many tasks the sim's hosts ever started (finished ones included). */
export function tasksNamed(sim: AgentSim, taskUuid: string): VolumeTaskInfo[] {
  return sim.hosts.flatMap((h) => h.state.volumeTasks.list({ includeFinished: true }).filter((t) => t.taskUuid === taskUuid));
}
