import { createHash, randomUUID } from "node:crypto";

/**
 * A lowercase RFC 9562 UUID, the one spelling ids are stored and compared in (the protos'
 * `string.pattern` on UUID fields is this pattern's source, and `PATTERN_DESCRIPTIONS` names it).
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Namespace of the UUIDs derived from client request ids (a fixed random UUID, never change it: stored ids depend on it). */
const REQUEST_NAMESPACE = Buffer.from("5f0c2a1e8b7d4c3a9e6f1b2d3c4a5e6f", "hex");

/**
 * The UUID of a resource created with an idempotency key: a name-based UUID (RFC 9562 v5) of the
 * key, so a retried create lands on the same UUID — hence on the same owning replica and the same
 * primary key — whichever replica received it.
 */
export function uuidForRequest(kind: string, clientRequestId: string): string {
  const hash = createHash("sha1").update(REQUEST_NAMESPACE).update(`${kind}:${clientRequestId}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The UUID a create request is about, chosen before routing so the request can go to the UUID's
 * owner: the caller's explicit UUID, else one derived from its request id (a retry lands on the
 * same owner and the same row), else a random one. The request is not changed: a serving rule's
 * `normalize` puts the UUID into a copy.
 */
export function resourceUuid(kind: string, req: { readonly uuid: string; readonly clientRequestId: string }): string {
  return req.uuid || (req.clientRequestId ? uuidForRequest(kind, req.clientRequestId) : randomUUID());
}
