import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, StratumError } from "@stratum/core";
import type { EipStore } from "../store/eip-store";
import type { AddressOutcome, IpStore } from "../store/ip-store";
import type { NetworkStore } from "../store/network-store";
import type { IpAddressRow, IpRangeRow, L3NetworkRow } from "../store/schema";
import type { EipCollector } from "./eip-collector";
import { intToIp, ipToInt, isHostAddress, parseCidr } from "./ipv4";

export interface NetworkManagerDeps {
  networks: NetworkStore;
  ips: IpStore;
  eips: EipStore;
  collector: EipCollector;
  queue: ChainTaskQueue;
}

export interface CreateL3Spec {
  uuid: string;
  name: string;
  cidr: string;
  gateway: string;
  dns: string[];
  public: boolean;
  clientRequestId: string;
}

export interface AddRangeSpec {
  uuid: string;
  l3NetworkUuid: string;
  startIp: string;
  endIp: string;
  clientRequestId: string;
}

/** One NIC's address to allocate (compute's ask). */
export interface NicAsk {
  nicUuid: string;
  vmUuid: string;
  l3NetworkUuid: string;
  ip: string;
}

/** One NIC's outcome, with how to configure it. */
export type NicOutcome = { nicUuid: string; address: IpAddressRow; network: L3NetworkRow } | { nicUuid: string; error: StratumError };

/**
 * L3 networks, their ranges and the addresses of NICs. Changes to a network's ranges run in its
 * queue (`l3-<uuid>`) on its owner, so two overlapping adds cannot both pass their check; the
 * allocations of one network on a replica run one batch at a time in `ip-<uuid>` (fewer races
 * between them; races with other replicas are settled by the address's unique key).
 */
export class NetworkManager {
  constructor(private readonly d: NetworkManagerDeps) {}

  /** The request was checked by {@link l3NetworkViolations} before it was routed here. */
  async create(spec: CreateL3Spec): Promise<L3NetworkRow> {
    const cidr = parseCidr(spec.cidr);
    const gatewayInt = spec.gateway ? ipToInt(spec.gateway) : cidr.first + 1;
    return this.d.queue.submit({
      signature: `l3-${spec.uuid}`,
      name: "create-l3-network",
      run: async () => {
        const existing = await this.d.networks.get(spec.uuid);
        if (existing) {
          if (spec.clientRequestId && existing.clientRequestId === spec.clientRequestId) return existing;
          throw new StratumError(Code.ALREADY_EXISTS, `L3 network ${spec.uuid} already exists`, { reason: "L3_NETWORK_ALREADY_EXISTS", resources: { l3NetworkUuid: spec.uuid } });
        }
        return this.d.networks.create({
          uuid: spec.uuid,
          name: spec.name,
          cidr: spec.cidr,
          networkInt: cidr.networkInt,
          prefixLength: cidr.prefixLength,
          gateway: intToIp(gatewayInt),
          dns: spec.dns,
          public: spec.public,
          clientRequestId: spec.clientRequestId || null,
        });
      },
    });
  }

  async get(uuid: string): Promise<L3NetworkRow> {
    const n = await this.d.networks.get(uuid);
    if (!n) throw StratumError.notFound("l3Network", uuid);
    return n;
  }

  async delete(uuid: string): Promise<void> {
    await this.d.queue.submit({
      signature: `l3-${uuid}`,
      name: "delete-l3-network",
      run: async () => {
        if ((await this.d.networks.delete(uuid)) === "in-use") {
          throw new StratumError(Code.FAILED_PRECONDITION, `L3 network ${uuid} still has addresses held by NICs or VIPs: release them first`, {
            reason: "IP_ADDRESSES_HELD",
            resources: { l3NetworkUuid: uuid },
          });
        }
      },
    });
  }

  /** Adds a range: inside the network, clear of its network, broadcast and gateway addresses and of its other ranges. */
  async addRange(spec: AddRangeSpec): Promise<IpRangeRow> {
    const network = await this.get(spec.l3NetworkUuid);
    const cidr = parseCidr(network.cidr);
    const [start, end] = [ipToInt(spec.startIp), ipToInt(spec.endIp)];
    for (const [field, ip] of [["start_ip", start], ["end_ip", end]] as const) {
      if (!isHostAddress(cidr, ip)) throw badField(field, `${intToIp(ip)} is not an assignable address of ${network.cidr} (network ${network.uuid})`);
    }
    const gateway = ipToInt(network.gateway);
    if (start <= gateway && gateway <= end) {
      throw badField("start_ip", `the range ${spec.startIp}–${spec.endIp} contains the gateway ${network.gateway} of network ${network.uuid}`);
    }
    return this.d.queue.submit({
      signature: `l3-${network.uuid}`,
      name: "add-ip-range",
      run: async () => {
        const existing = await this.d.networks.range(spec.uuid);
        if (existing && spec.clientRequestId && existing.clientRequestId === spec.clientRequestId) return existing;
        const added = await this.d.networks.addRange({ uuid: spec.uuid, l3NetworkUuid: network.uuid, startInt: start, endInt: end, clientRequestId: spec.clientRequestId || null });
        if (added) return added;
        const other = await this.d.networks.overlapping(network.uuid, start, end);
        throw new StratumError(Code.FAILED_PRECONDITION, `the range ${spec.startIp}–${spec.endIp} overlaps range ${other?.uuid ?? "?"}${other ? ` (${intToIp(other.startInt)}–${intToIp(other.endInt)})` : ""} of network ${network.uuid}`, {
          reason: "IP_RANGE_OVERLAPS",
          resources: { l3NetworkUuid: network.uuid, ...(other ? { ipRangeUuid: other.uuid } : {}) },
        });
      },
    });
  }

