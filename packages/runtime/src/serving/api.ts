import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import type { Violations } from "@stratum/core";
import { implement, type ServiceImpl, type ServiceRegistration } from "@stratum/rpc";

/** The request message type of method `K` of service `S`. */
export type RequestOf<S extends DescService, K extends keyof S["method"]> = S["method"][K] extends { input: infer I extends DescMessage } ? MessageShape<I> : never;

/**
 * How the kit serves one method, declared next to the handlers and applied by the interceptors
 * in this order, on the replica that receives the call, before anything is routed or run:
 *
 * 1. the limits declared in the proto (protovalidate), then `validate` for what a proto rule
 *    cannot say: bad input is INVALID_ARGUMENT on the first replica, never forwarded (the
 *    rules run again, unchanged, on the owner a call is forwarded to);
 * 2. `normalize`: the request the rest of the chain sees (e.g. the UUID a create is about,
 *    derived from its request id), a new message — the caller's is never mutated;
 * 3. `owner`: the resource the call is about; the call runs on the replica that owns it on the
 *    service's ring (forwarded there otherwise), where every mutation of it is serialized;
 * 4. `idempotent`: the request-id field of a mutating call, so that a retry with the same id
 *    returns the first outcome instead of running again (AIP-155).
 */
export interface MethodRules<Req> {
  validate?(request: Req, v: Violations): void;
  normalize?(request: Req): Req;
  owner?(request: Req): string;
  /** The client's request id in the request ("" when the caller sent none). */
  requestId?(request: Req): string;
}

export type ServiceRules<S extends DescService> = { [K in keyof S["method"]]?: MethodRules<RequestOf<S, K>> };

/** A service's handlers and the rules the kit applies around them. */
export interface ServiceApi {
  readonly registration: ServiceRegistration;
  /** By method. */
  readonly rules: ReadonlyMap<DescMethod, MethodRules<unknown>>;
}

/**
 * Declares one gRPC service of a domain: its handlers (which only call the domain: input is
 * validated, routed and deduplicated before them) and the rules of each method.
 */
export function serviceApi<S extends DescService>(service: S, impl: ServiceImpl<S>, rules: ServiceRules<S>): ServiceApi {
  const byMethod = new Map<DescMethod, MethodRules<unknown>>();
  for (const method of service.methods) {
    const r = (rules as Record<string, MethodRules<unknown> | undefined>)[method.localName];
    if (r) byMethod.set(method, r);
  }
  for (const name of Object.keys(rules)) {
    if (!service.methods.some((m) => m.localName === name)) throw new TypeError(`${service.typeName}: rules for unknown method ${name}`);
  }
  return { registration: implement(service, impl), rules: byMethod };
}

/**
 * The rules of a mutation of one existing resource named by `uuid` (its limits are in the
 * proto), with an optional request id: run on the resource's owner, answered once per request id.
 */
export function mutationOf<R extends { uuid: string; clientRequestId: string }>(): MethodRules<R> {
  return { owner: (r) => r.uuid, requestId: (r) => r.clientRequestId };
}
