import { NetworkService, type IpRange, type L3Network } from "@stratum/proto/stratum/network/v1/network_pb";
import { closeClient, createClient } from "@stratum/rpc";

/** One network the devstack creates, with the range its addresses come from. */
export interface DefaultNetwork {
  network: { name: string; cidr: string; gateway: string; dns: readonly string[]; public: boolean; clientRequestId: string };
  range: { startIp: string; endIp: string; clientRequestId: string };
}

/**
 * What the devstack creates so that VMs get addresses and elastic IPs have VIPs out of the box:
 * a private network for the VMs' NICs (its guests resolve through 10.0.0.2) and a public one,
 * the VIP pool. Each range leaves the first addresses (gateway, resolver) and the last ones
 * (broadcast) out; a /16 each, room for bench:vm's NICs and bench:eip's VIPs.
 */
export const DEFAULT_NETWORKS = {
  private: {
    network: { name: "devstack-private", cidr: "10.0.0.0/16", gateway: "10.0.0.1", dns: ["10.0.0.2"], public: false, clientRequestId: "devstack-private-l3-network" },
    range: { startIp: "10.0.0.10", endIp: "10.0.255.250", clientRequestId: "devstack-private-ip-range" },
  },
  public: {
    network: { name: "devstack-public", cidr: "172.20.0.0/16", gateway: "172.20.0.1", dns: [], public: true, clientRequestId: "devstack-public-l3-network" },
    range: { startIp: "172.20.0.10", endIp: "172.20.255.250", clientRequestId: "devstack-public-ip-range" },
  },
} as const satisfies Record<string, DefaultNetwork>;

export interface CreatedNetwork {
  network: L3Network;
  range: IpRange;
}

/**
 * Creates the default private and public networks with their ranges. Fixed request ids make it
 * a no-op on a restart that kept the data: the network service answers a retried id with the
 * first network or range (from its request record, and once that has expired from the row's own
 * request id), so a devstack always has exactly these two, with the same UUIDs.
 */
export async function createDefaultNetworks(networkAddress: string): Promise<{ private: CreatedNetwork; public: CreatedNetwork }> {
  // Mutating retries are safe here (fixed request ids) and ride out a ring still settling just after start.
  const client = createClient(NetworkService, networkAddress, { retry: { mutating: true } });
  const one = async (spec: DefaultNetwork): Promise<CreatedNetwork> => {
    const { l3Network } = await client.createL3Network({ ...spec.network, dns: [...spec.network.dns] });
    if (!l3Network) throw new Error(`the network service answered CreateL3Network ${spec.network.name} without the network`);
    const { ipRange } = await client.addIpRange({ l3NetworkUuid: l3Network.uuid, ...spec.range });
    if (!ipRange) throw new Error(`the network service answered AddIpRange on ${spec.network.name} without the range`);
    return { network: l3Network, range: ipRange };
  };
  try {
    return { private: await one(DEFAULT_NETWORKS.private), public: await one(DEFAULT_NETWORKS.public) };
  } finally {
    closeClient(client);
  }
}
