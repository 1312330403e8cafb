import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createLogger, StratumError } from "@stratum/core";
import { MarkDrainer } from "../src/domain/mark-drainer";
import { macOf, nicUuidOf } from "../src/domain/vm-nics";
import { MarkStore, type MarkTable } from "../src/store/mark-store";
import { VmStore } from "../src/store/vm-store";
import { startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

let stack: ComputeStack;
let store: VmStore;
let sql: ComputeStack["replicas"][number]["ctx"]["db"]["sql"];
/** Copies of the mark tables nobody else drains (the replica's own drainers work on the real ones). */
const CLAIMED: MarkTable = { table: "compute.test_claimed_marks", key: "vm_uuid", mode: "claimed" };
const LOCKED: MarkTable = { table: "compute.test_locked_marks", key: "vm_uuid", mode: "locked" };

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2 });
  await stack.addSimHosts(32, 128n);
  const { db, ownership } = stack.replicas[0]!.ctx;
  sql = db.sql;
  store = new VmStore(db as never, ownership.incarnation);
  await sql`CREATE TABLE compute.test_claimed_marks (LIKE compute.eip_syncs INCLUDING ALL)`;
  await sql`CREATE TABLE compute.test_locked_marks (LIKE compute.volume_releases INCLUDING ALL)`;
});
afterAll(() => stack?.stop());

const place = async (nicCount: number, hostUuid?: string) => (await store.insertPlaced({ uuid: randomUUID(), name: "m", cpu: 1, memory: 1 << 20, clientRequestId: null, nicCount }, hostUuid))!;
/** The VM's EIP sync mark's generation, or undefined when it has none. */
const syncMark = async (uuid: string) => {
  const [row] = await sql`SELECT generation FROM compute.eip_syncs WHERE vm_uuid = ${uuid}`;
  return row ? Number(row.generation) : undefined;
};
const step = async (uuid: string, from: Parameters<VmStore["transition"]>[1], to: Parameters<VmStore["transition"]>[2], key?: string) => {
  const row = await store.transition(uuid, from, to, undefined, key);
  expect(row, `${from} → ${to}`).toMatchObject({ state: to });
  return row!;
};

