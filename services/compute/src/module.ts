import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import type { ServiceModule } from "@stratum/runtime";
import { JobExecutor } from "@stratum/jobs";
import { JobControlService, LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { HostAgents } from "./clients/agents";
import { migrationPeers } from "./clients/peers";
import { COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./config";
import { HostManager } from "./domain/host-manager";
import { migrateJob } from "./domain/migrate-job";
import { MIGRATION_STEPS } from "./domain/migration-steps";
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
      const peers = migrationPeers(ctx.peers("longjob").for(LongJobService), ctx.peers("storage").for(StorageService));
      const takeover = new VmReconciler({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, log: ctx.log, owns, isLive, incarnation, busy: (uuid) => vms.busy(uuid), peers });
      const vms = new VmManager({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, log: ctx.log, incarnation, isLive, repair: (uuid) => takeover.repair(uuid) });
      const hosts = new HostManager({ hosts: hostStore, vms: vmStore, agents, queue: ctx.queue, log: ctx.log });
      // Long jobs compute implements (compute.migrate), run in the VM's own queue on its owner.
      const executor = new JobExecutor({
        service: "compute",
        types: [migrateJob({ vms: vmStore, hosts: hostStore, agents, peers, steps: MIGRATION_STEPS, backupWaitMs: ctx.settings.STRATUM_MIGRATE_BACKUP_WAIT_MS, incarnation })],
        bus: ctx.bus,
        queue: ctx.queue,
        log: ctx.log,
        incarnation,
        longjob: ctx.peers("longjob").for(JobControlService),
      });
      return {
        services: [vmApi(vms, vmStore, ctx.bus, { vms: vmStore, hosts: hostStore, peers }), hostApi(hosts, hostStore), executor.api],
        start() {
          hosts.startPinging(owns, ctx.settings.STRATUM_PING_INTERVAL_MS);
          takeover.start(ctx.ownership.onChange);
          executor.start();
        },
        drain: () => executor.drain(),
        async stop() {
          executor.stop();
          takeover.stop();
          hosts.stopPinging();
          await agentClient.close();
        },
      };
    },
  };
}

