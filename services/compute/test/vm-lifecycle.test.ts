import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { Code, StratumError } from "@stratum/core";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { settle, untilVmState, watchAll } from "./watch";

let stack: ComputeStack;
let hostUuids: string[];

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 2, hosts: 3 });
  hostUuids = await stack.addSimHosts(16, 64n);
});
afterAll(() => stack?.stop());

const agentVm = (vmUuid: string) => {
  for (const host of stack.sim.inspect()) {
    const vm = host.vms.find((v) => v.vmUuid === vmUuid);
    if (vm) return { hostUrl: host.url, state: vm.state };
  }
  return undefined;
};

describe("hosts", () => {
  it("adds a host by its agent URL and connects it", async () => {
    const { hosts } = await stack.hosts.listHosts({});
    expect(hosts).toHaveLength(3);
    for (const h of hosts) {
      expect(h.status).toBe(HostStatus.CONNECTED);
      expect(h.cpuCapacity).toBe(16);
      expect(h.memoryCapacityBytes).toBe(64n * GIB);
    }
    expect(stack.sim.inspect().every((h) => h.connection !== undefined)).toBe(true);
  });

  it("rejects bad input naming every bad field, changing nothing", async () => {
    const err = await stack.hosts.addHost({ name: "", agentUrl: "ftp://x", cpuCapacity: 0, memoryCapacityBytes: 1n }).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.violations.map((v: { field: string }) => v.field).sort()).toEqual(["agent_url", "cpu_capacity", "memory_capacity_bytes", "name"]);
    expect((await stack.hosts.listHosts({})).hosts).toHaveLength(3);
  });

  it("stores an agent URL as its origin, so one agent cannot be added twice under two spellings", async () => {
    const url = stack.sim.hosts[0]!.url; // already added by the suite
    const again = await stack.hosts.addHost({ name: "dup", agentUrl: `${url.replace("127.0.0.1", "127.0.0.1")}/`, cpuCapacity: 4, memoryCapacityBytes: 8n * GIB }).catch((e) => e);
    expect(again).toMatchObject({ code: Code.ALREADY_EXISTS, reason: "HOST_AGENT_URL_IN_USE" });
    const withPath = await stack.hosts.addHost({ name: "p", agentUrl: `${url}/agent`, cpuCapacity: 4, memoryCapacityBytes: 8n * GIB }).catch((e) => e);
    expect(withPath).toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "agent_url" }] });
  });

  it("refuses a host whose agent does not answer, naming the URL and command, and keeps nothing", async () => {
    const err = await stack.hosts.addHost({ name: "ghost", agentUrl: "http://127.0.0.1:1", cpuCapacity: 4, memoryCapacityBytes: 8n * GIB }).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.message).toContain("http://127.0.0.1:1");
    expect(err.message).toContain("host/connect");
    expect((await stack.hosts.listHosts({})).hosts).toHaveLength(3);
  });
});

