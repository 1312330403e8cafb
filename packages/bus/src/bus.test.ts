import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { connectBus, type Bus } from "./connect";
import { EventBus, type DomainEvent } from "./events";
import { Membership, MembershipView } from "./membership";

const natsUrl = inject("natsUrl");
const opened: Array<{ close(): unknown }> = [];

/** A bus with a prefix of its own, so test cases sharing one nats-server never see each other. */
async function open(prefix: string, name = "test"): Promise<Bus> {
  const bus = await connectBus({ servers: natsUrl, prefix, name });
  opened.push(bus);
  return bus;
}
const newPrefix = () => `t${randomUUID().slice(0, 8)}`;

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

describe("connectBus", () => {
  it("reports a dead NATS as NATS_UNAVAILABLE naming the server, after its retry budget", async () => {
    const err = await connectBus({ servers: "nats://127.0.0.1:1", connectTimeoutMs: 300 }).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.reason).toBe("NATS_UNAVAILABLE");
    expect(err.message).toContain("nats://127.0.0.1:1");
  });
});

describe("EventBus", () => {
  it("delivers events to a subscriber on a matching filter, and not others", async () => {
    const events = await EventBus.open(await open(newPrefix()));
    const got: DomainEvent[] = [];
    const seen = deferred<void>();
    const sub = await events.subscribe("compute.>", (e) => {
      got.push(e);
      if (got.length === 2) seen.resolve();
    });
    await events.publish("network", "eip_attached", { eip: "e1" });
    await events.publish("compute", "vm_state_changed", { vm: "v1", state: "Running" });
    await events.publish("compute", "host_disconnected", { host: "h1" });
    await seen.promise;
    await sub.stop();
    expect(got.map((e) => e.subject)).toEqual(["stratum.compute.vm_state_changed", "stratum.compute.host_disconnected"]);
    expect(got[0]).toMatchObject({ domain: "compute", event: "vm_state_changed", data: { vm: "v1", state: "Running" } });
  });

  it("a message that is not an event does not stop a durable subscriber", async () => {
    const bus = await open(newPrefix());
    const events = await EventBus.open(bus);
    await bus.js.publish(`${bus.prefix}.stratum.compute.junk`, "not json");
    await events.publish("compute", "vm_state_changed", { n: 1 });
    const seen = deferred<number>();
    const sub = await events.subscribe<{ n: number }>("compute.>", (e) => seen.resolve(e.data.n), { durable: "sturdy", from: "all" });
    expect(await seen.promise).toBe(1);
    await sub.stop();
  });

  it("refuses an event without data", async () => {
    const events = await EventBus.open(await open(newPrefix()));
    await expect(events.publish("compute", "x", undefined)).rejects.toThrow(/data is required/);
  });

  it("stores an event published twice with the same id once", async () => {
    const events = await EventBus.open(await open(newPrefix()));
    const first = await events.publish("compute", "vm_state_changed", { n: 1 }, { id: "evt-1" });
    const again = await events.publish("compute", "vm_state_changed", { n: 1 }, { id: "evt-1" });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ seq: first.seq, duplicate: true });
  });

  it("stores an unconfirmed event in the stream, once per id", async () => {
    const events = await EventBus.open(await open(newPrefix()));
    events.publishUnconfirmed("compute", "vm_state_changed", { n: 1 }, { id: "u-1" });
    events.publishUnconfirmed("compute", "vm_state_changed", { n: 1 }, { id: "u-1" });
    events.publishUnconfirmed("compute", "vm_state_changed", { n: 2 }, { id: "u-2" });
    await events.publish("compute", "sentinel", {}); // confirmed, and ordered after the others
    const got: string[] = [];
    const done = deferred<void>();
    const sub = await events.subscribe("compute.>", (e) => {
      if (e.event === "sentinel") done.resolve();
      else got.push(e.id);
    }, { from: "all" });
    await done.promise;
    await sub.stop();
    expect(got).toEqual(["u-1", "u-2"]);
  });

  it("a durable subscriber gets what was published while it was stopped, and a failed handler's event again", async () => {
    const events = await EventBus.open(await open(newPrefix()));
    const firstSeen = deferred<void>();
    let sub = await events.subscribe("compute.>", () => firstSeen.resolve(), { durable: "audit" });
    await events.publish("compute", "vm_state_changed", { n: 1 });
    await firstSeen.promise;
    await sub.stop();

    await events.publish("compute", "vm_state_changed", { n: 2 });
    const got: number[] = [];
    const done = deferred<void>();
    let failed = false;
    sub = await events.subscribe<{ n: number }>(
      "compute.>",
      (e) => {
        if (!failed) {
          failed = true;
          throw new Error("handler failed once");
        }
        got.push(e.data.n);
        done.resolve();
      },
      { durable: "audit", retryDelayMs: 10 },
    );
    await done.promise;
    await sub.stop();
    expect(got).toEqual([2]);
  });
});

