import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { Registry } from "prom-client";
import { connectBus, Membership, MembershipView } from "@stratum/bus";
import { membershipMetrics } from "./membership-metrics";
import { parseMetrics, valueOf } from "./test-support";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe("membership metrics on a real NATS", () => {
  it("reports each ring's epoch and live replicas as the view sees them at scrape time", async () => {
    const bus = await connectBus({ servers: inject("natsUrl"), prefix: `t${randomUUID().slice(0, 8)}`, name: "metrics-test" });
    cleanup.push(() => bus.close());
    const view = await MembershipView.open(bus, { heartbeatMs: 200 });
    cleanup.push(() => view.close());
    const registry = new Registry();
    const off = membershipMetrics(registry, view, ["compute"]);
    cleanup.push(off);
    const scrape = async () => parseMetrics(await registry.metrics());

    let s = await scrape();
    expect(valueOf(s, "stratum_membership_live_replicas", { ring: "compute" })).toBe(0);
    expect(valueOf(s, "stratum_membership_ring_epoch", { ring: "compute" })).toBe(view.epoch("compute"));

    const r1 = await Membership.join(view, { service: "compute", replicaId: "r1", address: "127.0.0.1:1" });
    cleanup.push(() => r1.leave());
    const r2 = await Membership.join(view, { service: "compute", replicaId: "r2", address: "127.0.0.1:2" });
    cleanup.push(() => r2.leave());
    const epochWithTwo = view.epoch("compute");
    s = await scrape();
    expect(valueOf(s, "stratum_membership_live_replicas", { ring: "compute" })).toBe(2);
    expect(valueOf(s, "stratum_membership_ring_epoch", { ring: "compute" })).toBe(epochWithTwo);
    // A service not asked for shows up once the view reports it.
    expect(valueOf(s, "stratum_membership_live_replicas", { ring: "network" })).toBeUndefined();
    const n1 = await Membership.join(view, { service: "network", replicaId: "n1", address: "127.0.0.1:3" });
    cleanup.push(() => n1.leave());
    expect(valueOf(await scrape(), "stratum_membership_live_replicas", { ring: "network" })).toBe(1);

    await r2.leave();
    await view.until((v) => v.members("compute").length === 1);
    s = await scrape();
    expect(valueOf(s, "stratum_membership_live_replicas", { ring: "compute" })).toBe(1);
    expect(valueOf(s, "stratum_membership_ring_epoch", { ring: "compute" })).not.toBe(epochWithTwo);
    expect(valueOf(s, "stratum_membership_ring_epoch", { ring: "compute" })).toBe(view.epoch("compute"));
  });
});
