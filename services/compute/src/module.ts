import { fileURLToPath } from "node:url";
import { createAgentClient, type AgentClientOptions } from "@stratum/agent-client";
import { Code, StratumError } from "@stratum/core";
import type { ServiceModule } from "@stratum/runtime";
import { JobExecutor } from "@stratum/jobs";
import { JobControlService, LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { HostAgents } from "./clients/agents";
import { vmNetwork } from "./clients/network";
import { migrationPeers } from "./clients/peers";
import { vmVolumes } from "./clients/volumes";
import { COMPUTE_ENV, COMPUTE_TASK_TIMEOUT_MS } from "./config";
import { HostManager } from "./domain/host-manager";
import { MarkDrainer } from "./domain/mark-drainer";
import { migrateJob } from "./domain/migrate-job";
import { migrationSteps } from "./domain/migration-steps";
import { VmManager } from "./domain/vm-manager";
import { VmReconciler } from "./domain/vm-reconciler";
import { VmResourcesBatcher } from "./domain/vm-resources-batcher";
import { hostApi } from "./server/host-handlers";
import { vmApi } from "./server/vm-handlers";
import { HostStore } from "./store/host-store";
import { EIP_SYNCS, HOST_EIP_RECONCILES, MarkStore, NIC_RELEASES, VOLUME_RELEASES } from "./store/mark-store";
import { tables } from "./store/schema";
import { VmStore } from "./store/vm-store";

/**
 * The compute service: hosts and VMs. VM and host mutations are routed to the replica that owns
 * the resource's UUID and run there in its chain-task queue (a VM operation answers once it is
 * accepted, its agent work runs after); reads and WatchVm are answered by any replica from
 * Postgres, the source of truth, and the VM's events. A VM's root volume is storage's and its
 * NICs' addresses network's: a create gets them before it answers, a destroy releases them after
 * the agent destroyed the VM; network learns where each VM with NICs now runs (its EIPs follow)
 * and when a host reconnects, from durable marks. `agent` tunes the agent client (tests shorten deadlines).
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
      const volumes = vmVolumes(ctx.peers("storage").for(StorageService));
      const network = vmNetwork(ctx.peers("network").for(NetworkService), ctx.peers("network").for(EipService));
      // The calls compute owes other services, from the durable marks its changes write.
      const volumeReleases = new MarkDrainer({ what: "release vm volumes", store: new MarkStore(ctx.db, VOLUME_RELEASES), call: (uuids) => volumes.release(uuids), log: ctx.log });
      const nicReleases = new MarkDrainer({ what: "release vm nics", store: new MarkStore(ctx.db, NIC_RELEASES), call: (uuids) => network.releaseVmNics(uuids), log: ctx.log });
      const eipSyncs = new MarkDrainer({ what: "sync vm eips", store: new MarkStore(ctx.db, EIP_SYNCS), call: (uuids) => network.syncVmEips(uuids), log: ctx.log });
      const hostReconciles = new MarkDrainer({ what: "reconcile host eips", store: new MarkStore(ctx.db, HOST_EIP_RECONCILES), call: (uuids) => reconcileEach(uuids, (h) => network.reconcileHostEips(h)), log: ctx.log });
      const drainers = [volumeReleases, nicReleases, eipSyncs, hostReconciles];
      const vmStore = new VmStore(ctx.db, incarnation, ctx.eventsWritten, {
        nicVmMoved: (vm) => {
          eipSyncs.kick();
          if (vm.state === "Destroyed") nicReleases.kick();
        },
      });
      const hostStore = new HostStore(ctx.db, incarnation, ctx.eventsWritten);
      const peers = migrationPeers(ctx.peers("longjob").for(LongJobService), ctx.peers("storage").for(StorageService));
      const releasesMarked = () => {
        volumeReleases.kick();
        nicReleases.kick();
      };
      const takeover = new VmReconciler({ vms: vmStore, hosts: hostStore, agents, queue: ctx.queue, log: ctx.log, owns, isLive, incarnation, busy: (uuid) => vms.busy(uuid), peers, releasesMarked });
      const resources = new VmResourcesBatcher({ vms: vmStore, volumes, network, log: ctx.log });
      const vms = new VmManager({
        vms: vmStore,
        hosts: hostStore,
        agents,
        queue: ctx.queue,
        log: ctx.log,
        incarnation,
        isLive,
        repair: (uuid) => takeover.repair(uuid),
        resources,
        network,
        volumesToRelease: () => volumeReleases.kick(),
      });
      const hosts = new HostManager({ hosts: hostStore, vms: vmStore, agents, queue: ctx.queue, log: ctx.log, reconnected: () => hostReconciles.kick() });
      // Long jobs compute implements (compute.migrate), run in the VM's own queue on its owner.
      const executor = new JobExecutor({
        service: "compute",
        types: [migrateJob({ vms: vmStore, hosts: hostStore, agents, peers, steps: migrationSteps({ eipSyncs, log: ctx.log }), backupWaitMs: ctx.settings.STRATUM_MIGRATE_BACKUP_WAIT_MS, incarnation })],
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
          for (const d of drainers) d.start();
        },
        drain: () => executor.drain(),
        async stop() {
          executor.stop();
          takeover.stop();
          for (const d of drainers) await d.stop();
          hosts.stopPinging();
          await agentClient.close();
        },
      };
    },
  };
}

/**
 * ReconcileHostEips is one host per call: a batch of hosts is reconciled side by side, each
 * failure its own. A host that is gone (NOT_FOUND: deleted since it reconnected) has nothing left
 * to reconcile: its mark is done, not retried for ever.
 */
async function reconcileEach(hostUuids: string[], reconcile: (hostUuid: string) => Promise<void>): Promise<Map<string, unknown>> {
  const outcomes = await Promise.allSettled(hostUuids.map((h) => reconcile(h)));
  const failed = new Map<string, unknown>();
  for (const [i, o] of outcomes.entries()) {
    if (o.status === "rejected" && StratumError.from(o.reason).code !== Code.NOT_FOUND) failed.set(hostUuids[i]!, o.reason);
  }
  return failed;
}
