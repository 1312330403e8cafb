import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { InstanceState, OperationState } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipStatus } from "@stratum/proto/stratum/network/v1/eip_pb";
import { SERVICE_ID, SMALL, startBrokerStack, type BrokerStack } from "./stack";

/** Seed 003 through gRPC: provisioning keyed by the tenant's instance id, a unique index deciding. */
describe("broker provisioning (gRPC)", () => {
  let s: BrokerStack;
  beforeAll(async () => {
    s = await startBrokerStack();
  }, 180_000);
  afterAll(async () => {
    await s?.stop();
  });

  const rejection = async (p: Promise<unknown>): Promise<StratumError> => {
    try {
      await p;
    } catch (e) {
      return StratumError.from(e);
    }
    throw new Error("expected a rejection");
  };
  const instanceRows = async (instanceId: string) =>
    s.sql`SELECT uuid, state::text AS state, tenant FROM broker.instances WHERE instance_id = ${instanceId} ORDER BY seq` as Promise<Array<{ uuid: string; state: string; tenant: string }>>;

  it("returns at once with the instance Provisioning and its operation; the job makes a Running VM and the instance Ready", async () => {
    const c = s.client("acme");
    const { instance, created } = await c.provisionInstance({ instanceId: "inst-1", serviceId: SERVICE_ID, planId: SMALL, parameters: { name: "db-1" } });
    expect(created).toBe(true);
    expect(instance!.state).toBe(InstanceState.PROVISIONING);
    expect(instance!.operation).toMatch(/^[0-9a-f-]{36}$/);
    const ready = await s.untilInstance("acme", "inst-1", (i) => i.state === InstanceState.READY, "Ready");
    expect(ready.vmUuid).not.toBe("");
    expect(ready.address).toMatch(/^10\.0\./);
    const { vm } = await s.net.vms.getVm({ uuid: ready.vmUuid });
    expect(vm!.state).toBe(VmState.RUNNING);
    expect(vm!.name).toBe("db-1");
    expect(vm!.cpu).toBe(1);
    expect(vm!.nics[0]!.ip).toBe(ready.address);
    const op = await c.getInstanceOperation({ instanceId: "inst-1" });
    expect(op.operation).toBe(instance!.operation);
    expect(op.state).toBe(OperationState.SUCCEEDED);
  }, 60_000);

  it("an identical repeat returns the same instance and operation; other attributes under the key are ALREADY_EXISTS naming it", async () => {
    const c = s.client("acme");
    const first = (await c.provisionInstance({ instanceId: "inst-2", serviceId: SERVICE_ID, planId: SMALL, parameters: { eip: false } })).instance!;
    const again = await c.provisionInstance({ instanceId: "inst-2", serviceId: SERVICE_ID, planId: SMALL, parameters: { eip: false } });
    expect(again.created).toBe(false);
    expect(again.instance!.uuid).toBe(first.uuid);
    expect(again.instance!.operation).toBe(first.operation);
    const other = await rejection(c.provisionInstance({ instanceId: "inst-2", serviceId: SERVICE_ID, planId: "vm-medium", parameters: { eip: false } }));
    expect(other.code).toBe(Code.ALREADY_EXISTS);
    expect(other.reason).toBe("INSTANCE_ID_IN_USE");
    expect(other.message).toContain("inst-2");
    expect(await instanceRows("inst-2")).toHaveLength(1);
  }, 60_000);

  it("concurrent identical requests, released at once on both replicas, create exactly one instance", async () => {
    const clients = [s.client("acme", 0), s.client("acme", 1)];
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const calls = Array.from({ length: 24 }, (_, i) =>
      barrier.then(() => clients[i % 2]!.provisionInstance({ instanceId: "inst-race", serviceId: SERVICE_ID, planId: SMALL, parameters: {} })),
    );
    release();
    const results = await Promise.all(calls);
    expect(new Set(results.map((r) => r.instance!.uuid)).size).toBe(1);
    expect(new Set(results.map((r) => r.instance!.operation)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await instanceRows("inst-race")).toHaveLength(1);
    const ready = await s.untilInstance("acme", "inst-race", (i) => i.state === InstanceState.READY, "Ready");
    const vms = await s.sql`SELECT count(*)::int AS n FROM compute.vms WHERE uuid = ${ready.vmUuid}`;
    expect(vms[0]!.n).toBe(1);
  }, 60_000);

  it("bad input is INVALID_ARGUMENT naming what is wrong, and records nothing", async () => {
    const c = s.client("acme");
    const plan = await rejection(c.provisionInstance({ instanceId: "inst-bad", serviceId: SERVICE_ID, planId: "vm-huge" }));
    expect(plan.code).toBe(Code.INVALID_ARGUMENT);
    expect(plan.message).toContain("vm-huge");
    const service = await rejection(c.provisionInstance({ instanceId: "inst-bad", serviceId: "nope", planId: SMALL }));
    expect(service.code).toBe(Code.INVALID_ARGUMENT);
    expect(service.message).toContain("nope");
    const params = await rejection(c.provisionInstance({ instanceId: "inst-bad", serviceId: SERVICE_ID, planId: SMALL, parameters: { eip: "yes", colour: "red" } }));
    expect(params.code).toBe(Code.INVALID_ARGUMENT);
    expect(params.message).toContain("parameters.eip");
    expect(params.message).toContain("colour");
    expect(await instanceRows("inst-bad")).toHaveLength(0);
  });

  it("deprovision marks the instance Deprovisioning, destroys its VM, ends Deleted; then the key provisions a new instance", async () => {
    const c = s.client("acme");
    await c.provisionInstance({ instanceId: "inst-3", serviceId: SERVICE_ID, planId: SMALL });
    const ready = await s.untilInstance("acme", "inst-3", (i) => i.state === InstanceState.READY, "Ready");
    const { instance: going } = await c.deprovisionInstance({ instanceId: "inst-3" });
    expect(going!.state).toBe(InstanceState.DEPROVISIONING);
    const repeat = await c.deprovisionInstance({ instanceId: "inst-3" });
    expect(repeat.instance!.operation).toBe(going!.operation);
    const deleted = await s.untilInstance("acme", "inst-3", (i) => i.state === InstanceState.DELETED, "Deleted");
    expect(deleted.uuid).toBe(ready.uuid);
    const { vm } = await s.net.vms.getVm({ uuid: ready.vmUuid });
    expect(vm!.state).toBe(VmState.DESTROYED);
    const again = await c.provisionInstance({ instanceId: "inst-3", serviceId: SERVICE_ID, planId: SMALL });
    expect(again.created).toBe(true);
    expect(again.instance!.uuid).not.toBe(ready.uuid);
    const second = await s.untilInstance("acme", "inst-3", (i) => i.state === InstanceState.READY, "Ready");
    expect(second.vmUuid).not.toBe(ready.vmUuid);
  }, 90_000);

  it("an instance with eip: true is reached at its elastic IP, Active on the VM's host; deprovision deletes it", async () => {
    const c = s.client("acme");
    await c.provisionInstance({ instanceId: "inst-eip", serviceId: SERVICE_ID, planId: SMALL, parameters: { eip: true } });
    const ready = await s.untilInstance("acme", "inst-eip", (i) => i.state === InstanceState.READY, "Ready");
    expect(ready.eipUuid).not.toBe("");
    expect(ready.address).toMatch(/^172\.20\.0\./);
    const { eip } = await s.net.eips.getEip({ uuid: ready.eipUuid });
    expect(eip!.status).toBe(EipStatus.ACTIVE);
    expect(eip!.vmUuid).toBe(ready.vmUuid);
    await c.deprovisionInstance({ instanceId: "inst-eip" });
    await s.untilInstance("acme", "inst-eip", (i) => i.state === InstanceState.DELETED, "Deleted");
    const gone = await rejection(s.net.eips.getEip({ uuid: ready.eipUuid }));
    expect(gone.code).toBe(Code.NOT_FOUND);
  }, 90_000);

  it("update attaches and releases the elastic IP; a plan change is refused", async () => {
    const c = s.client("acme");
    await c.provisionInstance({ instanceId: "inst-upd", serviceId: SERVICE_ID, planId: SMALL });
    const ready = await s.untilInstance("acme", "inst-upd", (i) => i.state === InstanceState.READY, "Ready");
    const same = await c.updateInstance({ instanceId: "inst-upd", parameters: { eip: false } });
    expect(same.started).toBe(false);
    const { started, instance } = await c.updateInstance({ instanceId: "inst-upd", parameters: { eip: true } });
    expect(started).toBe(true);
    expect(instance!.state).toBe(InstanceState.UPDATING);
    const withEip = await s.untilInstance("acme", "inst-upd", (i) => i.state === InstanceState.READY && i.eipUuid !== "", "Ready with an EIP");
    expect(withEip.address).toMatch(/^172\.20\.0\./);
    expect(withEip.parameters).toMatchObject({ eip: true });
    await c.updateInstance({ instanceId: "inst-upd", parameters: { eip: false } });
    const without = await s.untilInstance("acme", "inst-upd", (i) => i.state === InstanceState.READY && i.eipUuid === "", "Ready without an EIP");
    expect(without.address).toBe(ready.address);
    const plan = await rejection(c.updateInstance({ instanceId: "inst-upd", planId: "vm-medium" }));
    expect(plan.code).toBe(Code.INVALID_ARGUMENT);
    expect(plan.reason).toBe("PLAN_NOT_UPDATEABLE");
  }, 120_000);

  it("bind returns credentials to the instance; an identical repeat the same ones; unbind revokes them", async () => {
    const c = s.client("acme");
    await c.provisionInstance({ instanceId: "inst-bind", serviceId: SERVICE_ID, planId: SMALL });
    const ready = await s.untilInstance("acme", "inst-bind", (i) => i.state === InstanceState.READY, "Ready");
    const { binding, created } = await c.bindInstance({ instanceId: "inst-bind", bindingId: "b1", parameters: { username: "app" } });
    expect(created).toBe(true);
    expect(binding!.credentials).toMatchObject({ address: ready.address, port: 22, username: "app" });
    expect(binding!.credentials!.password.length).toBeGreaterThanOrEqual(20);
    const again = await c.bindInstance({ instanceId: "inst-bind", bindingId: "b1", parameters: { username: "app" } });
    expect(again.created).toBe(false);
    expect(again.binding!.credentials!.password).toBe(binding!.credentials!.password);
    const other = await rejection(c.bindInstance({ instanceId: "inst-bind", bindingId: "b1", parameters: { username: "ops" } }));
    expect(other.code).toBe(Code.ALREADY_EXISTS);
    await c.unbindInstance({ instanceId: "inst-bind", bindingId: "b1" });
    expect((await rejection(c.getBinding({ instanceId: "inst-bind", bindingId: "b1" }))).code).toBe(Code.NOT_FOUND);
  }, 60_000);

  it("tenants are apart: another tenant neither sees the instance nor shares its key; no token is UNAUTHENTICATED", async () => {
    const acme = s.client("acme");
    const globex = s.client("globex");
    const a = (await acme.provisionInstance({ instanceId: "shared-key", serviceId: SERVICE_ID, planId: SMALL })).instance!;
    expect((await rejection(globex.getInstance({ instanceId: "shared-key" }))).code).toBe(Code.NOT_FOUND);
    expect((await rejection(globex.deprovisionInstance({ instanceId: "shared-key" }))).code).toBe(Code.NOT_FOUND);
    expect((await globex.listInstances({})).instances.map((i) => i.instanceId)).not.toContain("shared-key");
    // The same key under another tenant is that tenant's own, with other attributes even.
    const g = await globex.provisionInstance({ instanceId: "shared-key", serviceId: SERVICE_ID, planId: "vm-medium" });
    expect(g.created).toBe(true);
    expect(g.instance!.uuid).not.toBe(a.uuid);
    const none = await rejection(s.client(undefined).getInstance({ instanceId: "shared-key" }));
    expect(none.code).toBe(Code.UNAUTHENTICATED);
    const rows = await instanceRows("shared-key");
    expect(rows.map((r) => r.tenant).sort()).toEqual(["acme", "globex"]);
  }, 60_000);
});
