import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { Code, createClient, closeClient, createServer, implement, StratumError, type ServiceImpl, type StratumServer } from "@stratum/rpc";
import { connectBus } from "./connect";
import { Membership, MembershipView } from "./membership";
import { FORWARDED_BY_KEY, NOT_OWNER, OWNER_UNREACHABLE, ownerRouting, ServiceRouter, ServiceRouters } from "./routing";

const natsUrl = inject("natsUrl");
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const unimplemented = () => {
  throw new StratumError(Code.UNIMPLEMENTED, "not in this test");
};

/** Echo answers with who handled the call and who forwarded it: `<replica>:<forwarder>`. */
function echoImpl(replicaId: string): ServiceImpl<typeof EchoService> {
  return {
    echo: (req, ctx) => ({ message: req.message, payload: Buffer.from(`${replicaId}:${ctx.metadata.get(FORWARDED_BY_KEY)[0] ?? ""}`) }),
    echoStream: unimplemented as never,
    fail: unimplemented,
    sleep: unimplemented,
    forward: unimplemented,
    append: unimplemented,
  };
}

interface ReplicaOptions {
  /** The resource a call is about, as this replica sees it (default: an Echo's message). */
  keyOf?: (message: string) => string;
}

async function startReplica(prefix: string, replicaId: string, options: ReplicaOptions = {}) {
  const keyOf = options.keyOf ?? ((m: string) => m);
  const bus = await connectBus({ servers: natsUrl, prefix, name: replicaId });
  const view = await MembershipView.open(bus, { heartbeatMs: 200 });
  // Fast retries of the forwarded (idempotent) Echo, so an unreachable owner is reported soon.
  const routers = new ServiceRouters(view, "echo", { retry: { initialBackoffMs: 5, maxBackoffMs: 10, maxAttempts: 2 } });
  let membership: Membership | undefined;
  const routing = ownerRouting({
    membership: () => membership,
    serviceName: "echo",
    routerFor: (s) => routers.for(s),
    keyOf: (call) => (call.method.localName === "echo" ? keyOf((call.request as { message: string }).message) : undefined),
  });
  const server: StratumServer = await createServer({ host: "127.0.0.1", port: 0, services: [implement(EchoService, echoImpl(replicaId))], interceptors: [routing] });
  membership = await Membership.join(view, { service: "echo", replicaId, address: `127.0.0.1:${server.port}` });
  cleanup.push(async () => {
    await membership?.leave();
    routers.close();
    await server.shutdown();
    view.close();
    await bus.close();
  });
  return { view, server, address: `127.0.0.1:${server.port}`, leave: () => membership!.leave() };
}

/** A client-side router for the `echo` replicas of `prefix`, once it sees `replicas` of them. */
async function clientRouter(prefix: string, replicas: number) {
  const clientBus = await connectBus({ servers: natsUrl, prefix, name: "client" });
  const view = await MembershipView.open(clientBus, { heartbeatMs: 200 });
  const router = new ServiceRouter(view, "echo", EchoService);
  cleanup.push(async () => {
    router.close();
    view.close();
    await clientBus.close();
  });
  await view.until((v) => v.members("echo").length === replicas);
  return { view, router };
}

/** A resource UUID that `view` places on `replicaId`. */
function ownedBy(view: MembershipView, replicaId: string): string {
  let uuid = randomUUID();
  while (view.ownerOf("echo", uuid)?.replicaId !== replicaId) uuid = randomUUID();
  return uuid;
}

