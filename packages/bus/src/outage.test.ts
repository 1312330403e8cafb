import { randomUUID } from "node:crypto";
import { startNats, type NatsServer } from "@stratum/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectBus, type Bus } from "./connect";
import { Membership, MembershipView } from "./membership";

// Its own nats-server: the test takes it away.
let nats: NatsServer;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  process.kill(nats.pid, "SIGCONT");
  await nats.stop();
});

const HEARTBEAT_MS = 100;

it("a view cut off from NATS declares nobody dead and keeps its ring; heartbeats back, a replica that died meanwhile goes after its TTL", async () => {
  const buses: Bus[] = [];
  const open = async (name: string) => {
    const bus = await connectBus({ servers: nats.url, prefix: "outage", name });
    buses.push(bus);
    return bus;
  };
  const [busA, busB] = [await open("a"), await open("b")];
  const viewA = await MembershipView.open(busA, { heartbeatMs: HEARTBEAT_MS });
  const viewB = await MembershipView.open(busB, { heartbeatMs: HEARTBEAT_MS });
  const a = await Membership.join(viewA, { service: "svc", replicaId: "a", address: "127.0.0.1:1" });
  const b = await Membership.join(viewB, { service: "svc", replicaId: "b", address: "127.0.0.1:2" });
  await viewA.until((v) => v.members("svc").length === 2);
  let ownedByA = randomUUID();
  while (viewA.ownerOf("svc", ownedByA)?.replicaId !== "a") ownedByA = randomUUID();
  const epoch = viewA.epoch("svc");

  // A NATS outage of ten TTLs (3 heartbeats each): no heartbeat reaches anyone.
  process.kill(nats.pid, "SIGSTOP");
  await new Promise((r) => setTimeout(r, 30 * HEARTBEAT_MS));
  expect(viewA.silent).toBe(true);
  expect(viewA.members("svc").map((m) => m.replicaId)).toEqual(["a", "b"]);
  expect(viewA.epoch("svc")).toBe(epoch);
  expect(a.owns(ownedByA)).toBe(true);
  process.kill(nats.pid, "SIGCONT");

  for (const deadline = Date.now() + 10_000; viewA.silent && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 5 * HEARTBEAT_MS)); // more than a TTL of heartbeats again
  expect(viewA.silent).toBe(false);
  expect(viewA.members("svc").map((m) => m.replicaId)).toEqual(["a", "b"]);

  // b dies (no clean leave): once heartbeats flow, its silence is death.
  viewB.close();
  await busB.close();
  await viewA.until((v) => v.members("svc").length === 1, 5_000);
  expect(viewA.members("svc").map((m) => m.replicaId)).toEqual(["a"]);

  await a.leave();
  void b; // died with its connection: nothing to leave
  viewA.close();
  for (const bus of buses) await bus.close();
});
