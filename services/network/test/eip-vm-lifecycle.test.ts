import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipStatus } from "@stratum/proto/stratum/network/v1/eip_pb";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNetworkStack, type NetworkStack } from "./stack";

let s: NetworkStack;

beforeAll(async () => {
  s = await startNetworkStack({ hosts: 2, sim: { migrateDurationMs: 0 } });
}, 120_000);

afterAll(async () => {
  await s?.stop();
});

const FINAL = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

describe("elastic IPs follow their VM", () => {
  it("seed 000: a VM stopped while its EIP's apply is held gets the EIP released after the apply, and the EIP is Down", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    const host = s.simHost(vm.hostUuid);
    const hold = host.hold("eip/apply");
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    const held = await hold.next(10_000);
    // The stop runs to its end on the agent while the apply is held: compute's sync request
    // reaches network and waits in the EIP's queue behind the attach.
    await s.vms.stopVm({ uuid: vm.uuid });
    await s.untilVm(vm.uuid, (v) => v.state === VmState.STOPPED);
    expect(host.inspect().eips.some((r) => r.eipUuid === eip.uuid)).toBe(false);
    held.release();
    const down = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DOWN, "Down");
    expect(down).toMatchObject({ vmNicUuid: vm.nicUuid, guestIp: vm.ip, hostUuid: "" }); // the binding is kept
    expect(host.inspect().eips.some((r) => r.eipUuid === eip.uuid)).toBe(false);
    // The release came after the apply, on the same host.
    const applies = host.inspect().log.filter((e) => e.command === "eip/apply" && e.taskId?.includes(eip.uuid));
    const releases = host.inspect().log.filter((e) => e.command === "eip/release" && e.taskId?.includes(eip.uuid));
    expect(applies.length).toBeGreaterThan(0);
    expect(releases.length).toBeGreaterThan(0);
    expect(releases.at(-1)!.seq).toBeGreaterThan(applies.at(-1)!.seq);

    // Started again, the rule comes back.
    await s.vms.startVm({ uuid: vm.uuid });
    const active = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active again");
    expect(active.hostUuid).toBe(vm.hostUuid);
    expect(host.inspect().eips.some((r) => r.eipUuid === eip.uuid)).toBe(true);
  });

  it("attached to a stopped VM, the EIP is Down with no rule anywhere", async () => {
    const vm = await s.vm(1);
    await s.vms.stopVm({ uuid: vm.uuid });
    await s.untilVm(vm.uuid, (v) => v.state === VmState.STOPPED);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DOWN, "Down");
    for (const rules of s.rules().values()) expect(rules.some((r) => r.eipUuid === eip.uuid)).toBe(false);
  });

  it("migration releases the rule on the source and applies it on the destination", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    const target = s.hostUuids[1]!;
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: target });
    const job = await s.base.untilJob(jobUuid, (j) => FINAL.has(j.state), "its end");
    expect(job.state).toBe(JobState.SUCCEEDED);
    const moved = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.hostUuid === target, "Active on the target");
    expect(moved.guestIp).toBe(vm.ip);
    expect(s.rules().get(target)!.map((r) => r.eipUuid)).toContain(eip.uuid);
    expect(s.rules().get(vm.hostUuid)!.map((r) => r.eipUuid)).not.toContain(eip.uuid);
  });

  it("destroy detaches the EIP (its rule released) and gives the NIC's address back", async () => {
    const vm = await s.vm(0);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    await s.vms.destroyVm({ uuid: vm.uuid });
    const detached = await s.untilEip(eip.uuid, (e) => e.status === EipStatus.DETACHED, "Detached");
    expect(detached.vmNicUuid).toBe("");
    for (const rules of s.rules().values()) expect(rules.some((r) => r.eipUuid === eip.uuid)).toBe(false);
    for (let i = 0; ; i++) {
      const held = (await s.networks.listIpAddresses({ l3NetworkUuid: s.privateL3, pageSize: 1000 })).ipAddresses;
      if (!held.some((a) => a.holderUuid === vm.nicUuid)) break;
      if (i > 200) throw new Error("the destroyed VM's NIC still holds its address");
      await new Promise((r) => setTimeout(r, 25));
    }
  });

  it("a NIC whose address changes (compute's SetVmNicIp) takes its EIP along", async () => {
    const vm = await s.vm(1);
    const eip = await s.eip();
    await s.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE, "Active");
    const { vm: after } = await s.vms.setVmNicIp({ uuid: vm.uuid, nicUuid: vm.nicUuid });
    const ip = after!.nics.find((n) => n.uuid === vm.nicUuid)!.ip;
    expect(ip).not.toBe(vm.ip);
    await s.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.guestIp === ip, "Active on the new address");
    expect(s.rules().get(vm.hostUuid)!.filter((r) => r.eipUuid === eip.uuid)).toEqual([{ eipUuid: eip.uuid, vip: eip.vipIp, guestIp: ip, nicUuid: vm.nicUuid }]);
  });
});

