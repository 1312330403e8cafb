import { randomUUID } from "node:crypto";
import { Code } from "@stratum/core";
import { rejection } from "../../../packages/rpc/src/echo.fixture";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { startTestService, type TestService } from "@stratum/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { networkModule } from "../src/module";
import type { tables } from "../src/store/schema";

let service: TestService<typeof tables>;
let a: Client<typeof NetworkService>;
let b: Client<typeof NetworkService>;

beforeAll(async () => {
  service = await startTestService(networkModule(), { replicas: 2 });
  a = createClient(NetworkService, service.replicas[0]!.address);
  b = createClient(NetworkService, service.replicas[1]!.address);
});

afterAll(async () => {
  closeClient(a);
  closeClient(b);
  await service?.stop();
});

async function network(cidr: string, start: string, end: string, pub = false): Promise<string> {
  const { l3Network } = await a.createL3Network({ name: `net-${randomUUID().slice(0, 6)}`, cidr, public: pub, dns: ["1.1.1.1"] });
  await a.addIpRange({ l3NetworkUuid: l3Network!.uuid, startIp: start, endIp: end });
  return l3Network!.uuid;
}

const nic = (l3NetworkUuid: string, ip = "") => ({ nicUuid: randomUUID(), vmUuid: randomUUID(), l3NetworkUuid, ip });

describe("L3 networks and IP ranges", () => {
  it("creates a network with its gateway defaulted to the first address", async () => {
    const { l3Network } = await a.createL3Network({ name: "n", cidr: "192.168.7.0/24", dns: ["8.8.8.8"] });
    expect(l3Network).toMatchObject({ cidr: "192.168.7.0/24", gateway: "192.168.7.1", dns: ["8.8.8.8"], public: false });
    expect((await b.getL3Network({ uuid: l3Network!.uuid })).l3Network!.name).toBe("n");
  });

  it("refuses bad networks and ranges naming the field, and records nothing", async () => {
    const before = (await a.listL3Networks({ pageSize: 1000 })).l3Networks.length;
    expect((await rejection(a.createL3Network({ name: "x", cidr: "10.1.0.1/16" }))).message).toMatch(/cidr/);
    expect((await rejection(a.createL3Network({ name: "x", cidr: "10.0.0.0/31" }))).message).toMatch(/\/8 to \/30/);
    expect((await rejection(a.createL3Network({ name: "x", cidr: "10.2.0.0/24", gateway: "10.3.0.1" }))).message).toMatch(/gateway 10\.3\.0\.1 is not an assignable address/);
    expect((await a.listL3Networks({ pageSize: 1000 })).l3Networks.length).toBe(before);

    const { l3Network } = await a.createL3Network({ name: "r", cidr: "10.9.0.0/24" });
    const l3 = l3Network!.uuid;
    const bad = [
      [{ startIp: "10.9.0.20", endIp: "10.9.0.10" }, /end_ip 10\.9\.0\.10 is before start_ip/],
      [{ startIp: "10.9.0.0", endIp: "10.9.0.10" }, /10\.9\.0\.0 is not an assignable address/],
      [{ startIp: "10.9.0.200", endIp: "10.9.0.255" }, /10\.9\.0\.255 is not an assignable address/],
      [{ startIp: "10.9.1.2", endIp: "10.9.1.9" }, /not an assignable address/],
      [{ startIp: "10.9.0.1", endIp: "10.9.0.9" }, /contains the gateway 10\.9\.0\.1/],
    ] as const;
    for (const [range, why] of bad) {
      const e = await rejection(a.addIpRange({ l3NetworkUuid: l3, ...range }));
      expect(e.code).toBe(Code.INVALID_ARGUMENT);
      expect(e.message).toMatch(why);
    }
    const { ipRange } = await a.addIpRange({ l3NetworkUuid: l3, startIp: "10.9.0.10", endIp: "10.9.0.100" });
    const overlap = await rejection(b.addIpRange({ l3NetworkUuid: l3, startIp: "10.9.0.100", endIp: "10.9.0.120" }));
    expect(overlap.code).toBe(Code.FAILED_PRECONDITION);
    expect(overlap.message).toContain(ipRange!.uuid);
    expect((await a.listIpRanges({ l3NetworkUuid: l3 })).ipRanges.map((r) => [r.startIp, r.endIp])).toEqual([["10.9.0.10", "10.9.0.100"]]);
  });

  it("refuses to delete a network or range while an address of it is held, then deletes them once released", async () => {
    const l3 = await network("10.10.0.0/24", "10.10.0.10", "10.10.0.20");
    const n = nic(l3);
    const [r] = (await a.allocateNicIps({ nics: [n] })).results;
    expect(r!.errorCode).toBe("");
    const range = (await a.listIpRanges({ l3NetworkUuid: l3 })).ipRanges[0]!;
    expect((await rejection(a.deleteIpRange({ uuid: range.uuid }))).code).toBe(Code.FAILED_PRECONDITION);
    const held = await rejection(b.deleteL3Network({ uuid: l3 }));
    expect([held.code, held.reason]).toEqual([Code.FAILED_PRECONDITION, "IP_ADDRESSES_HELD"]);
    await b.releaseVmNics({ vmUuids: [n.vmUuid] });
    await a.deleteL3Network({ uuid: l3 });
    expect((await rejection(a.getL3Network({ uuid: l3 }))).code).toBe(Code.NOT_FOUND);
    await a.deleteL3Network({ uuid: l3 }); // idempotent
  });
});

