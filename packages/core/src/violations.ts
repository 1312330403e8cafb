/**
 * Input validation for handlers. Every external RPC checks its input before touching anything and
 * answers bad input with one INVALID_ARGUMENT that lists *every* invalid field (as
 * `google.rpc.BadRequest` field violations, named by their proto snake_case paths), so a caller
 * fixes its request in one round trip.
 *
 *     validate((v) => {
 *       v.required(fieldPath(CreateVmRequestSchema.field.name), req.name);
 *       v.check(req.memoryBytes > 0n, "memory_bytes", "must be positive");
 *       req.nics.forEach((nic, i) => v.required(fieldPath("nics", i, "l3_network_uuid"), nic.l3NetworkUuid));
 *     });
 */
import type { DescField } from "@bufbuild/protobuf";
import { StratumError, type FieldViolation } from "./errors";

/**
 * A field path such as `nics[0].l3_network_uuid`. Segments are proto field names, list indexes or
 * map keys (numbers and strings in brackets), or protobuf-es field descriptors (their proto name
 * is used, so code written against lowerCamel properties still reports snake_case paths).
 */
export function fieldPath(...segments: readonly (string | number | DescField)[]): string {
  let path = "";
  for (const segment of segments) {
    if (typeof segment === "number") path += `[${segment}]`;
    else {
      const name = typeof segment === "string" ? segment : segment.name;
      path += path ? `.${name}` : name;
    }
  }
  return path;
}

/** Collects field violations; `throwIfAny()` turns them into one INVALID_ARGUMENT. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  /** Records a violation of `field`. */
  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  /** Records a violation of `field` unless `ok`. */
  check(ok: boolean, field: string, description: string): this {
    if (!ok) this.add(field, description);
    return this;
  }

  /**
   * `value` must be present: not undefined/null, not an empty or blank string, not an empty list.
   * (Proto3 cannot tell an unset scalar from its zero value, so a required number uses `check`.)
   */
  required(field: string, value: unknown): this {
    const missing =
      value === undefined || value === null || (typeof value === "string" && value.trim() === "") || (Array.isArray(value) && value.length === 0);
    return this.check(!missing, field, "is required");
  }

  /** A string of at most `max` characters. */
  maxLength(field: string, value: string, max: number): this {
    return this.check(value.length <= max, field, `must be at most ${max} characters`);
  }

  /** A number (or bigint) within [min, max]. */
  range(field: string, value: number | bigint, min: number | bigint, max: number | bigint): this {
    return this.check(value >= min && value <= max, field, `must be between ${min} and ${max}`);
  }

  get violations(): readonly FieldViolation[] {
    return this.list;
  }

  get ok(): boolean {
    return this.list.length === 0;
  }

  /** Throws `StratumError.invalidArgument` listing every violation, if there is any. */
  throwIfAny(resources?: Record<string, string>): void {
    if (this.list.length > 0) throw StratumError.invalidArgument(this.list, resources);
  }
}

/** Runs `rules` and throws one INVALID_ARGUMENT listing every violation they recorded. */
export function validate(rules: (v: Violations) => void, resources?: Record<string, string>): void {
  const v = new Violations();
  rules(v);
  v.throwIfAny(resources);
}