  async ranges(l3NetworkUuid: string): Promise<IpRangeRow[]> {
    await this.get(l3NetworkUuid);
    return this.d.networks.ranges(l3NetworkUuid);
  }

  async deleteRange(uuid: string): Promise<void> {
    const range = await this.d.networks.range(uuid);
    if (!range) return; // gone already: deleting is idempotent
    await this.d.queue.submit({
      signature: `l3-${range.l3NetworkUuid}`,
      name: "delete-ip-range",
      run: async () => {
        if ((await this.d.networks.deleteRange(uuid)) === "in-use") {
          throw new StratumError(Code.FAILED_PRECONDITION, `IP range ${uuid} still has addresses held: release them first`, { reason: "IP_ADDRESSES_HELD", resources: { ipRangeUuid: uuid } });
        }
      },
    });
  }

  /** A batch of NICs' addresses, one allocation per network; each NIC its own outcome, in order. */
  async allocateNics(asks: readonly NicAsk[]): Promise<NicOutcome[]> {
    const networks = await this.d.networks.getMany([...new Set(asks.map((a) => a.l3NetworkUuid))]);
    const out = new Map<string, NicOutcome>();
    const byNetwork = new Map<string, NicAsk[]>();
    for (const a of asks) {
      if (!networks.has(a.l3NetworkUuid)) out.set(a.nicUuid, { nicUuid: a.nicUuid, error: StratumError.notFound("l3Network", a.l3NetworkUuid) });
      else byNetwork.set(a.l3NetworkUuid, [...(byNetwork.get(a.l3NetworkUuid) ?? []), a]);
    }
    await Promise.all(
      [...byNetwork].map(async ([l3, group]) => {
        const network = networks.get(l3)!;
        const outcomes = await this.#allocateOn(network, group);
        outcomes.forEach((o, i) => out.set(group[i]!.nicUuid, "error" in o ? { nicUuid: o.holderUuid, error: o.error } : { nicUuid: o.holderUuid, address: o.address, network }));
      }),
    );
    return asks.map((a) => out.get(a.nicUuid)!);
  }

  /**
   * Moves a NIC to another address of its network and gives the old one back; the EIPs bound to
   * it with the old address follow it (their rules are applied again).
   */
  async changeNicIp(nicUuid: string, ip: string): Promise<{ address: IpAddressRow; network: L3NetworkRow }> {
    const current = await this.d.ips.ofHolder(nicUuid);
    if (!current || current.holderKind !== "Nic") throw new StratumError(Code.NOT_FOUND, `VM NIC ${nicUuid} holds no address`, { reason: "VM_NIC_NOT_FOUND", resources: { vmNicUuid: nicUuid } });
    const network = await this.get(current.l3NetworkUuid);
    const moved = await this.d.queue.submit({
      signature: `ip-${network.uuid}`,
      name: "change-nic-ip",
      run: async () => this.d.ips.move(nicUuid, await this.d.networks.ranges(network.uuid), ip ? ipToInt(ip) : undefined),
    });
    if (!moved) throw new StratumError(Code.NOT_FOUND, `VM NIC ${nicUuid} holds no address`, { reason: "VM_NIC_NOT_FOUND", resources: { vmNicUuid: nicUuid } });
    if (moved.ip !== current.ip) this.d.collector.kick((await this.d.eips.followNicIp(nicUuid, current.ip, moved.ip)).map((e) => e.uuid));
    return { address: moved, network };
  }

  async #allocateOn(network: L3NetworkRow, group: readonly NicAsk[]): Promise<AddressOutcome[]> {
    return this.d.queue.submit({
      signature: `ip-${network.uuid}`,
      name: "allocate-nic-ips",
      run: async () =>
        this.d.ips.allocate(
          group.map((a) => ({ holderUuid: a.nicUuid, holderKind: "Nic" as const, vmUuid: a.vmUuid, l3NetworkUuid: network.uuid, ...(a.ip ? { ipInt: ipToInt(a.ip) } : {}) })),
          await this.d.networks.ranges(network.uuid),
        ),
    });
  }
}

/**
 * What the proto rules cannot say about a new network: its size (/8 to /30) and a gateway that
 * is an assignable address of it. Checked before routing (the kit's `validate`).
 */
export function l3NetworkViolations(cidrText: string, gateway: string): Array<{ field: string; description: string }> {
  const cidr = parseCidr(cidrText);
  if (cidr.prefixLength < 8 || cidr.prefixLength > 30) return [{ field: "cidr", description: `an L3 network is /8 to /30, ${cidrText} is /${cidr.prefixLength}` }];
  if (gateway && !isHostAddress(cidr, ipToInt(gateway))) return [{ field: "gateway", description: `gateway ${gateway} is not an assignable address of ${cidrText}` }];
  return [];
}

function badField(field: string, description: string): StratumError {
  return StratumError.invalidArgument([{ field, description }]);
}
