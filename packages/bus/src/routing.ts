import type { DescService } from "@bufbuild/protobuf";
import { CHANNEL_CLOSED, closeClient, Code, createClient, isTransportUnavailable, StratumError, type Client, type ClientOptions, type ServerCall, type ServerInterceptor } from "@stratum/rpc";
import type { Member, Membership, MembershipView } from "./membership";

/** Metadata key set on a forwarded call: its value is the replica that forwarded it. */
export const FORWARDED_BY_KEY = "x-stratum-forwarded-by";

/** Reason of the UNAVAILABLE error a replica answers when asked twice for a resource it does not own. */
export const NOT_OWNER = "NOT_OWNER";

/**
 * Reason of the UNAVAILABLE error a replica answers when the owner it forwards a call to cannot
 * be reached (it died and has not yet left the ring): the caller retries, and lands on the
 * resource's next owner once the ring has moved on. Names the owner's replica id, never its address.
 */
export const OWNER_UNREACHABLE = "OWNER_UNREACHABLE";

/** Reasons after which `ServiceRouter.call` asks the ring again for the owner. */
const REROUTED: ReadonlySet<string> = new Set([NOT_OWNER, CHANNEL_CLOSED]);

/**
 * Typed clients to the live replicas of one service, picked by resource UUID on the service's
 * ring. One channel per replica address, closed when the replica leaves the ring.
 */
export class ServiceRouter<S extends DescService> {
  readonly #clients = new Map<string, Client<S>>();
  readonly #off: () => void;

