import { afterAll, beforeAll, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { EipStatus } from "@stratum/proto/stratum/network/v1/eip_pb";
import { startNetworkStack, type NetworkStack } from "../../network/test/stack";
import { until } from "./until";

let stack: NetworkStack;
beforeAll(async () => {
  // Longjob, compute, storage, network and agent-sim; memory copies end at once.
  stack = await startNetworkStack({ hosts: 2, networkReplicas: 1, sim: { migrateDurationMs: 0 } });
});
afterAll(() => stack?.stop());

it("a migrated VM's elastic IP follows it: released on the source, applied on the target (the switch's EIP sync and the afterSwitch step), and the mark drains", async () => {
  const vm = await stack.vm(0);
  const eip = await stack.eip();
  await stack.eips.attachEip({ uuid: eip.uuid, vmNicUuid: vm.nicUuid });
  await stack.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.hostUuid === vm.hostUuid, "active on the source");
  const target = stack.hostUuids[1]!;

  const { jobUuid } = await stack.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: target });
  const job = await stack.base.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED || j.state === JobState.FAILED, "its end");
  expect(job.state).toBe(JobState.SUCCEEDED);
  expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!.hostUuid).toBe(target);

  const moved = await stack.untilEip(eip.uuid, (e) => e.status === EipStatus.ACTIVE && e.hostUuid === target, "active on the target");
  expect(moved.guestIp).toBe(vm.ip);
  const rules = stack.rules();
  expect(rules.get(target)!.map((r) => r.eipUuid)).toContain(eip.uuid);
  expect(rules.get(vm.hostUuid)!.map((r) => r.eipUuid)).not.toContain(eip.uuid);
  const { sql } = stack.base.compute.replicas[0]!.ctx.db;
  await until(async () => (await sql`SELECT 1 FROM compute.eip_syncs WHERE vm_uuid = ${vm.uuid}`).length === 0, "the EIP sync mark drained");
});
