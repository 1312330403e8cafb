import type { Violations } from "@stratum/core";
import { UUID_PATTERN } from "../domain/ids";

/** Shared field rules of the compute API, so every RPC words the same mistake the same way. */
export const MAX_NAME = 128;
export const MAX_REQUEST_ID = 128;
export const MIB = 1024n * 1024n;
const REQUEST_ID = /^[\x21-\x7e]+$/;

export function uuidField(v: Violations, field: string, value: string, required: boolean): void {
  if (!value) {
    if (required) v.add(field, "is required");
    return;
  }
  v.check(UUID_PATTERN.test(value), field, "must be a lowercase UUID");
}

export function nameField(v: Violations, field: string, value: string): void {
  v.required(field, value);
  v.maxLength(field, value, MAX_NAME);
}

export function requestIdField(v: Violations, field: string, value: string): void {
  if (!value) return;
  v.maxLength(field, value, MAX_REQUEST_ID);
  v.check(REQUEST_ID.test(value), field, "must be printable ASCII without spaces");
}

export function enumField<T>(v: Violations, field: string, value: number, known: Map<number, T>, allowUnset: boolean): T | undefined {
  if (value === 0) {
    if (!allowUnset) v.add(field, "is required");
    return undefined;
  }
  const mapped = known.get(value);
  v.check(mapped !== undefined, field, `unknown value ${value}`);
  return mapped;
}
