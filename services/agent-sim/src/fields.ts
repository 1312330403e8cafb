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

/**
 * An array of non-empty strings of at most `max` items (at least one unless `allowEmpty`), or
 * undefined when absent; the error names the element that is wrong.
 */
export function optionalStringList(body: JsonObject, field: string, max: number, options: { allowEmpty?: boolean } = {}): string[] | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const min = options.allowEmpty ? 0 : 1;
  if (!Array.isArray(value) || value.length < min || value.length > max) {
    throw CommandError.invalidField(field, `${min === 0 ? "an" : "a non-empty"} array of at most ${max} strings`);
  }
  value.forEach((item, i) => {
    if (typeof item !== "string" || item === "") throw CommandError.invalidField(`${field}[${i}]`, "a non-empty string");
  });
  return value as string[];
}