describe("the EIP sync mark (vms_eip_sync trigger)", () => {
  it("is written by each change of a NIC VM's EIP host, in the statement of the change — → Running, → Stopping, a migration's switch — and by no other", async () => {
    const vm = await place(1);
    await step(vm.uuid, "Created", "Starting");
    expect(await syncMark(vm.uuid)).toBeUndefined(); // no EIP host before, none now
    await step(vm.uuid, "Starting", "Running");
    expect(await syncMark(vm.uuid)).toBe(0);
    // Rebooting keeps its rules where they are.
    await step(vm.uuid, "Running", "Rebooting");
    await step(vm.uuid, "Rebooting", "Running");
    expect(await syncMark(vm.uuid)).toBe(0);
    await step(vm.uuid, "Running", "Stopping");
    expect(await syncMark(vm.uuid)).toBe(1); // written again while pending: a new generation
    await step(vm.uuid, "Stopping", "Stopped");
    expect(await syncMark(vm.uuid)).toBe(1);
    await step(vm.uuid, "Stopped", "Starting");
    await step(vm.uuid, "Starting", "Running");
    expect(await syncMark(vm.uuid)).toBe(2);

    // A migration: Migrating keeps the rules on the source; its switch moves them.
    const key = `migrate:${randomUUID()}`;
    await step(vm.uuid, "Running", "Migrating", key);
    expect(await store.reserveMigrationTarget(vm.uuid, key, undefined)).toMatchObject({ migrateTargetUuid: expect.any(String) });
    expect(await syncMark(vm.uuid)).toBe(2);
    const moved = await store.endMigration(vm.uuid, key, "switch", "");
    expect(moved!.hostUuid).not.toBe(vm.hostUuid);
    expect(await syncMark(vm.uuid)).toBe(3);
    // A migration that reverts leaves the VM (and its rules) where they were.
    const back = `migrate:${randomUUID()}`;
    await step(vm.uuid, "Running", "Migrating", back);
    await store.endMigration(vm.uuid, back, "revert", "cancelled");
    expect(await syncMark(vm.uuid)).toBe(3);
  });

  it("is not written for a VM without NICs, nor by a write that matched nothing", async () => {
    const bare = await place(0);
    await step(bare.uuid, "Created", "Starting");
    await step(bare.uuid, "Starting", "Running");
    await step(bare.uuid, "Running", "Stopping");
    expect(await syncMark(bare.uuid)).toBeUndefined();

    const vm = await place(2);
    await step(vm.uuid, "Created", "Starting");
    const leaseless = new VmStore(stack.replicas[0]!.ctx.db as never, () => "ghost@1");
    expect(await leaseless.transition(vm.uuid, "Starting", "Running")).toBeUndefined();
    expect(await syncMark(vm.uuid)).toBeUndefined();
  });

  it("a destroy of a VM with NICs marks their release and ends them (NICs gone, nic_count 0) in its statement; one without NICs marks none", async () => {
    const vm = await place(2);
    const nics = [0, 1].map((i) => ({ uuid: nicUuidOf(vm.uuid, i), i }));
    for (const n of nics) {
      await sql`INSERT INTO compute.vm_nics (uuid, vm_uuid, l3_network_uuid, ip, mac, device_index) VALUES (${n.uuid}, ${vm.uuid}, ${randomUUID()}, ${`10.9.0.${n.i + 1}`}, ${macOf(n.uuid)}, ${n.i})`;
    }
    expect((await store.nicsOf([vm])).get(vm.uuid)!.map((n) => n.deviceIndex)).toEqual([0, 1]);
    await step(vm.uuid, "Created", "Destroying");
    const gone = await store.transitionReleasing(vm.uuid, "Destroying", "Destroyed");
    expect(gone).toMatchObject({ state: "Destroyed", nicCount: 0, hostUuid: null });
    expect(await sql`SELECT 1 FROM compute.vm_nics WHERE vm_uuid = ${vm.uuid}`).toHaveLength(0);
    expect(await sql`SELECT 1 FROM compute.nic_releases WHERE vm_uuid = ${vm.uuid}`).toHaveLength(1);

    const bare = await place(0);
    await step(bare.uuid, "Created", "Destroying");
    await store.transitionReleasing(bare.uuid, "Destroying", "Destroyed");
    expect(await sql`SELECT 1 FROM compute.nic_releases WHERE vm_uuid = ${bare.uuid}`).toHaveLength(0);
    expect(await sql`SELECT 1 FROM compute.volume_releases WHERE vm_uuid = ${bare.uuid}`).toHaveLength(1);
  });

  it("nicsOf costs no query for VMs without NICs, and reads a page's NICs in device order", async () => {
    const bare = await place(0);
    expect(await store.nicsOf([bare])).toEqual(new Map());
    const vm = await place(3);
    for (const i of [2, 0, 1]) {
      const uuid = nicUuidOf(vm.uuid, i);
      await sql`INSERT INTO compute.vm_nics (uuid, vm_uuid, l3_network_uuid, ip, mac, device_index) VALUES (${uuid}, ${vm.uuid}, ${randomUUID()}, ${`10.8.0.${i + 1}`}, ${macOf(uuid)}, ${i})`;
    }
    const got = await store.nicsOf([bare, vm]);
    expect([...got.keys()]).toEqual([vm.uuid]);
    expect(got.get(vm.uuid)!.map((n) => n.ip)).toEqual(["10.8.0.1", "10.8.0.2", "10.8.0.3"]);
  });
});

