import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import { envInt, type ServiceModule } from "@stratum/runtime";
import { DEFAULT_HOST_SYNC_LEVEL, HostAgents } from "./clients/agents";
import { ComputeEvents } from "./domain/events";
import { DEFAULT_PING_INTERVAL_MS, HostManager } from "./domain/host-manager";
import { VmManager } from "./domain/vm-manager";
import { hostApi } from "./server/host-handlers";
import { vmApi } from "./server/vm-handlers";
import { HostStore } from "./store/host-store";
import { tables } from "./store/schema";
import { VmStore } from "./store/vm-store";

/** Compute's own environment variables, read and checked with the runtime's. */
export const COMPUTE_ENV = {
  STRATUM_PING_INTERVAL_MS: envInt(`period of the owner's pings to each host (default ${DEFAULT_PING_INTERVAL_MS})`, DEFAULT_PING_INTERVAL_MS, 100, 3_600_000),
  STRATUM_HOST_SYNC_LEVEL: envInt(`agent commands one replica sends one host at once (default ${DEFAULT_HOST_SYNC_LEVEL})`, DEFAULT_HOST_SYNC_LEVEL, 1, 10_000),
};

/**
 * A VM operation's longest run: its longest agent command (vm/start, vm/reboot: 2 min, retries
 * included) plus the cleanup of a failed start (10 s) and its database steps, so the agent's own,
 * precise error reaches the caller first. Also what a graceful stop waits for (shutdownBudget).
 */
export const COMPUTE_TASK_TIMEOUT_MS = 150_000;

export interface ComputeOptions {
  /** Period of the owner's pings to each host. Default: `STRATUM_PING_INTERVAL_MS`. */
  pingIntervalMs?: number;
  /** Agent commands one replica sends one host at once. Default: `STRATUM_HOST_SYNC_LEVEL`. */
  hostSyncLevel?: number;
  /** Agent client settings (keep-alive cap, per-command timeouts). */
  agent?: AgentClientOptions;
}

/**
 * The compute service: hosts and VMs. VM and host mutations are routed to the replica that owns
 * the resource's UUID and run there in its chain-task queue; reads are answered by any replica
 * from Postgres, the source of truth.
 */
export function computeModule(options: ComputeOptions = {}): ServiceModule<typeof tables, typeof COMPUTE_ENV> {
  return {
    name: "compute",
    env: COMPUTE_ENV,
    taskTimeoutMs: COMPUTE_TASK_TIMEOUT_MS,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const agentClient = createAgentClient({ ...options.agent });
      const events = new ComputeEvents(ctx.events, ctx.log);
      const agents = new HostAgents(agentClient, ctx.queue, options.hostSyncLevel ?? ctx.settings.STRATUM_HOST_SYNC_LEVEL);
      const vmStore = new VmStore(ctx.db);
      const hostStore = new HostStore(ctx.db);
      const vms = new VmManager({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, events, log: ctx.log });
      const hosts = new HostManager({ hosts: hostStore, vms: vmStore, agents, queue: ctx.queue, events, log: ctx.log });
      const owns = (uuid: string) => ctx.membership()?.owns(uuid) ?? false;
      return {
        services: [vmApi(vms, vmStore), hostApi(hosts, hostStore)],
        start() {
          hosts.startPinging(owns, options.pingIntervalMs ?? ctx.settings.STRATUM_PING_INTERVAL_MS);
        },
        async stop() {
          hosts.stopPinging();
          await agentClient.close();
        },
      };
    },
  };
}
