import { randomUUID } from "node:crypto";
import type { SimHost } from "@stratum/agent-sim";
import type { AgentCallEvent } from "@stratum/agent-client";
import { VmService, VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipService, EipStatus, type Eip } from "@stratum/proto/stratum/network/v1/eip_pb";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { startTestService, type TestService } from "@stratum/runtime/testing";
import { startStorageStack, GIB, type StorageStack, type StorageStackOptions } from "../../storage/test/stack";
import { untilVm } from "../../compute/test/migrate-stack";
import { networkModule } from "../src/module";
import type { tables } from "../src/store/schema";

export { GIB };

/** Clients of one network replica (no routing of their own: the kit forwards to the owner). */
export interface NetworkClients {
  networks: Client<typeof NetworkService>;
  eips: Client<typeof EipService>;
}

/** A Running VM of the stack with one NIC on the private network. */
export interface TestVm {
  uuid: string;
  hostUuid: string;
  nicUuid: string;
  ip: string;
}

export interface NetworkStackOptions extends StorageStackOptions {
  /** Network replicas. Default 2. */
  networkReplicas?: number;
}

export interface NetworkStack extends NetworkClients {
  base: StorageStack;
  network: TestService<typeof tables>;
  vms: Client<typeof VmService>;
  /** A private network 10.0.0.0/16 with the range 10.0.0.10–10.0.255.250. */
  privateL3: string;
  /** A public network 172.20.0.0/24 with the range 172.20.0.10–172.20.0.250 (the VIPs). */
  publicL3: string;
  hostUuids: string[];
  /** Every agent call network's replicas made, as it ended. */
  agentCalls: AgentCallEvent[];
  at(replica: number): NetworkClients;
  /** The sim host of compute host `uuid`. */
  simHost(hostUuid: string): SimHost;
  /** A Running VM on host `onHost` (index) with a NIC on the private network. */
  vm(onHost?: number): Promise<TestVm>;
  /** An EIP on the public network. */
  eip(): Promise<Eip>;
  /** Resolves with the EIP once `pick` accepts it (polled: the status is observed state). */
  untilEip(uuid: string, pick: (e: Eip) => boolean, what?: string, timeoutMs?: number): Promise<Eip>;
  /** Resolves with the VM once `pick` accepts it. */
  untilVm(uuid: string, pick: (vm: Vm) => boolean): Promise<Vm>;
  /** The EIP rules on every sim host, by host uuid. */
  rules(): Map<string, Array<{ eipUuid: string; vip: string; guestIp: string; nicUuid: string }>>;
  stop(): Promise<void>;
}

/**
 * Longjob, compute, storage and agent-sim (storage's shared stack, `services/storage/test/stack.ts`)
 * with network replicas beside them, a private and a public network: the parts an elastic IP
 * touches, real but the hypervisors.
 */
export async function startNetworkStack(o: NetworkStackOptions = {}): Promise<NetworkStack> {
  const base = await startStorageStack({ hosts: 2, storageReplicas: 1, ...o });
  const agentCalls: AgentCallEvent[] = [];
  const network = await startTestService(networkModule({ onCall: (e) => void agentCalls.push(e) }), {
    databaseUrl: base.longjob.databaseUrl,
    natsUrl: base.longjob.natsUrl,
    busPrefix: base.longjob.busPrefix,
    replicas: o.networkReplicas ?? 2,
    settings: { STRATUM_EIP_COLLECT_INTERVAL_MS: 200 },
  });
  const vms = createClient(VmService, base.compute.replicas[0]!.address);
  const clients = new Map<number, NetworkClients>();
  const at = (i: number): NetworkClients => {
    let c = clients.get(i);
    if (!c) clients.set(i, (c = { networks: createClient(NetworkService, network.replicas[i]!.address), eips: createClient(EipService, network.replicas[i]!.address) }));
    return c;
  };
  const stop = async () => {
    for (const c of clients.values()) {
      closeClient(c.networks);
      closeClient(c.eips);
    }
    closeClient(vms);
    await network.stop();
    await base.stop();
  };
  try {
    await base.volumes.addPrimaryStorage({ name: "shared", totalCapacityBytes: 1024n * GIB });
    const first = at(0);
    const { l3Network: priv } = await first.networks.createL3Network({ name: "private", cidr: "10.0.0.0/16" });
    await first.networks.addIpRange({ l3NetworkUuid: priv!.uuid, startIp: "10.0.0.10", endIp: "10.0.255.250" });
    const { l3Network: pub } = await first.networks.createL3Network({ name: "public", cidr: "172.20.0.0/24", public: true });
    await first.networks.addIpRange({ l3NetworkUuid: pub!.uuid, startIp: "172.20.0.10", endIp: "172.20.0.250" });
    const stack: NetworkStack = {
      ...first,
      base,
      network,
      vms,
      privateL3: priv!.uuid,
      publicL3: pub!.uuid,
      hostUuids: base.hostUuids,
      agentCalls,
      at,
      simHost(hostUuid) {
        const h = base.sim.find(hostUuid);
        if (!h) throw new Error(`no sim host ${hostUuid}`);
        return h;
      },
      async vm(onHost = 0) {
        const uuid = randomUUID();
        const hostUuid = base.hostUuids[onHost]!;
        await vms.createVm({ uuid, name: `vm-${uuid.slice(0, 8)}`, cpu: 1, memoryBytes: GIB, hostUuid, l3NetworkUuids: [priv!.uuid] });
        const vm = await stack.untilVm(uuid, (v) => v.state === VmState.RUNNING);
        const nic = vm.nics[0];
        if (!nic) throw new Error(`vm ${uuid} has no NIC`);
        return { uuid, hostUuid, nicUuid: nic.uuid, ip: nic.ip };
      },
      async eip() {
        const { eip } = await first.eips.createEip({ name: `eip-${randomUUID().slice(0, 8)}`, l3NetworkUuid: pub!.uuid });
        return eip!;
      },
      async untilEip(uuid, pick, what = "the awaited state", timeoutMs = 20_000) {
        const until = Date.now() + timeoutMs;
        let last: Eip | undefined;
        for (;;) {
          last = (await first.eips.getEip({ uuid })).eip!;
          if (pick(last)) return last;
          if (Date.now() > until) throw new Error(`eip ${uuid} never reached ${what}: it is ${EipStatus[last.status]} (${last.statusReason})`);
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      untilVm: (uuid, pick) => untilVm(vms, uuid, pick),
      rules() {
        return new Map(base.sim.hosts.map((h) => [h.uuid, h.inspect().eips.map((r) => ({ eipUuid: r.eipUuid, vip: r.vip, guestIp: r.guestIp, nicUuid: r.nicUuid }))]));
      },
      stop,
    };
    return stack;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** True once the EIP is no longer being worked on: its status is final for now. */
export function settled(e: Eip): boolean {
  return e.status === EipStatus.ACTIVE || e.status === EipStatus.DOWN || e.status === EipStatus.DETACHED;
}