describe("NIC identities", () => {
  it("are derived from the VM and device index (a retry asks for the same NICs), with a locally administered unicast MAC each", () => {
    const vm = randomUUID();
    expect(nicUuidOf(vm, 0)).toBe(nicUuidOf(vm, 0));
    expect(nicUuidOf(vm, 0)).not.toBe(nicUuidOf(vm, 1));
    expect(nicUuidOf(vm, 0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    for (let i = 0; i < 200; i++) {
      const mac = macOf(nicUuidOf(randomUUID(), 0));
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02); // locally administered
      expect(first & 0x01).toBe(0); // unicast
    }
  });

  it("a MAC another NIC has is refused by the unique index, not shared", async () => {
    const [a, b] = [await place(1), await place(1)];
    const mac = macOf(nicUuidOf(a.uuid, 0));
    await sql`INSERT INTO compute.vm_nics (uuid, vm_uuid, l3_network_uuid, ip, mac, device_index) VALUES (${nicUuidOf(a.uuid, 0)}, ${a.uuid}, ${randomUUID()}, '10.7.0.1', ${mac}, 0)`;
    // b's create draws the same MAC (forced): it is refused naming it, and records no NIC.
    const { recorded, refused } = await store.finishCreates(
      [{ uuid: b.uuid, fence: b.fence, rootVolumeUuid: randomUUID(), requestId: null, nics: [{ uuid: nicUuidOf(b.uuid, 0), vmUuid: b.uuid, l3NetworkUuid: randomUUID(), ip: "10.7.0.2", mac, deviceIndex: 0 }] }],
      [],
      [],
      [],
    );
    expect(recorded.size).toBe(0);
    expect(refused.get(b.uuid)).toMatchObject({ code: Code.ALREADY_EXISTS, reason: "MAC_ADDRESS_IN_USE" });
    expect(refused.get(b.uuid)!.message).toContain(mac);
    expect(await sql`SELECT 1 FROM compute.vm_nics WHERE vm_uuid = ${b.uuid}`).toHaveLength(0);
    // Rolled back like any failed create: gone, and what storage and network gave it marked for release.
    expect(await store.get(b.uuid)).toBeUndefined();
    expect(await sql`SELECT 1 FROM compute.volume_releases WHERE vm_uuid = ${b.uuid}`).toHaveLength(1);
    expect(await sql`SELECT 1 FROM compute.nic_releases WHERE vm_uuid = ${b.uuid}`).toHaveLength(1);
  });
});

describe("a claimed mark table (EIP syncs, host reconciles)", () => {
  const marks = () => new MarkStore(stack.replicas[0]!.ctx.db as never, CLAIMED);
  const clear = () => sql`DELETE FROM compute.test_claimed_marks`;

  it("a mark written again while its drain's call is in flight outlives that drain, and goes out with the next", async () => {
    await clear();
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await marks().mark([a, b, c]);
    const calls: string[][] = [];
    const first = await marks().drain(100, async (keys) => {
      calls.push([...keys].sort());
      await marks().mark([b]); // b changed again meanwhile: the call may have read it before
    });
    expect(first).toMatchObject({ done: 2, failed: 0, again: 1, taken: 3 });
    expect((await marks().pending()).map((p) => p.key)).toEqual([b]);
    const second = await marks().drain(100, async (keys) => void calls.push(keys));
    expect(second).toMatchObject({ done: 1, again: 0, taken: 1 });
    expect(calls[1]).toEqual([b]);
    expect(await marks().pending()).toEqual([]);
  });

  it("a mark claimed by a drain in flight is not taken by another; one whose drainer died is taken once its claim lapsed", async () => {
    await clear();
    const key = randomUUID();
    await marks().mark([key]);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inCall = new Promise<void>((r) => (entered = r));
    const slow = marks().drain(100, async () => {
      entered();
      await held;
    });
    await inCall;
    expect(await marks().drain(100, async () => {})).toMatchObject({ taken: 0 });
    release();
    expect(await slow).toMatchObject({ done: 1 });

    // A drainer that died mid-call left its claim: taken again after it lapsed.
    const orphan = randomUUID();
    await marks().mark([orphan]);
    await sql`UPDATE compute.test_claimed_marks SET claimed_until = now() + interval '1 hour' WHERE vm_uuid = ${orphan}`;
    expect(await marks().drain(100, async () => {})).toMatchObject({ taken: 0 });
    await sql`UPDATE compute.test_claimed_marks SET claimed_until = now() - interval '1 second' WHERE vm_uuid = ${orphan}`;
    expect(await marks().drain(100, async () => {})).toMatchObject({ done: 1, taken: 1 });
  });

  it("an outage fails the batch in one call (attempts and error recorded, claim released); a refusal of the batch is tried key by key; per-key failures keep only theirs", async () => {
    await clear();
    const keys = [randomUUID(), randomUUID(), randomUUID()];
    await marks().mark(keys);
    let calls = 0;
    const down = await marks().drain(100, async () => {
      calls++;
      throw new StratumError(Code.UNAVAILABLE, "no live replica of network", { reason: "NO_MEMBERS" });
    });
    expect(down).toMatchObject({ done: 0, failed: 3, taken: 3 });
    expect(calls).toBe(1);
    const pending = await marks().pending();
    expect(pending.map((p) => [p.attempts, p.lastError])).toEqual(keys.map(() => [1, "no live replica of network"]));
    expect(await sql`SELECT 1 FROM compute.test_claimed_marks WHERE claimed_until IS NOT NULL`).toHaveLength(0);

    const bad = keys[1]!;
    const refusing = await marks().drain(100, async (batch) => {
      if (batch.includes(bad)) throw new StratumError(Code.FAILED_PRECONDITION, `cannot sync ${bad}`, { reason: "NOPE" });
    });
    expect(refusing).toMatchObject({ done: 2, failed: 1 });
    expect(await marks().pending()).toEqual([{ key: bad, attempts: 2, lastError: `cannot sync ${bad}` }]);

    const other = randomUUID();
    await marks().mark([other]);
    const perKey = await marks().drain(100, async (batch) => new Map(batch.filter((k) => k === bad).map((k) => [k, new Error("agent down")])));
    expect(perKey).toMatchObject({ done: 1, failed: 1 });
    expect(await marks().pending()).toEqual([{ key: bad, attempts: 3, lastError: "agent down" }]);
  });
});

describe("a locked mark table (volume and NIC releases)", () => {
  const marks = () => new MarkStore(stack.replicas[0]!.ctx.db as never, LOCKED);

  it("replicas draining at once share the marks (a mark in a drain's call is locked); a release in flight holds back whoever deletes its mark", async () => {
    await sql`DELETE FROM compute.test_locked_marks`;
    const key = randomUUID();
    await marks().mark([key]);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inCall = new Promise<void>((r) => (entered = r));
    const slow = marks().drain(100, async () => {
      entered();
      await held;
    });
    await inCall;
    expect(await marks().drain(100, async () => {})).toMatchObject({ taken: 0 });
    // What a retried create does (clearReleases): it waits for the release to end.
    let cleared = false;
    const clearing = sql`DELETE FROM compute.test_locked_marks WHERE vm_uuid = ${key}`.then(() => (cleared = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(cleared).toBe(false);
    release();
    expect(await slow).toMatchObject({ done: 1 });
    await clearing;
  });
});

describe("MarkDrainer", () => {
  it("retries a failing call with backoff, logging a warning with the error, until it succeeds; the mark is deleted then", async () => {
    await sql`DELETE FROM compute.test_claimed_marks`;
    const warnings: string[] = [];
    const log = createLogger({}, { level: "warn", sink: (line) => void warnings.push(line) });
    let failuresLeft = 2;
    const seen: string[][] = [];
    const drainer = new MarkDrainer({
      what: "sync vm eips",
      store: new MarkStore(stack.replicas[0]!.ctx.db as never, CLAIMED),
      call: async (keys) => {
        seen.push(keys);
        if (failuresLeft-- > 0) throw new StratumError(Code.UNAVAILABLE, "network is down", { reason: "NO_MEMBERS" });
      },
      log,
      scanMs: 60_000,
    });
    const key = randomUUID();
    drainer.start();
    try {
      await drainer.request([key]);
      await until(async () => (await new MarkStore(stack.replicas[0]!.ctx.db as never, CLAIMED).pending()).length === 0, "the mark drained", 10_000);
    } finally {
      await drainer.stop();
    }
    expect(seen.filter((k) => k.includes(key)).length).toBe(3);
    expect(warnings.filter((w) => w.includes("could not sync vm eips yet")).length).toBe(2);
    expect(warnings[0]).toContain("network is down");
  });
});
