import { fileURLToPath } from "node:url";
import { createAgentClient, HostDirectory, type AgentClientOptions } from "@stratum/agent-client";
import { JobExecutor, LongJobClient } from "@stratum/jobs";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobControlService, LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { ServiceModule } from "@stratum/runtime";
import { HostLocator } from "./clients/hosts";
import { VolumeAgents } from "./clients/volume-agents";
import { backupJob } from "./domain/backup-job";
import { BackupManager } from "./domain/backup-manager";
import { restoreJob } from "./domain/restore-job";
import { BackupRepair } from "./domain/backup-repair";
import { RootVolumes } from "./domain/root-volumes";
import { VolumeManager } from "./domain/volume-manager";
import { VolumeTaskRuns } from "./domain/volume-task-run";
import { VolumeTaskDirectory } from "./domain/volume-tasks";
import { backupApi } from "./server/backup-handlers";
import { storageApi } from "./server/storage-handlers";
import { BackupStore } from "./store/backup-store";
import { RootVolumeStore } from "./store/root-volume-store";
import { tables } from "./store/schema";
import { VolumeStore } from "./store/volume-store";

/**
 * The storage service: primary storages with their capacity, the volumes on them, and backups.
 * A volume's mutations run on the owner of its UUID (storage's ring), in its chain-task queue;
 * capacity is reserved and given back in the statements that change the volumes and backups.
 * Backups and restores are long jobs (longjob keeps their records) run here by the kit's
 * executor on the owner of the volume, through byte tasks on the volume's agent, which compute
 * says where it is. `agent` tunes the agent client (tests shorten deadlines).
 */
export function storageModule(agent: AgentClientOptions = {}): ServiceModule<typeof tables> {
  return {
    name: "storage",
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const store = new VolumeStore(ctx.db, ctx.ownership.incarnation, ctx.eventsWritten);
      const backups = new BackupStore(ctx.db, ctx.ownership.incarnation, ctx.eventsWritten);
      const manager = new VolumeManager({ store, queue: ctx.queue, log: ctx.log });
      const agents = new VolumeAgents(createAgentClient({ logger: ctx.log, onCall: ctx.metrics.onAgentCall, ...agent }));
      const locator = new HostLocator(new HostDirectory(ctx.peers("compute").for(HostService)), ctx.peers("compute").for(VmService));
      const jobs = new LongJobClient(ctx.peers("longjob").for(LongJobService));
      const backupManager = new BackupManager({ backups, volumes: store, jobs, queue: ctx.queue, log: ctx.log });
      const runs = new VolumeTaskRuns(agents);
      const jobDeps = { backups, volumes: store, locator, runs };
      const executor = new JobExecutor({
        service: "storage",
        types: [backupJob(jobDeps), restoreJob(jobDeps)],
        bus: ctx.bus,
        queue: ctx.queue,
        log: ctx.log,
        incarnation: ctx.ownership.incarnation,
        longjob: ctx.peers("longjob").for(JobControlService),
      });
      const tasks = new VolumeTaskDirectory(store, backups, locator, agents);
      const repair = new BackupRepair({ backups, jobs, locator, agents, owns: (uuid) => ctx.ownership.owns(uuid), log: ctx.log });
      const roots = new RootVolumes({ store: new RootVolumeStore(ctx.db, ctx.ownership.incarnation, ctx.eventsWritten), log: ctx.log });
      return {
        services: [storageApi(manager, store, tasks, roots), backupApi(backupManager, backups), executor.api],
        start() {
          executor.start();
          repair.start();
        },
        drain: () => executor.drain(),
        async stop() {
          repair.stop();
          executor.stop();
          await agents.close();
        },
      };
    },
  };
}