describe("Membership", () => {
  it("every replica's view agrees on the owner of every resource", async () => {
    const prefix = newPrefix();
    const views = await Promise.all(["a", "b", "c"].map(async (id) => {
      const view = await MembershipView.open(await open(prefix, id), { heartbeatMs: 200 });
      opened.push(view);
      const self = await Membership.join(view, { service: "compute", replicaId: id, address: `127.0.0.1:${id.charCodeAt(0)}` });
      opened.push({ close: () => self.leave() });
      return view;
    }));
    for (const view of views) await view.until((v) => v.members("compute").length === 3);
    const keys = Array.from({ length: 1_000 }, () => randomUUID());
    const owners = views.map((v) => keys.map((k) => v.ownerOf("compute", k)?.replicaId));
    expect(owners[1]).toEqual(owners[0]);
    expect(owners[2]).toEqual(owners[0]);
    expect(new Set(owners[0])).toEqual(new Set(["a", "b", "c"]));
  });

  it("drops a replica that leaves at once, and one that dies after its TTL, changing the epoch", async () => {
    const prefix = newPrefix();
    const observer = await MembershipView.open(await open(prefix, "observer"), { heartbeatMs: 100, ttlMs: 400 });
    opened.push(observer);
    const joinAs = async (id: string) => {
      const bus = await connectBus({ servers: natsUrl, prefix, name: id });
      const view = await MembershipView.open(bus, { heartbeatMs: 100, ttlMs: 400 });
      return { bus, view, self: await Membership.join(view, { service: "compute", replicaId: id, address: `${id}:1` }) };
    };
    const leaver = await joinAs("leaver");
    const crasher = await joinAs("crasher");
    await observer.until((v) => v.members("compute").length === 2);
    const epoch = observer.epoch("compute");

    await leaver.self.leave();
    await observer.until((v) => v.member("compute", "leaver") === undefined, 300); // well under the TTL
    expect(observer.epoch("compute")).not.toBe(epoch);

    // A crash: the connection goes, no delete is ever sent.
    crasher.view.close();
    await crasher.bus.nc.close();
    const crashedAt = Date.now();
    await observer.until((v) => v.members("compute").length === 0, 3_000);
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(250);
    leaver.view.close();
    await leaver.bus.close();
  });

  it("a listener that throws does not stop the view", async () => {
    const prefix = newPrefix();
    const view = await MembershipView.open(await open(prefix, "v"), { heartbeatMs: 100 });
    opened.push(view);
    view.onChange(() => {
      throw new Error("listener bug");
    });
    const a = await Membership.join(view, { service: "compute", replicaId: "a", address: "a:1" });
    opened.push({ close: () => a.leave() });
    const other = await MembershipView.open(await open(prefix, "w"), { heartbeatMs: 100 });
    opened.push(other);
    const b = await Membership.join(other, { service: "compute", replicaId: "b", address: "b:1" });
    opened.push({ close: () => b.leave() });
    await view.until((v) => v.members("compute").length === 2);
  });

  it("refuses a second live process with the same replica id", async () => {
    const prefix = newPrefix();
    const first = await MembershipView.open(await open(prefix, "p1"), { heartbeatMs: 100, ttlMs: 300 });
    opened.push(first);
    const one = await Membership.join(first, { service: "compute", replicaId: "same", address: "one:1" });
    opened.push({ close: () => one.leave() });
    const second = await MembershipView.open(await open(prefix, "p2"), { heartbeatMs: 100, ttlMs: 300 });
    opened.push(second);
    const err = await Membership.join(second, { service: "compute", replicaId: "same", address: "two:1" }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.ALREADY_EXISTS, reason: "REPLICA_ID_IN_USE" });
    expect(second.member("compute", "same")?.address).toBe("one:1");
  });

  it("a replica that comes back under its id with a new address is seen at the new address", async () => {
    const prefix = newPrefix();
    const observer = await MembershipView.open(await open(prefix, "o"), { heartbeatMs: 100 });
    opened.push(observer);
    const view = await MembershipView.open(await open(prefix, "r"), { heartbeatMs: 100 });
    opened.push(view);
    const before = await Membership.join(view, { service: "compute", replicaId: "r", address: "old:1" });
    await observer.until((v) => v.member("compute", "r")?.address === "old:1");
    const changes: string[] = [];
    observer.onChange((c) => changes.push(`${c.left.map((m) => m.address)}->${c.joined.map((m) => m.address)}`));
    await before.leave();
    const after = await Membership.join(view, { service: "compute", replicaId: "r", address: "new:1" });
    opened.push({ close: () => after.leave() });
    await observer.until((v) => v.member("compute", "r")?.address === "new:1");
    expect(changes.join(" ")).toContain("new:1");
  });

  it("a view opened later sees the replicas already alive", async () => {
    const prefix = newPrefix();
    const early = await MembershipView.open(await open(prefix, "early"), { heartbeatMs: 200 });
    opened.push(early);
    const self = await Membership.join(early, { service: "network", replicaId: "n1", address: "x:1" });
    opened.push({ close: () => self.leave() });
    const late = await MembershipView.open(await open(prefix, "late"), { heartbeatMs: 200 });
    opened.push(late);
    expect(late.members("network").map((m) => m.replicaId)).toEqual(["n1"]);
    expect(self.owns(randomUUID())).toBe(true);
  });

  it("rejects a replica id that cannot be a subject token, joining nothing", async () => {
    const view = await MembershipView.open(await open(newPrefix()), { heartbeatMs: 200 });
    opened.push(view);
    await expect(Membership.join(view, { service: "compute", replicaId: "a.b", address: "x:1" })).rejects.toThrow(/replicaId must match/);
    expect(view.members("compute")).toEqual([]);
  });
});
