import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { Code, createClient, closeClient, createServer, implement, StratumError, type ServiceImpl, type StratumServer } from "@stratum/rpc";
import { connectBus } from "./connect";
import { Membership, MembershipView } from "./membership";
import { FORWARDED_BY_KEY, NOT_OWNER, ownerRouting, ServiceRouter, ServiceRouters } from "./routing";

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

async function startReplica(prefix: string, replicaId: string) {
  const bus = await connectBus({ servers: natsUrl, prefix, name: replicaId });
  const view = await MembershipView.open(bus, { heartbeatMs: 200 });
  const routers = new ServiceRouters(view, "echo");
  let membership: Membership | undefined;
  const routing = ownerRouting({
    membership: () => membership,
    serviceName: "echo",
    routerFor: (s) => routers.for(s),
    keyOf: (call) => (call.method.localName === "echo" ? (call.request as { message: string }).message : undefined),
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
  return { view, server, address: `127.0.0.1:${server.port}` };
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
    let uuid = randomUUID();
    while (b.view.ownerOf("echo", uuid)?.replicaId !== "a") uuid = randomUUID();

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
    const clientBus = await connectBus({ servers: natsUrl, prefix, name: "client" });
    const view = await MembershipView.open(clientBus, { heartbeatMs: 200 });
    const router = new ServiceRouter(view, "echo", EchoService);
    cleanup.push(async () => {
      router.close();
      view.close();
      await clientBus.close();
    });
    await view.until((v) => v.members("echo").length === 2);
    for (let i = 0; i < 20; i++) {
      const uuid = randomUUID();
      const res = await router.call(uuid, (c) => c.echo({ message: uuid }));
      expect(Buffer.from(res.payload).toString()).toBe(`${a.view.ownerOf("echo", uuid)!.replicaId}:`);
    }
  });
});
