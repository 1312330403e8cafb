import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { FORWARDED_BY_KEY } from "@stratum/bus";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { ServerInterceptor } from "@stratum/rpc";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { settle, untilVmState } from "./watch";

/** What each replica's interceptor chain received: method and whether it was forwarded to it. */
const received: Array<Array<{ method: string; forwarded: boolean }>> = [[], []];
const recorder = (replica: number): ServerInterceptor => (next) => (call) => {
  received[replica]!.push({ method: call.method.name, forwarded: call.ctx.metadata.get(FORWARDED_BY_KEY).length > 0 });
  return next(call);
};

let stack: ComputeStack;
let hostUuids: string[];
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 2, hosts: 2, startOptions: (i) => ({ observers: [recorder(i)] }) });
  hostUuids = await stack.addSimHosts(16, 64n);
});
afterAll(() => stack?.stop());

/** A UUID that replica 1 owns, so a call to replica 0 about it is forwarded. */
function ownedByReplica1(): string {
  const view = stack.replicas[0]!.ctx.view;
  for (;;) {
    const uuid = randomUUID();
    if (view.ownerOf("compute", uuid)?.replicaId === "compute-1") return uuid;
  }
}

/** vm/start commands the agents ran (not answered from their task-id cache) for one VM. */
function agentStarts(vmUuid: string): number {
  return stack.sim.inspect().flatMap((h) => h.log).filter((l) => l.command === "vm/start" && l.taskId?.startsWith(`start-${vmUuid}`) && !l.deduplicated).length;
}

describe("serving: validation before routing", () => {
  it("bad input gets INVALID_ARGUMENT on the replica it reached and is never forwarded; good input is", async () => {
    const uuid = ownedByReplica1();
    received[1]!.length = 0;
    const bad = await stack.vms.startVm({ uuid, clientRequestId: "has spaces" }).catch((e) => e);
    expect(bad).toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "client_request_id" }] });
    const badCreate = await stack.vms.createVm({ uuid, name: "", cpu: 1, memoryBytes: GIB }).catch((e) => e);
    expect(badCreate).toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "name", description: "is required" }] });
    expect(received[1]).toEqual([]);

    // The same call with good input is forwarded to the owner (so the check above can fail).
    const missing = await stack.vms.startVm({ uuid }).catch((e) => e);
    expect(missing).toMatchObject({ code: Code.NOT_FOUND });
    expect(received[1]).toEqual([{ method: "StartVm", forwarded: true }]);
  });

  it("the request the caller sent is not changed by routing (a create's UUID is chosen on a copy)", async () => {
    const key = `key-${randomUUID()}`;
    const request = { name: "copy", cpu: 1, memoryBytes: GIB, clientRequestId: key, uuid: "" };
    const { vm } = await stack.vms.createVm(request);
    expect(request.uuid).toBe("");
    expect(vm!.uuid).toMatch(/^[0-9a-f-]{36}$/);
    await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });
});

describe("serving: proto-declared limits and page tokens", () => {
  it("limits declared in the proto are enforced, every bad field named at once", async () => {
    const err = await stack.vms.createVm({ name: "x".repeat(129), cpu: 0, memoryBytes: 1n, hostUuid: "NOT-A-UUID" }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(err.violations.map((v: { field: string }) => v.field).sort()).toEqual(["cpu", "host_uuid", "memory_bytes", "name"]);
  });

  it("a page token is bound to the filters it was issued for", async () => {
    const made = await Promise.all([0, 1, 2].map((i) => stack.vms.createVm({ name: `paged-${i}`, cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]! })));
    const first = await stack.vms.listVms({ hostUuid: hostUuids[0]!, pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");
    const next = await stack.vms.listVms({ hostUuid: hostUuids[0]!, pageSize: 1, pageToken: first.nextPageToken });
    expect(next.vms[0]!.uuid).not.toBe(first.vms[0]!.uuid);
    const other = await stack.vms.listVms({ hostUuid: hostUuids[1]!, pageSize: 1, pageToken: first.nextPageToken }).catch((e) => e);
    expect(other).toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "page_token" }] });
    expect(other.violations[0].description).toContain("issued for other filters");
    for (const { vm } of made) {
      await untilVmState(stack.vms, vm!.uuid, VmState.RUNNING);
      await stack.vms.destroyVm({ uuid: vm!.uuid });
    }
  });
});

