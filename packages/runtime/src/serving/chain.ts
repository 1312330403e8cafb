import type { DescMethod, Message } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { runWithWork, Violations } from "@stratum/core";
import type { RequestValidator } from "@stratum/validation";
import { ownerRouting, type Membership, type ServiceRouters } from "@stratum/bus";
import type { LeasesTable, RequestsTable } from "@stratum/db";
import { observeOutcome, type ServerInterceptor, type ServerNext } from "@stratum/rpc";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import type { MethodRules, ServiceApi } from "./api";
import { toStratumError } from "./errors";
import { idempotency } from "./idempotency";

/** Checks of the limits a request's proto declares (protovalidate); empty when it keeps them. */
export type ProtoValidator = RequestValidator;

export interface ServingChainOptions {
  /** Membership name of the service (`compute`). */
  serviceName: string;
  apis: readonly ServiceApi[];
  membership: () => Membership | undefined;
  routers: ServiceRouters;
  db: PostgresJsDatabase<Record<string, unknown>>;
  requests: RequestsTable;
  /** The proto-declared limits (protovalidate). */
  protoValidator?: ProtoValidator;
  /** Observers outside everything but the work scope (metrics), outermost first. */
  observers?: readonly ServerInterceptor[];
  /** Authentication (ServiceParts.auth), between error conversion and validation. */
  auth?: ServerInterceptor;
  /** See IdempotencyOptions.staleAfterMs. */
  staleRequestMs?: number;
  /** See IdempotencyOptions.holder: this replica's incarnation, who is alive, the leases. */
  holder?: { self: () => string; isLive: (holder: string) => boolean; leases?: LeasesTable };
}

/**
 * The interceptors every service is served with, outermost first. Each concern is one
 * interceptor, so a later one (fencing, auth, tracing) is one more entry here, not an edit of
 * every handler:
 *
 * 1. work scope — the call's request id becomes the current work, so every log line, queued
 *    task, agent command and event of the call names it;
 * 2. observers (metrics) — see every outcome, also refusals;
 * 3. errors — queue, flow and Postgres errors become the StratumError a client can act on;
 *    then the service's authentication, if it has one (UNAUTHENTICATED before anything else);
 * 4. validation — proto-declared limits, then the method's own checks: INVALID_ARGUMENT here,
 *    on the replica the call reached, before anything is routed;
 * 5. normalize — the request the rest of the chain sees;
 * 6. routing — to the owner of the resource;
 * 7. mutation log — one info line per served mutating call, with its ids and duration;
 * 8. idempotency — a retried request id gets the first outcome.
 */
export function servingChain(o: ServingChainOptions): ServerInterceptor[] {
  const rulesByMethod = new Map<DescMethod, MethodRules<unknown>>();
  for (const api of o.apis) for (const [method, rules] of api.rules) rulesByMethod.set(method, rules);
  const rulesOf = (method: DescMethod) => rulesByMethod.get(method);
  return [
    workScope(),
    ...(o.observers ?? []),
    errors(),
    ...(o.auth ? [o.auth] : []),
    validation(rulesOf, o.protoValidator),
    normalize(rulesOf),
    ownerRouting({
      membership: o.membership,
      serviceName: o.serviceName,
      routerFor: (s) => o.routers.for(s),
      keyOf: (call) => rulesOf(call.method)?.owner?.(call.request),
    }),
    mutationLog(rulesOf),
    idempotency({ db: o.db, table: o.requests, rules: rulesOf, ...(o.staleRequestMs !== undefined ? { staleAfterMs: o.staleRequestMs } : {}), ...(o.holder ? { holder: o.holder } : {}) }),
  ];
}

/** Runs the call (and, for a streaming response, each step of it) in the call's work scope. */
function workScope(): ServerInterceptor {
  return (next) => (call) => {
    const work = { requestId: call.ctx.requestId };
    const outcome = runWithWork(work, () => next(call));
    if (call.method.methodKind !== "server_streaming" && call.method.methodKind !== "bidi_streaming") return outcome;
    return (async function* () {
      const iterator = (await outcome as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      try {
        for (;;) {
          const step = await runWithWork(work, () => iterator.next());
          if (step.done) return;
          yield step.value;
        }
      } finally {
        await runWithWork(work, async () => iterator.return?.());
      }
    })();
  };
}

function errors(): ServerInterceptor {
  return (next) => (call) => {
    const convert = (e: unknown): never => {
      throw toStratumError(e);
    };
    try {
      const outcome = next(call);
      if (call.method.methodKind === "server_streaming" || call.method.methodKind === "bidi_streaming") {
        return (async function* () {
          try {
            yield* (await outcome) as AsyncIterable<unknown>;
          } catch (e) {
            convert(e);
          }
        })();
      }
      return Promise.resolve(outcome).catch(convert);
    } catch (e) {
      return convert(e);
    }
  };
}

function validation(rulesOf: (m: DescMethod) => MethodRules<unknown> | undefined, protoValidator: ProtoValidator | undefined): ServerInterceptor {
  return (next) => (call) => {
    // Streams of requests are checked by their handlers, message by message.
    if (call.method.methodKind === "client_streaming" || call.method.methodKind === "bidi_streaming") return next(call);
    const v = new Violations();
    for (const violation of protoValidator?.(call.method.input, call.request as Message) ?? []) v.add(violation.field, violation.description);
    rulesOf(call.method)?.validate?.(call.request, v);
    v.throwIfAny();
    return next(call);
  };
}

function normalize(rulesOf: (m: DescMethod) => MethodRules<unknown> | undefined): ServerInterceptor {
  return (next) => (call) => {
    const rules = rulesOf(call.method);
    return rules?.normalize ? next({ ...call, request: rules.normalize(call.request) }) : next(call);
  };
}

/** Methods that change something: not declared side-effect free in the proto. */
function mutates(method: DescMethod): boolean {
  return method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

function mutationLog(rulesOf: (m: DescMethod) => MethodRules<unknown> | undefined): ServerInterceptor {
  return (next: ServerNext) => (call) => {
    if (!mutates(call.method)) return next(call);
    const rules = rulesOf(call.method);
    const started = performance.now();
    return observeOutcome(call.method, () => next(call), (error) => {
      if (error !== undefined) return; // the transport logs failures, with their code
      const resourceUuid = rules?.owner?.(call.request);
      const clientRequestId = rules?.requestId?.(call.request);
      call.ctx.log.info("rpc ok", {
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        ...(resourceUuid ? { resourceUuid } : {}),
        ...(clientRequestId ? { clientRequestId } : {}),
      });
    });
  };
}
