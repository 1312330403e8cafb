import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import type { ServiceModule } from "@stratum/runtime";
import { JobExecutor } from "@stratum/jobs";
import { JobControlService, LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { HostAgents } from "./clients/agents";
import { migrationPeers } from "./clients/peers";
import { vmVolumes } from "./clients/volumes";
import { COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./config";
import { HostManager } from "./domain/host-manager";
import { migrateJob } from "./domain/migrate-job";
import { MIGRATION_STEPS } from "./domain/migration-steps";
import { RootVolumeBatcher } from "./domain/root-volume-batcher";
import { VmManager } from "./domain/vm-manager";
import { VmReconciler } from "./domain/vm-reconciler";
import { VolumeReleaser } from "./domain/volume-releaser";
import { hostApi } from "./server/host-handlers";
import { vmApi } from "./server/vm-handlers";
import { HostStore } from "./store/host-store";
import { tables } from "./store/schema";
import { VmStore } from "./store/vm-store";
import { VolumeReleaseStore } from "./store/volume-release-store";

/**
 * The compute service: hosts and VMs. VM and host mutations are routed to the replica that owns
 * the resource's UUID and run there in its chain-task queue (a VM operation answers once it is
 * accepted, its agent work runs after); reads and WatchVm are answered by any replica from
 * Postgres, the source of truth, and the VM's events. A VM's root volume is storage's: a create
 * gets it before it answers, a destroy releases it after the agent destroyed the VM. `agent` tunes the agent client (tests shorten deadlines).
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
      const volumes = vmVolumes(ctx.peers("storage").for(StorageService));
      const rootVolumes = new RootVolumeBatcher({ vms: vmStore, volumes, log: ctx.log });
      const releaser = new VolumeReleaser({ store: new VolumeReleaseStore(ctx.db), volumes, log: ctx.log });
      const vms = new VmManager({
        vms: vmStore,
        hosts: hostStore,
        agents,
        queue: ctx.queue,
        log: ctx.log,
        incarnation,
        isLive,
        repair: (uuid) => takeover.repair(uuid),
        rootVolumes,
        volumesToRelease: () => releaser.kick(),
      });
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
          releaser.start();
        },
        drain: () => executor.drain(),
        async stop() {
          executor.stop();
          takeover.stop();
          await releaser.stop();
          hosts.stopPinging();
          await agentClient.close();
        },
      };
    },
  };
}