describe("IP allocation", () => {
  it("gives each NIC an address with its network's settings, the same one again on a retry", async () => {
    const l3 = await network("10.20.0.0/24", "10.20.0.10", "10.20.0.200");
    const nics = [nic(l3), nic(l3), nic(l3, "10.20.0.150")];
    const first = (await a.allocateNicIps({ nics })).results;
    expect(first.map((r) => r.errorCode)).toEqual(["", "", ""]);
    expect(first[2]!.ip).toBe("10.20.0.150");
    expect(first[0]).toMatchObject({ prefixLength: 24, gateway: "10.20.0.1", dns: ["1.1.1.1"] });
    expect(new Set(first.map((r) => r.ip)).size).toBe(3);
    const again = (await b.allocateNicIps({ nics })).results;
    expect(again.map((r) => r.ip)).toEqual(first.map((r) => r.ip));
  });

  it("never hands one address to two holders, however many replicas allocate at once, and says when the network is full", async () => {
    // 50 addresses, 80 NICs asking at once through both replicas in batches of 4.
    const l3 = await network("10.30.0.0/24", "10.30.0.10", "10.30.0.59");
    const asks = Array.from({ length: 80 }, () => nic(l3));
    const batches = Array.from({ length: 20 }, (_, i) => asks.slice(i * 4, i * 4 + 4));
    const results = (await Promise.all(batches.map((nics, i) => (i % 2 ? a : b).allocateNicIps({ nics })))).flatMap((r) => r.results);
    const got = results.filter((r) => r.errorCode === "");
    const full = results.filter((r) => r.errorCode !== "");
    expect(got).toHaveLength(50);
    expect(new Set(got.map((r) => r.ip)).size).toBe(50);
    expect(full.every((r) => r.errorCode === "RESOURCE_EXHAUSTED" && r.errorMessage.includes(l3))).toBe(true);
    // What the database holds is what the callers were told.
    const held = (await a.listIpAddresses({ l3NetworkUuid: l3, pageSize: 1000 })).ipAddresses;
    expect(new Map(held.map((h) => [h.holderUuid, h.ip]))).toEqual(new Map(got.map((r) => [r.nicUuid, r.ip])));
  });

  it("refuses an address held by another NIC or outside the ranges, naming it", async () => {
    const l3 = await network("10.40.0.0/24", "10.40.0.10", "10.40.0.20");
    const first = nic(l3, "10.40.0.12");
    await a.allocateNicIps({ nics: [first] });
    const [taken, outside] = (await b.allocateNicIps({ nics: [nic(l3, "10.40.0.12"), nic(l3, "10.40.0.99")] })).results;
    expect(taken!.errorCode).toBe("FAILED_PRECONDITION");
    expect(taken!.errorMessage).toContain(`held by nic ${first.nicUuid}`);
    expect(outside!.errorCode).toBe("INVALID_ARGUMENT");
    expect(outside!.errorMessage).toMatch(/10\.40\.0\.99 is in no IP range/);
  });

  it("reuses released addresses once the range wraps around", async () => {
    const l3 = await network("10.50.0.0/24", "10.50.0.10", "10.50.0.13");
    const four = Array.from({ length: 4 }, () => nic(l3));
    await a.allocateNicIps({ nics: four });
    await a.releaseVmNics({ vmUuids: [four[1]!.vmUuid] });
    const [next] = (await a.allocateNicIps({ nics: [nic(l3)] })).results;
    expect(next!.ip).toBe("10.50.0.11");
  });

  it("moves a NIC to another address and frees the old one", async () => {
    const l3 = await network("10.60.0.0/24", "10.60.0.10", "10.60.0.30");
    const n = nic(l3, "10.60.0.10");
    await a.allocateNicIps({ nics: [n] });
    const { result } = await b.changeNicIp({ nicUuid: n.nicUuid, ip: "10.60.0.25" });
    expect(result!.ip).toBe("10.60.0.25");
    const held = (await a.listIpAddresses({ l3NetworkUuid: l3 })).ipAddresses.map((h) => h.ip);
    expect(held).toEqual(["10.60.0.25"]);
    const unknown = await rejection(a.changeNicIp({ nicUuid: randomUUID() }));
    expect(unknown.code).toBe(Code.NOT_FOUND);
  });
});
