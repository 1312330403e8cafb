/**
 * Hand-written field checks, for what a handler must check itself: values computed from several
 * fields, requests of services whose protos carry no rules yet, and tests. Their wording is the
 * wording `validateMessage` gives the proto rules (`PATTERN_DESCRIPTIONS`), so a caller reads the same
 * sentence whichever path caught the mistake.
 */
import type { Violations } from "@stratum/core";
import { UUID_PATTERN } from "./ids";
import { MAX_PAGE_SIZE } from "./page-token";

/** Longest display name, in characters (Unicode code points, as protovalidate counts). */
export const MAX_NAME = 128;
/** Longest client request id (AIP-155 idempotency key). */
export const MAX_REQUEST_ID = 128;
/** Printable ASCII without spaces: safe to log, to put in a header, to derive a UUID from. */
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]+$/;
export const MIB = 1024n * 1024n;

/** Length in code points, like the proto rules' `size()`, not UTF-16 units. */
function chars(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

/** A lowercase UUID; an empty value is "is required" when `required`, else accepted (unset). */
export function uuidField(v: Violations, field: string, value: string, required: boolean): void {
  if (!value) {
    if (required) v.add(field, "is required");
    return;
  }
  v.check(UUID_PATTERN.test(value), field, "must be a lowercase UUID");
}

/** A display name: present, not blank, at most 128 characters. */
export function nameField(v: Violations, field: string, value: string): void {
  v.required(field, value);
  v.check(chars(value) <= MAX_NAME, field, `must be at most ${MAX_NAME} characters`);
}

/** An optional idempotency key: empty, or at most 128 printable ASCII characters without spaces. */
export function requestIdField(v: Violations, field: string, value: string): void {
  if (!value) return;
  v.check(value.length <= MAX_REQUEST_ID, field, `must be at most ${MAX_REQUEST_ID} characters`);
  v.check(REQUEST_ID_PATTERN.test(value), field, "must be printable ASCII without spaces");
}

/**
 * A proto enum value mapped to its domain value through `known`. 0 (UNSPECIFIED) is "is required"
 * unless `allowUnset` (a filter that may be left out); a value `known` lacks is named.
 */
export function enumField<T>(v: Violations, field: string, value: number, known: ReadonlyMap<number, T>, allowUnset: boolean): T | undefined {
  if (value === 0) {
    if (!allowUnset) v.add(field, "is required");
    return undefined;
  }
  const mapped = known.get(value);
  v.check(mapped !== undefined, field, `unknown value ${value}`);
  return mapped;
}

/** A List call's page_size: 0 (the default) up to MAX_PAGE_SIZE. */
export function pageSizeField(v: Violations, field: string, value: number): void {
  v.range(field, value, 0, MAX_PAGE_SIZE);
}
