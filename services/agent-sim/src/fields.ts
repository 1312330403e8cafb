import { CommandError } from "./command-error";

/**
 * Field readers for command bodies. Each throws a 400 naming the field, so a handler reads its
 * arguments in one line and a caller always learns which field was wrong.
 */
export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function requireString(body: JsonObject, field: string): string {
  const value = body[field];
  if (value === undefined || value === null || value === "") throw CommandError.missingField(field);
  if (typeof value !== "string") throw CommandError.invalidField(field, "a string");
  return value;
}

export function optionalString(body: JsonObject, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw CommandError.invalidField(field, "a string");
  return value;
}

export function requirePositiveInt(body: JsonObject, field: string): number {
  const value = body[field];
  if (value === undefined || value === null) throw CommandError.missingField(field);
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw CommandError.invalidField(field, "a positive integer");
  }
  return value;
}

export function optionalNonNegativeInt(body: JsonObject, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw CommandError.invalidField(field, "a non-negative integer");
  }
  return value;
}

export function optionalArray(body: JsonObject, field: string): unknown[] | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw CommandError.invalidField(field, "an array");
  return value;
}
