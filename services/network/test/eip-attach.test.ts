import { randomUUID } from "node:crypto";
import { Code } from "@stratum/core";
import { rejection } from "../../../packages/rpc/src/echo.fixture";
import { EipStatus } from "@stratum/proto/stratum/network/v1/eip_pb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { settled, startNetworkStack, type NetworkStack } from "./stack";

let s: NetworkStack;

beforeAll(async () => {
  s = await startNetworkStack();
}, 120_000);

afterAll(async () => {
  await s?.stop();
});

afterEach(() => {
  for (const h of s.base.sim.hosts) h.clearFaults();
});

/** Lines the replicas logged (they log JSON to stderr) while `run` ran. */
async function logged<T>(run: () => Promise<T>): Promise<{ result: T; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    for (const l of String(chunk).split("\n")) {
      try {
        if (l.startsWith("{")) lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { result: await run(), lines };
  } finally {
    process.stderr.write = write;
  }
}

async function metric(name: string): Promise<number> {
  let sum = 0;
  for (const r of s.network.replicas) {
    const text = await (await fetch(r.metricsUrl)).text();
    for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

describe("elastic IPs", () => {
  it("attaches: the binding is recorded, the call answers Applying, the rule lands on the VM's host and the EIP is Active", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    expect(eip.status).toBe(EipStatus.DETACHED);
    expect(eip.vipIp).toMatch(/^172\.20\.0\./);
    const { eip: attached } = await s.at(1).eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    expect(attached).toMatchObject({ status: EipStatus.APPLYING, vmNicUuid: vm.nicUuid, vmUuid: vm.uuid, guestIp: vm.ip });
    const active = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    expect(active.hostUuid).toBe(vm.hostUuid);
    expect(s.rules().get(vm.hostUuid)).toContainEqual({ eipUuid: eip.uuid, vip: eip.vipIp, guestIp: vm.ip, nicUuid: vm.nicUuid });
    expect(s.rules().get(s.hostUuids[1]!)!.some((r) => r.eipUuid === eip.uuid)).toBe(false);

    // A retried attach to the same NIC answers the EIP; to another NIC is refused naming the binding.
    expect((await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid })).eip!.vmNicUuid).toBe(vm.nicUuid);
    const other = await s.vm(1);
    const busy = await rejection(s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: other.nicUuid }));
    expect([busy.code, busy.reason]).toEqual([Code.FAILED_PRECONDITION, "EIP_ATTACHED"]);
    expect(busy.message).toContain(vm.nicUuid);

    const { eip: detaching } = await s.eips.detachEip({ uuid: eip.uuid });
    expect(detaching!.vmNicUuid).toBe("");
    const detached = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DETACHED, "Detached");
    expect(detached.hostUuid).toBe("");
    expect(s.rules().get(vm.hostUuid)!.some((r) => r.eipUuid === eip.uuid)).toBe(false);
  });

  it("refuses what cannot be attached, naming it, and changes nothing", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    const unknown = await rejection(s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: randomUUID() }));
    expect([unknown.code, unknown.reason]).toEqual([Code.NOT_FOUND, "VM_NIC_NOT_FOUND"]);
    const notPublic = await rejection(s.eips.createEip({ name: "x", l3NetworkUuid: s.privateL3 }));
    expect([notPublic.code, notPublic.reason]).toEqual([Code.FAILED_PRECONDITION, "L3_NETWORK_NOT_PUBLIC"]);
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    const second = await s.eip();
    const twice = await rejection(s.eips.attachEip({ uuid: second.uuid, vmNicUuid: vm.nicUuid }));
    expect([twice.code, twice.reason]).toEqual([Code.FAILED_PRECONDITION, "NIC_HAS_EIP"]);
    expect((await s.eips.getEip({ uuid: second.uuid })).eip!.status).toBe(EipStatus.DETACHED);
    await s.untilEip(eip.uuid, settled);
  });

  it("seed 000: an apply that fails rolls the binding back, and the agent keeps no rule", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    const hold = s.simHost(vm.hostUuid).hold("eip/apply");
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    const held = await hold.next(10_000);
    // While the apply is held the binding is already in the database: a stop or migration sees it.
    expect((await s.eips.listEips({ vmUuid: vm.uuid })).eips.map((e) => e.uuid)).toEqual([eip.uuid]);
    held.release({ kind: "http500" });
    const back = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DETACHED, "rolled back");
    expect(back).toMatchObject({ vmNicUuid: "", vmUuid: "", guestIp: "" });
    expect(back.statusReason).toMatch(/attach failed: apply on host .* failed/);
    expect(s.rules().get(vm.hostUuid)!.some((r) => r.eipUuid === eip.uuid)).toBe(false);
    hold.cancel();
  });

  it("seed 000: a rollback whose binding changed meanwhile (the NIC's address moved) matches nothing, warns with the ids, counts it, and the new binding is applied", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    const before = await metric("stratum_eip_attach_rollback_unmatched_total");
    const hold = s.simHost(vm.hostUuid).hold("eip/apply");
    const { lines } = await logged(async () => {
      await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
      const held = await hold.next(10_000); // holds this apply only: the next one (of the new address) goes through
      const { result } = await s.networks.changeNicIp({ nicUuid: vm.nicUuid });
      expect(result!.ip).not.toBe(vm.ip);
      held.release({ kind: "http500" });
      return s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.guestIp === result!.ip, "Active on the new address");
    });
    const warn = lines.find((l) => l.msg === "elastic IP attach rollback matched no row: the binding changed while the apply ran, so it is left as it is now");
    expect(warn).toMatchObject({ level: "warn", eipUuid: eip.uuid, vmNicUuid: vm.nicUuid, guestIp: vm.ip, vmUuid: vm.uuid });
    expect(await metric("stratum_eip_attach_rollback_unmatched_total")).toBe(before + 1);
    const now = (await s.eips.getEip({ uuid: eip.uuid })).eip!;
    expect(s.rules().get(vm.hostUuid)!.filter((r) => r.eipUuid === eip.uuid)).toEqual([{ eipUuid: eip.uuid, vip: eip.vipIp, guestIp: now.guestIp, nicUuid: vm.nicUuid }]);
  });

  it("a release that fails leaves the EIP in Error with the reason, and the collector retries it until it succeeds", async () => {
    const vm = await s.vm(1);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    const fault = s.simHost(vm.hostUuid).injectFault({ command: "eip/release", kind: "http500", times: 2 });
    await s.eips.detachEip({ uuid: eip.uuid });
    const failed = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ERROR, "Error");
    expect(failed.statusReason).toMatch(new RegExp(`release of its rule on host ${vm.hostUuid} failed`));
    expect(failed.hostUuid).toBe(vm.hostUuid);
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DETACHED, "Detached after the retries");
    expect(fault.hits).toBe(2);
    expect(s.rules().get(vm.hostUuid)!.some((r) => r.eipUuid === eip.uuid)).toBe(false);
  });

  it("delete detaches first, releases the rule, and gives the VIP back", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    const { eip: left } = await s.at(1).eips.deleteEip({ uuid: eip.uuid });
    expect(left).toBeUndefined();
    expect((await rejection(s.eips.getEip({ uuid: eip.uuid }))).code).toBe(Code.NOT_FOUND);
    expect(s.rules().get(vm.hostUuid)!.some((r) => r.eipUuid === eip.uuid)).toBe(false);
    const vips = (await s.networks.listIpAddresses({ l3NetworkUuid: s.publicL3, pageSize: 1000 })).ipAddresses;
    expect(vips.some((a) => a.ip === eip.vipIp)).toBe(false);
    await s.eips.deleteEip({ uuid: eip.uuid }); // idempotent
  });

  it("audits drift per host and a reconcile repairs it: rules the agent lost come back, rules of unknown EIPs go", async () => {
    const vm = await s.vm(1);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    const host = s.simHost(vm.hostUuid);
    host.clearEipRules();
    const stray = randomUUID();
    await fetch(`${host.url}/eip/apply`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ eipUuid: stray, vip: "203.0.113.9", guestIp: "10.0.9.9", nicUuid: randomUUID() }) });
    const { hosts } = await s.eips.auditEips({ hostUuids: [vm.hostUuid] });
    expect(hosts).toHaveLength(1);
    expect(hosts[0]!.missing.map((r) => r.eipUuid)).toContain(eip.uuid);
    expect(hosts[0]!.stale.map((r) => r.eipUuid)).toEqual([stray]);
    const { drift } = await s.at(1).eips.reconcileHostEips({ hostUuid: vm.hostUuid });
    expect(drift!.missing.map((r) => r.eipUuid)).toContain(eip.uuid);
    for (let i = 0; ; i++) {
      const [now] = (await s.eips.auditEips({ hostUuids: [vm.hostUuid] })).hosts;
      if (now!.missing.length === 0 && now!.stale.length === 0) break;
      if (i > 200) throw new Error(`drift never repaired: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(s.rules().get(vm.hostUuid)!.map((r) => r.eipUuid)).toContain(eip.uuid);
    expect(s.rules().get(vm.hostUuid)!.some((r) => r.eipUuid === stray)).toBe(false);
  });
});
