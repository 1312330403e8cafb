/**
 * Page tokens of List calls. A token is opaque to clients and carries the last row's `seq`
 * (pagination is keyset-based: pages do not shift when rows are added or removed meanwhile; a
 * row whose insert commits after a later row's was read may be missed) and a short hash of the
 * filters it was issued for. AIP-158: the next page must be asked with the same filters, and a
 * token presented with other filters would otherwise silently page through a different result
 * set from the middle; with the hash it is refused, naming the field.
 */
import { createHash } from "node:crypto";
import { StratumError, type Violations } from "@stratum/core";

/** Default and largest page sizes of List calls. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1_000;

/** The filters of a List call (not page_size or page_token), as plain JSON-like values. */
export type PageFilters = { readonly [key: string]: FilterValue };
export type FilterValue = string | number | bigint | boolean | null | undefined | readonly FilterValue[] | PageFilters;

/** The format tag: bump it when the layout changes, so old tokens are recognised as such. */
const VERSION = "v2";
const TOKEN = /^v2:(\d{1,15}):([0-9a-f]{16})$/;

/**
 * JSON with object keys sorted and undefined members left out, so the same filters always hash
 * the same whatever order the handler built the object in.
 */
export function canonicalJson(value: FilterValue): string {
  if (value === undefined || value === null) return "null";
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  if (typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(",")}]`;
  const obj = value as PageFilters;
  const members = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
  return `{${members.join(",")}}`;
}

/** 64 bits of SHA-256: enough to tell filter sets apart, short enough for a URL. */
function filterHash(filters: PageFilters): string {
  return createHash("sha256").update(canonicalJson(filters)).digest("hex").slice(0, 16);
}

/** The token of the page after the row `lastSeq`, for a listing with `filters`. */
export function encodePageToken(lastSeq: number, filters: PageFilters): string {
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) throw new RangeError(`page position must be a non-negative safe integer, got ${lastSeq}`);
  return Buffer.from(`${VERSION}:${lastSeq}:${filterHash(filters)}`).toString("base64url");
}

/**
 * The position `token` resumes after: 0 for no token. A token that is not one of ours, or that
 * was issued for other filters, is INVALID_ARGUMENT on `field`.
 */
export function decodePageToken(token: string, filters: PageFilters, field = "page_token"): number {
  if (!token) return 0;
  const match = TOKEN.exec(Buffer.from(token, "base64url").toString("latin1"));
  if (!match) throw StratumError.invalidArgument([{ field, description: "is not a token returned by a previous call" }]);
  if (match[2] !== filterHash(filters)) {
    throw StratumError.invalidArgument([
      { field, description: "was issued for other filters: ask for the next page with the filters of the call that returned the token, or start again without page_token" },
    ]);
  }
  return Number(match[1]);
}

/** The number of rows to return for a requested page_size (0 means the default). */
export function pageSize(requested: number): number {
  return requested === 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}

/**
 * The same check as {@link decodePageToken}, recorded as a violation instead of thrown, so a
 * method's `validate` rule refuses a bad or misbound token together with every other bad field.
 */
export function pageTokenField(v: Violations, field: string, token: string, filters: PageFilters): void {
  try {
    decodePageToken(token, filters, field);
  } catch (e) {
    if (!(e instanceof StratumError)) throw e;
    for (const violation of e.violations) v.add(violation.field, violation.description);
  }
}