describe("VM lifecycle", () => {
  it("creates, stops, starts, reboots and destroys a VM, the agent agreeing at each step", async () => {
    // Each call answers with the VM in its operation's transient state; WatchVm shows the end.
    const created = (await stack.vms.createVm({ name: "web-1", cpu: 2, memoryBytes: 4n * GIB })).vm!;
    expect(created.state).toBe(VmState.CREATED);
    expect(hostUuids).toContain(created.hostUuid);
    const vm = await untilVmState(stack.vms, created.uuid, VmState.RUNNING);
    expect(agentVm(vm.uuid)?.state).toBe("running");

    const host = async () => (await stack.hosts.getHost({ uuid: vm.hostUuid })).host!;
    expect((await host()).cpuUsed).toBe(2);

    const stopping = (await stack.vms.stopVm({ uuid: vm.uuid })).vm!;
    expect(stopping.state).toBe(VmState.STOPPING);
    await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
    expect(agentVm(vm.uuid)?.state).toBe("stopped");
    expect((await host()).cpuUsed).toBe(2); // a stopped VM keeps its capacity

    expect((await stack.vms.startVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.STARTING);
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    expect((await stack.vms.rebootVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.REBOOTING);
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid, force: true }), VmState.STOPPED);

    expect((await stack.vms.destroyVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.DESTROYING);
    const destroyed = await untilVmState(stack.vms, vm.uuid, VmState.DESTROYED);
    expect(destroyed.hostUuid).toBe("");
    expect(agentVm(vm.uuid)).toBeUndefined();
    expect((await host()).cpuUsed).toBe(0);
    // Destroying again is a no-op, not an error.
    expect((await stack.vms.destroyVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.DESTROYED);

    // Events are published after each commit without waiting for JetStream: wait for the last one.
    // Each goes to the VM's own subject.
    expect(stack.vmEvents.filter((e) => e.data.vmUuid === vm.uuid).every((e) => e.subject === `stratum.compute.vm_state_changed.${vm.uuid}`)).toBe(true);
    const seenFor = () => stack.vmEvents.filter((e) => e.data.vmUuid === vm.uuid).map((e) => e.data.to);
    await until(() => seenFor().length >= 13, "the VM's 13 state-change events");
    const seen = seenFor();
    expect(seen).toEqual([
      "Created", "Starting", "Running",
      "Stopping", "Stopped", "Starting", "Running", "Rebooting", "Running", "Stopping", "Stopped",
      "Destroying", "Destroyed",
    ]);
  });

  it("refuses an illegal transition with FAILED_PRECONDITION naming the current state", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "web-2", cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid }), VmState.STOPPED);
    const err = await stack.vms.stopVm({ uuid: vm.uuid }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID", resources: { vmUuid: vm.uuid, state: "Stopped" } });
    expect(err.message).toContain("it is Stopped");
    await stack.vms.destroyVm({ uuid: vm.uuid });
  });

  it("answers NOT_FOUND for an unknown VM and INVALID_ARGUMENT for a malformed UUID", async () => {
    const missing = randomUUID();
    await expect(stack.vms.getVm({ uuid: missing })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "VM_NOT_FOUND" });
    await expect(stack.vms.startVm({ uuid: missing })).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(watchAll(stack.vms, missing)).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "VM_NOT_FOUND" });
    await expect(stack.vms.stopVm({ uuid: "not-a-uuid" })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "uuid", description: "must be a lowercase UUID" }] });
  });

  it("returns the first VM for a retried create with the same client request id, on any replica", async () => {
    const key = `req-${randomUUID()}`;
    const first = (await stack.vms.createVm({ name: "idem", cpu: 1, memoryBytes: GIB, clientRequestId: key })).vm!;
    const viaOther = (await stack.clientsTo(1).vms.createVm({ name: "idem", cpu: 1, memoryBytes: GIB, clientRequestId: key })).vm!;
    expect(viaOther).toEqual(first); // the first accepted VM, as it was answered
    // …and once the VM runs, a retry still answers the first outcome and creates nothing.
    await untilVmState(stack.vms, first.uuid, VmState.RUNNING);
    expect((await stack.vms.createVm({ name: "idem", cpu: 1, memoryBytes: GIB, clientRequestId: key })).vm).toEqual(first);
    const conflict = await stack.vms.createVm({ name: "idem", cpu: 2, memoryBytes: GIB, clientRequestId: key }).catch((e) => e);
    expect(conflict).toMatchObject({ code: Code.ALREADY_EXISTS, reason: "REQUEST_ID_IN_USE" });
    const named = await stack.vms.listVms({ name: "idem" });
    expect(named.vms).toHaveLength(1);
    await stack.vms.destroyVm({ uuid: first.uuid });
  });

  it("places on the named host, and refuses a host that cannot take the VM", async () => {
    const target = hostUuids[2]!;
    const { vm } = await stack.vms.createVm({ name: "pinned", cpu: 1, memoryBytes: GIB, hostUuid: target });
    expect(vm!.hostUuid).toBe(target);
    // Capacity is checked by the accept: refused at once, nothing recorded.
    const err = await stack.vms.createVm({ name: "too-big", cpu: 64, memoryBytes: GIB, hostUuid: target }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "HOST_UNAVAILABLE" });
    expect((await stack.vms.listVms({ name: "too-big" })).vms).toEqual([]);
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });

  it("lists with filters and pages", async () => {
    const made: { uuid: string; hostUuid: string }[] = [];
    for (let i = 0; i < 5; i++) made.push(await settle(stack.vms, stack.vms.createVm({ name: `page-${i}`, cpu: 1, memoryBytes: GIB }), VmState.RUNNING));
    await settle(stack.vms, stack.vms.stopVm({ uuid: made[0]!.uuid }), VmState.STOPPED);
    const stopped = await stack.vms.listVms({ state: VmState.STOPPED });
    expect(stopped.vms.map((v) => v.uuid)).toContain(made[0]!.uuid);
    expect(stopped.vms.every((v) => v.state === VmState.STOPPED)).toBe(true);

    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await stack.vms.listVms({ pageSize: 2, pageToken });
      expect(page.vms.length).toBeLessThanOrEqual(2);
      seen.push(...page.vms.map((v) => v.uuid));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(expect.arrayContaining(made.map((v) => v.uuid)));
    expect(new Set(seen).size).toBe(seen.length);
    // A page that ends exactly at the last VM says so, instead of pointing at an empty page.
    const all = (await stack.vms.listVms({ pageSize: 1000 })).vms.length;
    expect((await stack.vms.listVms({ pageSize: all })).nextPageToken).toBe("");

    const onHost = await stack.vms.listVms({ hostUuid: made[1]!.hostUuid });
    expect(onHost.vms.every((v) => v.hostUuid === made[1]!.hostUuid)).toBe(true);
    await expect(stack.vms.listVms({ pageToken: "garbage" })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "page_token" }] });
    for (const vm of made) await stack.vms.destroyVm({ uuid: vm.uuid });
  });

  it("refuses to delete a host with VMs on it, and deletes it once they are gone", async () => {
    const target = hostUuids[0]!;
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "blocker", cpu: 1, memoryBytes: GIB, hostUuid: target }), VmState.RUNNING);
    await expect(stack.hosts.deleteHost({ uuid: target })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "HOST_HAS_VMS" });
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
    const extra = await stack.sim.addHost();
    const added = (await stack.hosts.addHost({ name: "spare", agentUrl: extra.url, cpuCapacity: 2, memoryCapacityBytes: 4n * GIB })).host!;
    await stack.hosts.deleteHost({ uuid: added.uuid });
    await expect(stack.hosts.getHost({ uuid: added.uuid })).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });

  it("refuses a host that offers more CPU or memory than its agent reports, and keeps nothing", async () => {
    const small = await stack.sim.addHost({ cpuNum: 4, memoryBytes: Number(8n * GIB) });
    const err = await stack.hosts.addHost({ name: "too-big", agentUrl: small.url, cpuCapacity: 8, memoryCapacityBytes: 8n * GIB }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "HOST_CAPACITY_EXCEEDS_AGENT", resources: { agentCpu: "4" } });
    expect(err.message).toContain("8 CPU (the agent reports 4)");
    expect((await stack.hosts.listHosts({})).hosts.some((h) => h.agentUrl === small.url)).toBe(false);
    // What the agent has is accepted.
    const ok = (await stack.hosts.addHost({ name: "fits", agentUrl: small.url, cpuCapacity: 4, memoryCapacityBytes: 8n * GIB })).host!;
    await stack.hosts.deleteHost({ uuid: ok.uuid });
  });
});

