import { randomUUID } from "node:crypto";
import { afterEach, expect, inject, it } from "vitest";
import { connectBus } from "./connect";
import { Membership, MembershipView } from "./membership";

const natsUrl = inject("natsUrl");
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

it("a draining replica is off the ring at once but alive until it leaves", async () => {
  const prefix = `d${randomUUID().slice(0, 8)}`;
  const bus = await connectBus({ servers: natsUrl, prefix, name: "drain" });
  const view = await MembershipView.open(bus, { heartbeatMs: 100 });
  cleanup.push(async () => {
    view.close();
    await bus.close();
  });
  const a = await Membership.join(view, { service: "svc", replicaId: "a", address: "127.0.0.1:1" });
  const b = await Membership.join(view, { service: "svc", replicaId: "b", address: "127.0.0.1:2" });
  cleanup.push(() => a.leave());
  await view.until((v) => v.members("svc").length === 2);
  let owned = randomUUID();
  while (view.ownerOf("svc", owned)?.replicaId !== "b") owned = randomUUID();

  await b.drain();
  await view.until((v) => v.members("svc").length === 1);
  expect(view.ownerOf("svc", owned)?.replicaId).toBe("a"); // its resources have a new owner
  expect(view.member("svc", "b")).toBeUndefined();
  expect(view.alive("svc").map((m) => [m.replicaId, m.draining ?? false])).toEqual([["a", false], ["b", true]]);
  // Still alive several heartbeats later: it keeps announcing itself while it drains.
  await new Promise((r) => setTimeout(r, 500));
  expect(view.alive("svc").map((m) => m.replicaId)).toEqual(["a", "b"]);

  await b.leave();
  await view.until((v) => v.alive("svc").length === 1);
  expect(view.alive("svc").map((m) => m.replicaId)).toEqual(["a"]);
});
