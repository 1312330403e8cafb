import { EventBus, connectBus, type DomainEvent } from "@stratum/bus";
import type { AgentSim, AgentSimOptions } from "@stratum/agent-sim";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import type { RunningService, ServiceConfig, StartOptions } from "@stratum/runtime";
import { startTestService } from "@stratum/runtime/testing";
import type { AgentClientOptions } from "@stratum/agent-client";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { networkModule } from "@stratum/network";
import type { TestService } from "@stratum/runtime/testing";
import { computeModule } from "../src/module";
import { storageModule } from "../../storage/src/module";

export const GIB = 1024n ** 3n;

export interface ComputeStack {
  sim: AgentSim;
  replicas: RunningService[];
  /** Clients to replica 0: calls about resources it does not own are forwarded. */
  vms: Client<typeof VmService>;
  hosts: Client<typeof HostService>;
  clientsTo(replica: number): { vms: Client<typeof VmService>; hosts: Client<typeof HostService> };
  /** Adds the sim's hosts to compute, `cpu` CPUs and `memoryGiB` each. */
  addSimHosts(cpu?: number, memoryGiB?: bigint): Promise<string[]>;
  /** Starts one more replica (the next index); resolves once every replica sees it. */
  addReplica(): Promise<RunningService>;
  /**
   * Storage beside compute (same database, NATS and bus prefix): one replica, with one shared
   * primary storage of 1 PiB, where every VM's root volume goes unless a test adds others.
   */
  storage: {
    service: TestService<Record<string, unknown>>;
    /** A client of the running storage replica (a new one after `start`). */
    client: Client<typeof StorageService>;
    primaryStorageUuid: string;
    /** Stops storage (its replica leaves the ring: compute's calls to it fail at once). */
    stop(): Promise<void>;
    /** Starts a new storage replica on the same database, once compute sees it on the ring. */
    start(): Promise<void>;
  };
  /**
   * Network beside compute (when started with `network: true`; same database, NATS and bus
   * prefix): one replica, with a private L3 network 10.50.0.0/16 whose range is
   * 10.50.0.10–10.50.255.250, the network a test creates VMs on unless it adds others.
   */
  network: {
    service: TestService<Record<string, unknown>>;
    /** Clients of the running network replica (new ones after `start`). */
    networks: Client<typeof NetworkService>;
    eips: Client<typeof EipService>;
    l3NetworkUuid: string;
    /** Stops network (its replica leaves the ring: compute's calls to it fail at once). */
    stop(): Promise<void>;
    /** Starts a new network replica on the same database, once compute sees it on the ring. */
    start(): Promise<void>;
  };
  /** Every vm_state_changed event seen since start. */
  vmEvents: DomainEvent<{ vmUuid: string; from: string | null; to: string }>[];
  stop(): Promise<void>;
}

/**
 * Real compute replicas (in-process) on a fresh database and their own NATS namespace, in front
 * of an in-process agent simulator, with a storage replica beside them for the VMs' root
 * volumes: the same parts as production but the hypervisors.
 */