describe("operation model: accept, then run; WatchVm", () => {
  it("a create whose agent start is held answers at once, and WatchVm shows it reach Running once the agent answers", async () => {
    const hold = stack.sim.hold(1, "vm/start");
    const key = `held-${randomUUID()}`;
    const accepted = (await stack.vms.createVm({ name: "held-create", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]!, clientRequestId: key })).vm!;
    expect(accepted.state).toBe(VmState.CREATED);
    expect(accepted.hostUuid).toBe(hostUuids[1]);
    const held = await hold.next(10_000); // the agent has the start and holds it: the call had answered before
    const watch = stack.vms.watchVm({ uuid: accepted.uuid })[Symbol.asyncIterator]();
    const now = (await watch.next()).value!.vm!;
    expect(now.state).toBe(VmState.STARTING);
    // A retry with the same request id, on the other replica, answers the first accepted VM.
    expect((await stack.clientsTo(1).vms.createVm({ name: "held-create", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]!, clientRequestId: key })).vm).toEqual(accepted);
    held.release();
    const next = (await watch.next()).value!.vm!;
    expect(next).toMatchObject({ uuid: accepted.uuid, state: VmState.RUNNING, lastError: "" });
    expect(next.revision).toBeGreaterThan(now.revision);
    await watch.return?.(undefined);
    expect(agentVm(accepted.uuid)?.state).toBe("running");
    await stack.vms.destroyVm({ uuid: accepted.uuid });
  });

  it("a stop while a create's agent call is held is refused at once, FAILED_PRECONDITION naming the state", async () => {
    const hold = stack.sim.hold(2, "vm/start");
    const { vm } = await stack.vms.createVm({ name: "busy", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[2]! });
    const held = await hold.next(10_000);
    // Refused while the agent still holds the start: the accept never waits behind agent work.
    for (const c of [stack.vms, stack.clientsTo(1).vms]) {
      const err = await c.stopVm({ uuid: vm!.uuid }).catch((e) => e);
      expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_BUSY", resources: { vmUuid: vm!.uuid, state: "Starting" } });
      expect(err.message).toContain("it is Starting");
    }
    await expect(stack.vms.destroyVm({ uuid: vm!.uuid })).rejects.toMatchObject({ reason: "VM_BUSY" });
    // The start is still with the agent (an accept that waited on it would never have answered).
    expect((await stack.vms.getVm({ uuid: vm!.uuid })).vm!.state).toBe(VmState.STARTING);
    held.release();
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm!.uuid }), VmState.STOPPED);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });

  it("WatchVm starts with the VM as it is, streams every change in order, and ends after Destroyed; any replica serves it", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "watched", cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
    for (const replica of [0, 1]) {
      // Started before the destroy: its first item is the VM as it is now.
      const watch = stack.clientsTo(replica).vms.watchVm({ uuid: vm.uuid })[Symbol.asyncIterator]();
      expect((await watch.next()).value!.vm).toMatchObject({ state: VmState.RUNNING, revision: vm.revision });
      await watch.return?.(undefined);
    }
    const streams = [0, 1].map(async (replica) => {
      const seen: Array<{ state: VmState; revision: bigint }> = [];
      const it = stack.clientsTo(replica).vms.watchVm({ uuid: vm.uuid }, { timeoutMs: 30_000 })[Symbol.asyncIterator]();
      const first = await it.next();
      seen.push(first.value!.vm!);
      return { seen, rest: (async () => { for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value.vm!); return seen; })() };
    });
    const opened = await Promise.all(streams);
    await stack.vms.destroyVm({ uuid: vm.uuid });
    for (const { rest } of opened) {
      const seen = await rest; // the stream ends by itself after Destroyed
      expect(seen.map((v) => v.state)).toEqual([VmState.RUNNING, VmState.DESTROYING, VmState.DESTROYED]);
      const revisions = seen.map((v) => v.revision);
      expect(revisions).toEqual([...revisions].sort((a, b) => (a < b ? -1 : 1)));
      expect(new Set(revisions).size).toBe(3);
    }
    // A destroyed VM's watch is the VM, once, and the end.
    expect((await watchAll(stack.vms, vm.uuid)).map((v) => v.state)).toEqual([VmState.DESTROYED]);
  });
});
