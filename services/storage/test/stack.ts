import type { AgentSim, AgentSimOptions, SimHostOptions } from "@stratum/agent-sim";
import type { AgentCallEvent, AgentClientOptions } from "@stratum/agent-client";
import { computeModule } from "@stratum/compute";
import { longjobModule } from "@stratum/longjob";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { BackupService } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { startTestService, type TestService } from "@stratum/runtime/testing";
import { storageModule } from "../src/module";
import type { tables } from "../src/store/schema";

export const GIB = 1024n ** 3n;
export const MIB = 1024n ** 2n;

export const FINAL_JOB_STATES = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

export interface StorageStackOptions {
  /** Storage replicas. Default 2. */
  storageReplicas?: number;
  /** Simulated hosts (a count, or one options object each), each added to compute (same uuid as its sim host). Default 2. */
  hosts?: number | SimHostOptions[];
  /** Capacity each host is added to compute with. Default 16 CPU, 64 GiB. */
  hostCapacity?: { cpu: number; memoryBytes: bigint };
  /** Agent-sim options (task durations, chunk size…). */
  sim?: Omit<AgentSimOptions, "hosts">;
  /** Storage's agent client (tests shorten deadlines). */
  agent?: AgentClientOptions;
  /** Compute's pings of its hosts (what notices an agent that restarted). Default 60 s: a test's pings are its own. */
  pingIntervalMs?: number;
}

/** Clients of one storage replica (no routing of their own: the kit forwards to the owner). */
export interface StorageClients {
  volumes: Client<typeof StorageService>;
  backups: Client<typeof BackupService>;
}

export interface StorageStack extends StorageClients {
  longjob: TestService<Record<string, unknown>>;
  compute: TestService<Record<string, unknown>>;
  storage: TestService<typeof tables>;
  sim: AgentSim;
  /** Every agent call storage's replicas made, as it ended (command, host, outcome, duration). */
  agentCalls: AgentCallEvent[];
  /** The hosts in compute, Connected, named by their sim hosts' uuids. */
  hostUuids: string[];
  jobs: Client<typeof LongJobService>;
  hosts: Client<typeof HostService>;
  at(replica: number): StorageClients;
  /** Watches a job until `pick` accepts a message (resolves with it), or to its end (rejects). */
  untilJob(uuid: string, pick: (j: Job) => boolean, what?: string): Promise<Job>;
  /** Every message of a job's watch until it ends. */
  watchJob(uuid: string): Promise<Job[]>;
  stop(): Promise<void>;
}

/**
 * Longjob, compute (with agent-sim's hosts added to it) and storage on one database, one NATS and
 * one bus prefix: the services storage's backups and volume tasks need, real but the hypervisors.
 * Reusable by other suites (compute's migration tests) that need backups running beside them.
 */
export async function startStorageStack(o: StorageStackOptions = {}): Promise<StorageStack> {
  const longjob = await startTestService(longjobModule(), { replicas: 1 });
  const shared = { databaseUrl: longjob.databaseUrl, natsUrl: longjob.natsUrl, busPrefix: longjob.busPrefix };
  const compute = await startTestService(computeModule(), {
    ...shared,
    replicas: 1,
    settings: { STRATUM_PING_INTERVAL_MS: o.pingIntervalMs ?? 60_000 },
    agentSim: { hosts: o.hosts ?? 2, ...o.sim },
  });
  const agentCalls: AgentCallEvent[] = [];
  const storage = await startTestService(storageModule({ onCall: (e) => void agentCalls.push(e), ...o.agent }), { ...shared, replicas: o.storageReplicas ?? 2 });
  const sim = compute.sim!;
  const hosts = createClient(HostService, compute.replicas[0]!.address);
  const jobs = createClient(LongJobService, longjob.replicas[0]!.address);
  const clients = new Map<number, StorageClients>();
  const at = (i: number): StorageClients => {
    let c = clients.get(i);
    if (!c) clients.set(i, (c = { volumes: createClient(StorageService, storage.replicas[i]!.address), backups: createClient(BackupService, storage.replicas[i]!.address) }));
    return c;
  };
  const stop = async () => {
    for (const c of clients.values()) {
      closeClient(c.volumes);
      closeClient(c.backups);
    }
    closeClient(hosts);
    closeClient(jobs);
    await storage.stop();
    await compute.stop();
    await longjob.stop();
  };
  try {
    const hostUuids: string[] = [];
    for (const [i, h] of sim.hosts.entries()) {
      const { host } = await hosts.addHost({ uuid: h.uuid, name: `host-${i}`, agentUrl: h.url, cpuCapacity: o.hostCapacity?.cpu ?? 16, memoryCapacityBytes: o.hostCapacity?.memoryBytes ?? 64n * GIB });
      hostUuids.push(host!.uuid);
    }
    // Storage registers its job types with longjob in the background, at start.
    for (let i = 0; ; i++) {
      const { types } = await jobs.listJobTypes({});
      if (types.some((t) => t.name === "storage.backup") && types.some((t) => t.name === "storage.restore")) break;
      if (i > 200) throw new Error("storage's job types never reached longjob");
      await new Promise((r) => setTimeout(r, 50));
    }
    const first = at(0);
    return {
      longjob,
      compute,
      storage,
      sim,
      agentCalls,
      hostUuids,
      jobs,
      hosts,
      ...first,
      at,
      async untilJob(uuid, pick, what = "the awaited state") {
        for await (const m of jobs.watchJob({ uuid }, { timeoutMs: 30_000 })) if (pick(m.job!)) return m.job!;
        throw new Error(`job ${uuid} ended without ${what}`);
      },
      async watchJob(uuid) {
        const seen: Job[] = [];
        for await (const m of jobs.watchJob({ uuid }, { timeoutMs: 30_000 })) seen.push(m.job!);
        return seen;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
