import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import type { ServiceModule } from "@stratum/runtime";
import { HostAgents } from "./clients/agents";
import { COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./config";
import { HostManager } from "./domain/host-manager";
import { VmManager } from "./domain/vm-manager";
import { VmReconciler } from "./domain/vm-reconciler";
import { hostApi } from "./server/host-handlers";
import { vmApi } from "./server/vm-handlers";
import { HostStore } from "./store/host-store";
import { tables } from "./store/schema";
import { VmStore } from "./store/vm-store";

/**
 * The compute service: hosts and VMs. VM and host mutations are routed to the replica that owns
 * the resource's UUID and run there in its chain-task queue (a VM operation answers once it is
 * accepted, its agent work runs after); reads and WatchVm are answered by any replica from
 * Postgres, the source of truth, and the VM's events. `agent` tunes the agent client (tests shorten deadlines).
 */
export function computeModule(agent: AgentClientOptions = {}): ServiceModule<typeof tables, typeof COMPUTE_ENV> {
  return {
    name: "compute",
    env: COMPUTE_ENV,
    taskTimeoutMs: COMPUTE_TASK_TIMEOUT_MS,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const agentClient = createAgentClient({ logger: ctx.log, onCall: ctx.metrics.onAgentCall, ...agent });
      const agents = new HostAgents(agentClient, ctx.queue, ctx.settings.STRATUM_HOST_SYNC_LEVEL);
      const { owns, isLive, incarnation } = ctx.ownership;
      const [vmStore, hostStore] = [new VmStore(ctx.db, incarnation, ctx.eventsWritten), new HostStore(ctx.db, incarnation, ctx.eventsWritten)];
      const takeover = new VmReconciler({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, log: ctx.log, owns, isLive, incarnation, busy: (uuid) => vms.busy(uuid) });
      const vms = new VmManager({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, log: ctx.log, incarnation, isLive, repair: (uuid) => takeover.repair(uuid) });
      const hosts = new HostManager({ hosts: hostStore, vms: vmStore, agents, queue: ctx.queue, log: ctx.log });
      return {
        services: [vmApi(vms, vmStore, ctx.bus), hostApi(hosts, hostStore)],
        start() {
          hosts.startPinging(owns, ctx.settings.STRATUM_PING_INTERVAL_MS);
          takeover.start(ctx.ownership.onChange);
        },
        async stop() {
          takeover.stop();
          hosts.stopPinging();
          await agentClient.close();
        },
      };
    },
  };
}