describe("serving: request ids (AIP-155) on every mutating call", () => {
  it("a retried start with the same request id runs once, on any replica, and answers the first outcome", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "retry-start", cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid }), VmState.STOPPED);
    const key = `start-${randomUUID()}`;
    const first = (await stack.vms.startVm({ uuid: vm.uuid, clientRequestId: key })).vm!;
    expect(first.state).toBe(VmState.STARTING); // accepted: the agent starts it after the answer
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    // The retry, once the VM is Running, still gets the first answer and starts nothing.
    const again = (await stack.clientsTo(1).vms.startVm({ uuid: vm.uuid, clientRequestId: key })).vm!;
    expect(again).toEqual(first);
    expect(agentStarts(vm.uuid)).toBe(1);
    // The same id for another call is a conflict naming the id, and changes nothing.
    const reused = await stack.vms.stopVm({ uuid: vm!.uuid, clientRequestId: key }).catch((e) => e);
    expect(reused).toMatchObject({ code: Code.ALREADY_EXISTS, reason: "REQUEST_ID_IN_USE", resources: { requestId: key } });
    expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.RUNNING);
    await stack.vms.destroyVm({ uuid: vm.uuid });
  });

  it("concurrent calls with one request id run the operation once and share its outcome", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "concurrent-start", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]! }), VmState.RUNNING);
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid }), VmState.STOPPED);
    const hold = stack.sim.hold(0, "vm/start");
    const key = `start-${randomUUID()}`;
    const calls = [stack.vms, stack.clientsTo(1).vms, stack.vms].map((c) => c.startVm({ uuid: vm.uuid, clientRequestId: key }));
    // All three are answered while the agent holds the start: one accept, shared.
    const outcomes = await Promise.all(calls);
    const held = await hold.next(10_000);
    expect(new Set(outcomes.map((o) => o.vm!.updateTime?.nanos))).toHaveProperty("size", 1);
    expect(outcomes.every((o) => o.vm!.state === VmState.STARTING)).toBe(true);
    held.release();
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    expect(agentStarts(vm.uuid)).toBe(1);
    hold.cancel();
    await stack.vms.destroyVm({ uuid: vm.uuid });
  });

  it("a failure that says the operation ran is the one outcome too", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "failed-once", cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
    const key = `start-${randomUUID()}`;
    const refused = await stack.vms.startVm({ uuid: vm.uuid, clientRequestId: key }).catch((e) => e);
    expect(refused).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID" });
    // The VM is now startable, but a retry of that request is that request's answer, not a new start.
    await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid }), VmState.STOPPED);
    const retried = await stack.vms.startVm({ uuid: vm.uuid, clientRequestId: key }).catch((e) => e);
    expect(retried).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID" });
    expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.STOPPED);
    await stack.vms.destroyVm({ uuid: vm.uuid });
  });
});

describe("serving: request records", () => {
  it("outcomes past their retention are forgotten, and running ones are kept", async () => {
    const { sweepRequests } = await import("@stratum/runtime");
    const { requests } = await import("../src/store/schema");
    const db = stack.replicas[0]!.ctx.db;
    const old = `old-${randomUUID()}`;
    const fresh = `fresh-${randomUUID()}`;
    const running = `running-${randomUUID()}`;
    await db.sql`INSERT INTO compute.requests (request_id, method, request_hash, state, created_at) VALUES
      (${old}, 'm', 'h', 'done', now() - interval '2 days'), (${fresh}, 'm', 'h', 'done', now()), (${running}, 'm', 'h', 'running', now() - interval '2 days')`;
    expect(await sweepRequests(db.db as never, requests)).toBeGreaterThanOrEqual(1);
    const left = (await db.sql`SELECT request_id FROM compute.requests WHERE request_id = ANY(${[old, fresh, running]})`).map((r) => r.request_id);
    expect(left.sort()).toEqual([fresh, running].sort());
  });
});

describe("serving: metrics", () => {
  /** `name{labels} value` lines of the Prometheus text format, as label maps and values. */
  async function scrape(url: string): Promise<Array<{ name: string; labels: Record<string, string>; value: number }>> {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const samples = [];
    for (const line of (await res.text()).split("\n")) {
      const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? "").matchAll(/([a-z_]+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
      samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
    return samples;
  }
  const value = (samples: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string>) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);

  it("every replica serves /metrics: its RPCs by method and code, agent calls, queue, DB pool and ring", async () => {
    const owner = stack.replicas[0]!;
    const before = await scrape(owner.metricsUrl);
    const uuid = (() => {
      for (;;) {
        const u = randomUUID();
        if (owner.ctx.view.ownerOf("compute", u)?.replicaId === "compute-0") return u;
      }
    })();
    const { vm } = await stack.vms.createVm({ uuid, name: "metered", cpu: 1, memoryBytes: GIB });
    await untilVmState(stack.vms, uuid, VmState.RUNNING); // the agent's start runs after the answer
    await stack.vms.getVm({ uuid: "not-a-uuid" }).catch(() => undefined);
    const after = await scrape(owner.metricsUrl);
    const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    expect(delta("stratum_rpc_server_handled_total", { grpc_method: "CreateVm", grpc_code: "OK" })).toBe(1);
    expect(delta("stratum_rpc_server_handled_total", { grpc_method: "GetVm", grpc_code: "INVALID_ARGUMENT" })).toBe(1);
    expect(delta("stratum_rpc_server_handling_seconds_count", { grpc_method: "CreateVm" })).toBe(1);
    expect(delta("stratum_agent_calls_total", { command: "vm/start", outcome: "ok" })).toBe(1);
    expect(delta("stratum_chain_task_wait_seconds_count", {})).toBeGreaterThanOrEqual(1);
    expect(value(after, "stratum_membership_live_replicas", { ring: "compute" })).toBe(2);
    expect(value(after, "stratum_db_pool_max", {})).toBe(8);
    expect(value(after, "stratum_db_pool_in_use", {})).toBeGreaterThanOrEqual(0);
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });
});
