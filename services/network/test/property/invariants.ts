import { VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";

/** What the invariants look at once a schedule settled. */
export interface Snapshot {
  /** The VMs the EIPs may be bound to, as compute has them. */
  vms: Map<string, Vm>;
  /** `network.eips` rows. */
  eips: Array<{ uuid: string; vip_ip: string; vip_uuid: string; vm_nic_uuid: string | null; vm_uuid: string | null; guest_ip: string | null; status: string; host_uuid: string | null; deleting: boolean; sync_gen: string; synced_gen: string; status_reason: string }>;
  /** `network.ip_addresses` rows. */
  addresses: Array<{ l3_network_uuid: string; ip: string; holder_kind: string; holder_uuid: string; vm_uuid: string | null }>;
  /** `network.eip_rules` rows: what network believes each agent has. */
  beliefs: Array<{ eip_uuid: string; host_uuid: string; vip_ip: string; guest_ip: string; vm_nic_uuid: string; state: string }>;
  /** The EIP rules on each sim host, by host uuid. */
  agents: Map<string, Array<{ eipUuid: string; vip: string; guestIp: string; nicUuid: string }>>;
}

/** VM states in which a VM's EIP rules belong on its host (network's EIP_HOST_STATES). */
const ON_HOST: ReadonlySet<VmState> = new Set([VmState.RUNNING, VmState.REBOOTING, VmState.MIGRATING]);

const key = (r: { eipUuid: string; vip: string; guestIp: string; nicUuid: string }) => `${r.eipUuid} ${r.vip}→${r.guestIp} (nic ${r.nicUuid})`;

/**
 * Issue 11's property, once things settled: every agent's rules are exactly the database's
 * bindings of the VMs that run on it (none missing, none stale, none on another host); no address
 * is held twice; every bound EIP maps to its NIC's current address, and that address is the one
 * compute's VM has; each EIP's status says what its agent has; network's belief of the agents'
 * rules is what they have; no sync is left due. The violations, each naming what broke.
 */
export function violations(s: Snapshot): string[] {
  const out: string[] = [];
  const expected = new Map<string, Set<string>>();
  for (const host of s.agents.keys()) expected.set(host, new Set());
  const nicAddress = new Map(s.addresses.filter((a) => a.holder_kind === "Nic").map((a) => [a.holder_uuid, a]));
  for (const e of s.eips) {
    if (Number(e.sync_gen) > Number(e.synced_gen)) out.push(`eip ${e.uuid} has a sync due (gen ${e.sync_gen} > ${e.synced_gen}), status ${e.status} ${e.status_reason}`);
    if (e.deleting) {
      out.push(`eip ${e.uuid} is still being deleted (${e.status_reason})`);
      continue;
    }
    if (!e.vm_nic_uuid) {
      if (e.status !== "Detached") out.push(`eip ${e.uuid} is bound to nothing but ${e.status} (${e.status_reason})`);
      continue;
    }
    const nic = nicAddress.get(e.vm_nic_uuid);
    if (!nic) out.push(`eip ${e.uuid} is bound to NIC ${e.vm_nic_uuid}, which holds no address`);
    else if (nic.ip !== e.guest_ip) out.push(`eip ${e.uuid} maps to ${e.guest_ip} but its NIC ${e.vm_nic_uuid} holds ${nic.ip}`);
    const vm = s.vms.get(e.vm_uuid!);
    const host = vm && ON_HOST.has(vm.state) ? vm.hostUuid : "";
    if (host) {
      expected.get(host)?.add(key({ eipUuid: e.uuid, vip: e.vip_ip, guestIp: e.guest_ip!, nicUuid: e.vm_nic_uuid }));
      if (e.status !== "Active" || e.host_uuid !== host) out.push(`eip ${e.uuid}: its VM ${e.vm_uuid} runs on ${host} but the EIP is ${e.status} on ${e.host_uuid ?? "no host"} (${e.status_reason})`);
    } else if (e.status !== "Down") {
      out.push(`eip ${e.uuid}: its VM ${e.vm_uuid} is ${vm ? VmState[vm.state] : "gone"} but the EIP is ${e.status} (${e.status_reason})`);
    }
  }
  for (const [host, rules] of s.agents) {
    const have = new Set(rules.map(key));
    const want = expected.get(host)!;
    for (const r of want) if (!have.has(r)) out.push(`host ${host} lacks the rule ${r}`);
    for (const r of have) if (!want.has(r)) out.push(`host ${host} has a stale rule ${r}`);
    const believed = new Set(s.beliefs.filter((b) => b.host_uuid === host).map((b) => key({ eipUuid: b.eip_uuid, vip: b.vip_ip, guestIp: b.guest_ip, nicUuid: b.vm_nic_uuid })));
    for (const r of have) if (!believed.has(r)) out.push(`network does not know host ${host} has ${r}`);
    for (const r of believed) if (!have.has(r)) out.push(`network believes host ${host} has ${r}, it does not`);
  }
  const held = new Map<string, string>();
  for (const a of s.addresses) {
    const at = `${a.l3_network_uuid}/${a.ip}`;
    if (held.has(at)) out.push(`address ${a.ip} of network ${a.l3_network_uuid} is held twice: by ${held.get(at)} and ${a.holder_uuid}`);
    held.set(at, a.holder_uuid);
  }
  for (const e of s.eips) if (!s.addresses.some((a) => a.holder_uuid === e.vip_uuid && a.ip === e.vip_ip)) out.push(`eip ${e.uuid}'s VIP ${e.vip_ip} is not held by its VIP ${e.vip_uuid}`);
  for (const vm of s.vms.values()) {
    for (const n of vm.nics) {
      const a = nicAddress.get(n.uuid);
      if (!a || a.ip !== n.ip) out.push(`VM ${vm.uuid}'s NIC ${n.uuid} has ${n.ip} in compute but ${a?.ip ?? "no address"} in network`);
    }
  }
  return out;
}
