import { createHash } from "node:crypto";
import type { VmNicSpec } from "@stratum/agent-protocol";
import type { VmNicRow } from "../store/schema";

/** Namespace of NIC uuids (a fixed random UUID, never change it: stored NIC uuids depend on it). */
const NIC_NAMESPACE = Buffer.from("3b8e6f2a9c1d4e7fa0b5c6d7e8f90a1b", "hex");

/**
 * The uuid of a VM's NIC at `deviceIndex`: a name-based UUID (RFC 9562 v5) of the VM's uuid and
 * the index. A create retried after its first attempt was lost asks network for the very same
 * NICs, and AllocateNicIps (idempotent per NIC) answers the addresses it already gave them.
 */
export function nicUuidOf(vmUuid: string, deviceIndex: number): string {
  const hash = createHash("sha1").update(NIC_NAMESPACE).update(`${vmUuid}/${deviceIndex}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A NIC's MAC address, derived from its uuid (so a retry derives the same): locally administered
 * (bit 1 of the first octet set) and unicast (bit 0 clear), the other 46 bits from a hash. Two
 * NICs may still draw the same one; `vm_nics_mac_uq` refuses the second (its create fails naming
 * the MAC) rather than let two guests share it.
 */
export function macOf(nicUuid: string): string {
  const hash = createHash("sha256").update(`mac:${nicUuid}`).digest();
  hash[0] = (hash[0]! & 0xfc) | 0x02;
  return [...hash.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The NICs a create asks for: one per network, in the order given (device 0 first). */
export function plannedNics(vmUuid: string, l3NetworkUuids: readonly string[]): Array<Omit<VmNicRow, "ip">> {
  return l3NetworkUuids.map((l3NetworkUuid, deviceIndex) => {
    const uuid = nicUuidOf(vmUuid, deviceIndex);
    return { uuid, vmUuid, l3NetworkUuid, mac: macOf(uuid), deviceIndex };
  });
}

/** The NICs as `vm/start` carries them (the agent plugs them as it creates the VM). */
export function nicSpecs(nics: readonly VmNicRow[]): VmNicSpec[] {
  return [...nics].sort((a, b) => a.deviceIndex - b.deviceIndex).map((n) => ({ nicUuid: n.uuid, mac: n.mac, ip: n.ip, l3NetworkUuid: n.l3NetworkUuid }));
}
