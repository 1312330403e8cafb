import { StratumError } from "@stratum/core";

/** Default and largest page sizes of List calls. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1_000;

/**
 * Page tokens are opaque to clients: the last row's `seq`, base64url-encoded with a version tag
 * so the format can change. Pagination is keyset-based: pages do not shift when rows are added or
 * removed meanwhile (a row whose insert commits after a later row's was read may be missed).
 */
export function encodePageToken(lastSeq: number): string {
  return Buffer.from(`v1:${lastSeq}`).toString("base64url");
}

export function decodePageToken(token: string, field = "page_token"): number {
  if (!token) return 0;
  const match = /^v1:(\d{1,15})$/.exec(Buffer.from(token, "base64url").toString());
  if (!match) throw StratumError.invalidArgument([{ field, description: "is not a token returned by a previous call" }]);
  return Number(match[1]);
}

export function pageSize(requested: number): number {
  return requested === 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}