  constructor(
    readonly view: MembershipView,
    /** Membership name of the service (`compute`), which may serve several gRPC services. */
    readonly serviceName: string,
    readonly service: S,
    private readonly options: ClientOptions = {},
  ) {
    this.#off = view.onChange((change) => {
      if (change.service !== serviceName) return;
      for (const gone of change.left) this.#drop(gone.address);
    });
  }

  /** The live replica that owns `resourceUuid`; UNAVAILABLE `NO_LIVE_REPLICA` when there is none. */
  ownerOf(resourceUuid: string): Member {
    const owner = this.view.ownerOf(this.serviceName, resourceUuid);
    if (!owner) throw noReplica(this.serviceName);
    return owner;
  }

  /** A client connected to the owner of `resourceUuid`. */
  owner(resourceUuid: string): Client<S> {
    return this.clientAt(this.ownerOf(resourceUuid).address);
  }

  /**
   * Runs `call` against the owner of `resourceUuid`, re-routing when the replica answers NOT_OWNER
   * (its view of the ring and ours disagreed for a moment, e.g. while a replica joins) or when
   * the call found its client closed (CHANNEL_CLOSED: the owner left the ring before anything
   * was sent, so the call is safe to send to the next owner whatever the method).
   */
  async call<T>(resourceUuid: string, call: (client: Client<S>) => Promise<T>, attempts = 3): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call(this.owner(resourceUuid));
      } catch (e) {
        if (attempt >= attempts || !(e instanceof StratumError) || !REROUTED.has(e.reason)) throw e;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  clientAt(address: string): Client<S> {
    let client = this.#clients.get(address);
    if (!client) this.#clients.set(address, (client = createClient(this.service, address, this.options)));
    return client;
  }

  #drop(address: string): void {
    const client = this.#clients.get(address);
    if (!client) return;
    this.#clients.delete(address);
    closeClient(client);
  }

  close(): void {
    this.#off();
    for (const address of [...this.#clients.keys()]) this.#drop(address);
  }
}

/**
 * An interceptor that runs each resource-scoped call on the replica that owns the resource.
 * `keyOf` names the resource of a call (undefined: the call runs where it lands). A call that
 * lands elsewhere is forwarded once to the owner, with the request this interceptor was given
 * (interceptors before it may have normalized it), inheriting the caller's deadline,
 * cancellation and request id; the owner's answer (or error) is returned as is. A forwarded call
 * that lands on a replica that does not own the resource either (the two views of the ring
 * disagree during a membership change) is not forwarded again — that could loop — but answered
 * with UNAVAILABLE `NOT_OWNER` naming the owner it sees, so the client re-routes. Unary and
 * server-streaming methods can be routed.
 */
export function ownerRouting(options: {
  /**
   * This replica's membership. A function because the server must be listening (its port
   * known) before the replica can announce itself; routed calls before that are refused.
   */
  membership: () => Membership | undefined;
  /** Membership name of the service (`compute`). */
  serviceName: string;
  /** The router for each gRPC service served, by its type name (created on first use). */
  routerFor: (service: DescService) => ServiceRouter<DescService>;
  keyOf: (call: ServerCall) => string | undefined;
}): ServerInterceptor {
  const membershipOf = (): Membership => {
    const m = options.membership();
    if (!m) throw new StratumError(Code.UNAVAILABLE, `${options.serviceName} replica is starting`, { reason: "REPLICA_STARTING" });
    return m;
  };
  return (next) => (call) => {
    const { method, ctx } = call;
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") return next(call);
    const uuid = options.keyOf(call);
    if (uuid === undefined) return next(call);
    const membership = membershipOf();
    if (membership.owns(uuid)) return next(call);
    const router = options.routerFor(call.service);
    const owner = router.ownerOf(uuid);
    const self = membership.self;
    if (ctx.metadata.get(FORWARDED_BY_KEY)[0] !== undefined) {
      // Retrying this replica cannot help: tell the caller's retry interceptor not to (gRPC
      // pushback), so it re-routes (ServiceRouter.call) instead.
      ctx.trailers.set("grpc-retry-pushback-ms", "-1");
      throw new StratumError(Code.UNAVAILABLE, `replica ${self.replicaId} of ${self.service} does not own ${uuid}; its owner is ${owner.replicaId}`, {
        reason: NOT_OWNER,
        resources: { resourceUuid: uuid, ownerReplicaId: owner.replicaId, ownerAddress: owner.address },
      });
    }
    const remote = (router.clientAt(owner.address) as unknown as Record<string, (r: unknown, o: unknown) => unknown>)[method.localName]!;
    const outcome = (e: unknown): StratumError => forwardingError(e, { router, owner, self, uuid });
    const forwarded = (): unknown => remote(call.request, { parent: ctx, metadata: { [FORWARDED_BY_KEY]: self.replicaId } });
    if (method.methodKind === "unary") {
      return (async () => {
        try {
          return await forwarded();
        } catch (e) {
          throw outcome(e);
        }
      })();
    }
    return (async function* () {
      try {
        yield* forwarded() as AsyncIterable<unknown>;
      } catch (e) {
        throw outcome(e);
      }
    })();
  };
}

/**
 * What a forwarding replica answers its own caller when the forwarded call failed. The owner
 * out of reach becomes OWNER_UNREACHABLE; any other error passes on, without the internal
 * addresses that are fine between replicas (NOT_OWNER's `ownerAddress`, a transport message
 * naming `host:port`) but must not reach clients outside the cluster.
 */
function forwardingError(e: unknown, at: { router: ServiceRouter<DescService>; owner: Member; self: Member; uuid: string }): StratumError {
  const { router, owner, self, uuid } = at;
  if (isTransportUnavailable(e)) {
    return new StratumError(Code.UNAVAILABLE, `replica ${owner.replicaId} of ${self.service}, owner of ${uuid}, is unreachable from replica ${self.replicaId}`, {
      reason: OWNER_UNREACHABLE,
      resources: { resourceUuid: uuid, ownerReplicaId: owner.replicaId },
      cause: e,
    });
  }
  const err = StratumError.from(e);
  const replicas = new Map<string, string>([[owner.address, owner.replicaId]]);
  for (const member of router.view.members(router.serviceName)) replicas.set(member.address, member.replicaId);
  return withoutAddresses(err, replicas);
}

/**
 * `err` with each known replica address (`replicas`: address → replica id) replaced by its
 * replica id, and the `ownerAddress` resource dropped. Other addresses stay: an error naming an
 * agent's URL names what the operator registered, which they need to see.
 */
export function withoutAddresses(err: StratumError, replicas: ReadonlyMap<string, string>): StratumError {
  const scrub = (text: string): string => {
    let out = text;
    for (const [address, replicaId] of replicas) out = out.split(address).join(`replica ${replicaId}`);
    return out;
  };
  const resources: Record<string, string> = {};
  for (const [key, value] of Object.entries(err.resources)) if (key !== "ownerAddress") resources[key] = scrub(value);
  return new StratumError(err.code, scrub(err.message), {
    reason: err.reason,
    resources,
    violations: err.violations.map((v) => ({ field: v.field, description: scrub(v.description) })),
    cause: err,
  });
}

/** One ServiceRouter per gRPC service of a membership name, made on first use; `close()` closes them all. */
export class ServiceRouters {
  readonly #routers = new Map<string, ServiceRouter<DescService>>();
  constructor(
    private readonly view: MembershipView,
    private readonly serviceName: string,
    private readonly options: ClientOptions = {},
  ) {}

  for<S extends DescService>(service: S): ServiceRouter<S> {
    let router = this.#routers.get(service.typeName);
    if (!router) this.#routers.set(service.typeName, (router = new ServiceRouter(this.view, this.serviceName, service, this.options)));
    return router as unknown as ServiceRouter<S>;
  }

  close(): void {
    for (const router of this.#routers.values()) router.close();
    this.#routers.clear();
  }
}

function noReplica(service: string): StratumError {
  return new StratumError(Code.UNAVAILABLE, `no live replica of ${service}`, { reason: "NO_LIVE_REPLICA", resources: { service } });
}