describe("routing to the owning replica", () => {
  it("a call that lands on a non-owner is forwarded once and answered by the owner", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    const b = await startReplica(prefix, "b");
    await a.view.until((v) => v.members("echo").length === 2);
    await b.view.until((v) => v.members("echo").length === 2);

    const client = createClient(EchoService, a.address);
    cleanup.push(() => closeClient(client));
    const handledBy = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const uuid = randomUUID();
      const owner = a.view.ownerOf("echo", uuid)!.replicaId;
      const res = await client.echo({ message: uuid });
      const [handler, forwarder] = Buffer.from(res.payload).toString().split(":");
      expect(handler).toBe(owner);
      expect(forwarder).toBe(owner === "a" ? "" : "a");
      handledBy.add(handler!);
    }
    expect(handledBy).toEqual(new Set(["a", "b"]));
  });

  it("a forwarded call that lands on a non-owner is answered NOT_OWNER naming the owner, not forwarded again", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    const b = await startReplica(prefix, "b");
    await b.view.until((v) => v.members("echo").length === 2);
    const uuid = ownedBy(b.view, "a");

    const toB = createClient(EchoService, b.address);
    cleanup.push(() => closeClient(toB));
    const err = await toB.echo({ message: uuid }, { metadata: { [FORWARDED_BY_KEY]: "x" } }).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: NOT_OWNER, resources: { resourceUuid: uuid, ownerReplicaId: "a", ownerAddress: a.address } });
  });

  it("ServiceRouter sends each call straight to the owner", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    await startReplica(prefix, "b");
    const { view, router } = await clientRouter(prefix, 2);
    for (let i = 0; i < 20; i++) {
      const uuid = randomUUID();
      const res = await router.call(uuid, (c) => c.echo({ message: uuid }));
      expect(Buffer.from(res.payload).toString()).toBe(`${a.view.ownerOf("echo", uuid)!.replicaId}:`);
    }
  });

  it("a forward to an owner that cannot be reached is answered OWNER_UNREACHABLE naming its replica id, not its address", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    const b = await startReplica(prefix, "b");
    await a.view.until((v) => v.members("echo").length === 2);
    const client = createClient(EchoService, a.address, { retry: false });
    cleanup.push(() => closeClient(client));
    const uuid = ownedBy(a.view, "b");
    await expect(client.echo({ message: uuid })).resolves.toMatchObject({ message: uuid }); // a's channel to b is open

    // b's gRPC server dies; its membership lives on, so a still routes b's resources to it.
    await b.server.shutdown(0);
    expect(a.view.ownerOf("echo", uuid)?.replicaId).toBe("b");
    const err = await client.echo({ message: uuid }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: OWNER_UNREACHABLE, resources: { resourceUuid: uuid, ownerReplicaId: "b" } });
    const said = JSON.stringify({ message: (err as StratumError).message, resources: (err as StratumError).resources });
    expect(said).toContain("b");
    expect(said).not.toContain(b.address);
    expect(said).not.toMatch(/\d+\.\d+\.\d+\.\d+:\d+/);

    // A resource a owns is still served.
    const mine = ownedBy(a.view, "a");
    await expect(client.echo({ message: mine })).resolves.toMatchObject({ message: mine });
  });

  it("an error a forwarded call got back reaches the client without internal addresses", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    // b's view of which resource a call is about disagrees with a's (as two views of the ring
    // do for a moment during a membership change): what a forwards to b, b sees as a's.
    const remap = new Map<string, string>();
    const b = await startReplica(prefix, "b", { keyOf: (m) => remap.get(m) ?? m });
    await a.view.until((v) => v.members("echo").length === 2);
    await b.view.until((v) => v.members("echo").length === 2);
    const uuid = ownedBy(a.view, "b");
    remap.set(uuid, ownedBy(b.view, "a"));

    // Between replicas, NOT_OWNER names the owner's address (b answers a forwarded call so)...
    const toB = createClient(EchoService, b.address, { retry: false });
    const client = createClient(EchoService, a.address, { retry: false });
    cleanup.push(() => closeClient(toB), () => closeClient(client));
    const internal = (await toB.echo({ message: uuid }, { metadata: { [FORWARDED_BY_KEY]: "a" } }).catch((e: unknown) => e)) as StratumError;
    expect(internal).toMatchObject({ reason: NOT_OWNER, resources: { ownerReplicaId: "a", ownerAddress: a.address } });

    // ...but a, passing it back to its own caller, strips it.
    const err = (await client.echo({ message: uuid }).catch((e: unknown) => e)) as StratumError;
    expect(err).toBeInstanceOf(StratumError);
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: NOT_OWNER, resources: { ownerReplicaId: "a" } });
    expect(err.resources).not.toHaveProperty("ownerAddress");
    const said = JSON.stringify({ message: err.message, resources: err.resources });
    expect(said).not.toContain(a.address);
    expect(said).not.toContain(b.address);
  });

  it("ServiceRouter.call re-routes a call whose owner left the ring and closed its client before it was sent", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}`;
    const a = await startReplica(prefix, "a");
    const b = await startReplica(prefix, "b");
    const { view, router } = await clientRouter(prefix, 2);
    const uuid = ownedBy(view, "b");
    let attempts = 0;
    const res = await router.call(uuid, async (c) => {
      if (++attempts === 1) {
        // b leaves between picking its client and sending: the router closes that client.
        await b.leave();
        await view.until((v) => v.members("echo").length === 1);
      }
      return c.echo({ message: uuid });
    });
    expect(attempts).toBe(2);
    expect(Buffer.from(res.payload).toString()).toBe("a:");
    expect(a.view.ownerOf("echo", uuid)?.replicaId).toBe("a");
  });
});
