import type { Violations } from "@stratum/core";
import type { MethodRules } from "@stratum/runtime";
import { requestIdField, uuidField } from "./validate";

/**
 * The rules of a mutation of one existing resource, named by `uuid`, with an optional request
 * id: validated, run on the resource's owner, answered once per request id.
 */
export function mutationOf<R extends { uuid: string; clientRequestId: string }>(more?: (r: R, v: Violations) => void): MethodRules<R> {
  return {
    validate(r, v) {
      uuidField(v, "uuid", r.uuid, true);
      requestIdField(v, "client_request_id", r.clientRequestId);
      more?.(r, v);
    },
    owner: (r) => r.uuid,
    requestId: (r) => r.clientRequestId,
  };
}