export async function startComputeStack(
  options: {
    replicas?: number;
    hosts?: AgentSimOptions["hosts"];
    compute?: { pingIntervalMs?: number; agent?: AgentClientOptions };
    startOptions?: (replica: number) => Omit<StartOptions, "settings">;
    databaseUrl?: string;
    natsUrl?: string;
    config?: (replica: number) => Partial<ServiceConfig>;
    /** Start network beside compute (see ComputeStack.network). */
    network?: boolean;
  } = {},
): Promise<ComputeStack> {
  const service = await startTestService(computeModule(options.compute?.agent), {
    replicas: options.replicas ?? 2,
    settings: { STRATUM_PING_INTERVAL_MS: options.compute?.pingIntervalMs ?? 60_000 },
    agentSim: { hosts: options.hosts ?? 3 },
    ...(options.startOptions ? { startOptions: options.startOptions } : {}),
    ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
    ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
    ...(options.config ? { config: options.config } : {}),
  });
  const { replicas, natsUrl, busPrefix } = service;
  const sim = service.sim!;
  let generation = 0;
  const startStorage = () =>
    startTestService(storageModule(), { databaseUrl: service.databaseUrl, natsUrl, busPrefix, replicas: 1, config: () => ({ replicaId: `storage-${generation++}` }) });
  const storageServices = [await startStorage()];
  const storageClients = [createClient(StorageService, storageServices[0]!.replicas[0]!.address)];
  const { primaryStorage } = await storageClients[0]!.addPrimaryStorage({ name: "shared", totalCapacityBytes: 1024n ** 5n, clientRequestId: "compute-test-shared-storage" });
  const storage: ComputeStack["storage"] = {
    service: storageServices[0]!,
    client: storageClients[0]!,
    primaryStorageUuid: primaryStorage!.uuid,
    async stop() {
      await storage.service.stop();
    },
    async start() {
      const next = await startStorage();
      storageServices.push(next);
      storage.service = next;
      storage.client = createClient(StorageService, next.replicas[0]!.address);
      storageClients.push(storage.client);
      const id = next.replicas[0]!.ctx.config.replicaId;
      for (const r of replicas) await r.ctx.view.until((v) => v.members("storage").some((m) => m.replicaId === id));
    },
  };

  let networkGeneration = 0;
  const startNetwork = () =>
    startTestService(networkModule(), { databaseUrl: service.databaseUrl, natsUrl, busPrefix, replicas: 1, settings: { STRATUM_EIP_COLLECT_INTERVAL_MS: 200 }, config: () => ({ replicaId: `network-${networkGeneration++}` }) });
  const networkServices: TestService<Record<string, unknown>>[] = [];
  const networkClients: Array<Client<typeof NetworkService> | Client<typeof EipService>> = [];
  const notStarted = () => {
    throw new Error("this stack was started without network (startComputeStack({ network: true }))");
  };
  const network = { l3NetworkUuid: "", stop: notStarted, start: notStarted } as unknown as ComputeStack["network"];
  if (options.network) {
    const attach = (s: TestService<Record<string, unknown>>) => {
      networkServices.push(s);
      network.service = s;
      network.networks = createClient(NetworkService, s.replicas[0]!.address);
      network.eips = createClient(EipService, s.replicas[0]!.address);
      networkClients.push(network.networks, network.eips);
    };
    attach(await startNetwork());
    const { l3Network } = await network.networks.createL3Network({ name: "private", cidr: "10.50.0.0/16", clientRequestId: "compute-test-private-network" });
    await network.networks.addIpRange({ l3NetworkUuid: l3Network!.uuid, startIp: "10.50.0.10", endIp: "10.50.255.250", clientRequestId: "compute-test-private-range" });
    network.l3NetworkUuid = l3Network!.uuid;
    network.stop = () => network.service.stop();
    network.start = async () => {
      attach(await startNetwork());
      const id = network.service.replicas[0]!.ctx.config.replicaId;
      for (const r of replicas) await r.ctx.view.until((v) => v.members("network").some((m) => m.replicaId === id));
    };
  }

  const observerBus = await connectBus({ servers: natsUrl, prefix: busPrefix, name: "test-observer" });
  const vmEvents: ComputeStack["vmEvents"] = [];
  const sub = await (await EventBus.open(observerBus)).subscribe<{ vmUuid: string; from: string | null; to: string }>("compute.vm_state_changed.>", (e) => void vmEvents.push(e), { from: "all" });

  const clients: Array<{ vms: Client<typeof VmService>; hosts: Client<typeof HostService> }> = [];
  const clientsTo = (i: number) => {
    const address = replicas[i]!.address;
    const c = { vms: createClient(VmService, address), hosts: createClient(HostService, address) };
    clients.push(c);
    return c;
  };
  const first = clientsTo(0);
  return {
    sim,
    replicas,
    vms: first.vms,
    hosts: first.hosts,
    clientsTo,
    addReplica: () => service.addReplica(),
    storage,
    network,
    vmEvents,
    async addSimHosts(cpu = 16, memoryGiB = 64n) {
      const uuids: string[] = [];
      for (const [i, host] of sim.hosts.entries()) {
        const res = await first.hosts.addHost({ name: `host-${i}`, agentUrl: host.url, cpuCapacity: cpu, memoryCapacityBytes: memoryGiB * GIB });
        uuids.push(res.host!.uuid);
      }
      return uuids;
    },
    async stop() {
      for (const c of clients) {
        closeClient(c.vms);
        closeClient(c.hosts);
      }
      for (const c of storageClients) closeClient(c);
      for (const c of networkClients) closeClient(c);
      await sub.stop();
      await observerBus.close();
      // A stopped one stops again as a no-op.
      for (const s of storageServices) await s.stop();
      for (const s of networkServices) await s.stop();
      await service.stop();
    },
  };
}
