import type { MethodRules } from "@stratum/runtime";

/**
 * The rules of a mutation of one existing resource, named by `uuid` (its limits are in the
 * proto), with an optional request id: run on the resource's owner, answered once per request id.
 */
export function mutationOf<R extends { uuid: string; clientRequestId: string }>(): MethodRules<R> {
  return { owner: (r) => r.uuid, requestId: (r) => r.clientRequestId };
}
