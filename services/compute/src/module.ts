import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import { routeToOwner, ServiceRouter } from "@stratum/bus";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { implement } from "@stratum/rpc";
import type { ServiceModule } from "@stratum/runtime";
import { DEFAULT_HOST_SYNC_LEVEL, HostAgents } from "./clients/agents";
import { ComputeEvents } from "./domain/events";
import { DEFAULT_PING_INTERVAL_MS, HostManager } from "./domain/host-manager";
import { assignUuid } from "./domain/ids";
import { VmManager } from "./domain/vm-manager";
import { hostHandlers } from "./server/host-handlers";
import { vmHandlers } from "./server/vm-handlers";
import { HostStore } from "./store/host-store";
import { tables } from "./store/schema";
import { VmStore } from "./store/vm-store";

export interface ComputeOptions {
  /** Period of the owner's pings to each host. Default {@link DEFAULT_PING_INTERVAL_MS}. */
  pingIntervalMs?: number;
  /** Agent commands one replica sends one host at once. Default {@link DEFAULT_HOST_SYNC_LEVEL}. */
  hostSyncLevel?: number;
  /** Agent client settings (keep-alive cap, per-command timeouts). */
  agent?: AgentClientOptions;
}

/**
 * The compute service: hosts and VMs. VM and host mutations are routed to the replica that owns
 * the resource's UUID and run there in its chain-task queue; reads are answered by any replica
 * from Postgres, the source of truth.
 */
export function computeModule(options: ComputeOptions = {}): ServiceModule<typeof tables> {
  return {
    name: "compute",
    // Above the longest agent command (vm/start, vm/reboot: 2 min) plus its queueing and the
    // cleanup of a failed start, so the agent's own, precise error reaches the caller first.
    taskTimeoutMs: 5 * 60_000,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const agentClient = createAgentClient(options.agent ?? {});
      const events = new ComputeEvents(ctx.events, ctx.log);
      const agents = new HostAgents(agentClient, ctx.queue, options.hostSyncLevel ?? DEFAULT_HOST_SYNC_LEVEL);
      const vmStore = new VmStore(ctx.db);
      const hostStore = new HostStore(ctx.db);
      const vms = new VmManager({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, events, log: ctx.log });
      const hosts = new HostManager({ hosts: hostStore, vms: vmStore, agents, queue: ctx.queue, events, log: ctx.log });

      const vmRouter = new ServiceRouter(ctx.view, "compute", VmService);
      const hostRouter = new ServiceRouter(ctx.view, "compute", HostService);
      const owns = (uuid: string) => ctx.membership()?.owns(uuid) ?? false;
      return {
        services: [
          implement(
            VmService,
            routeToOwner(VmService, vmHandlers(vms, vmStore), {
              membership: ctx.membership,
              router: vmRouter,
              resourceKeys: {
                createVm: (r) => assignUuid("vm", r),
                startVm: (r) => r.uuid,
                stopVm: (r) => r.uuid,
                rebootVm: (r) => r.uuid,
                destroyVm: (r) => r.uuid,
              },
            }),
          ),
          implement(
            HostService,
            routeToOwner(HostService, hostHandlers(hosts, hostStore), {
              membership: ctx.membership,
              router: hostRouter,
              resourceKeys: {
                addHost: (r) => assignUuid("host", r),
                reconnectHost: (r) => r.uuid,
                changeHostState: (r) => r.uuid,
                deleteHost: (r) => r.uuid,
              },
            }),
          ),
        ],
        start() {
          hosts.startPinging(owns, options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
        },
        async stop() {
          hosts.stopPinging();
          vmRouter.close();
          hostRouter.close();
          await agentClient.close();
        },
      };
    },
  };
}
