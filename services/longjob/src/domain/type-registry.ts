import { fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { InterruptPolicy, JobTypeSchema, ParameterKind, type JobType } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { Code, StratumError, Violations } from "@stratum/core";
import { mapPgError } from "@stratum/db";
import { sql } from "drizzle-orm";
import type { LongjobDb } from "../store/db";
import { jobTypes } from "../store/schema";

/**
 * The job types the implementing services registered, kept in Postgres (a type outlives the
 * replica that registered it) and cached here. A type unknown to the cache is looked up again
 * before a submit is refused: another replica may have just registered it.
 */
export class TypeRegistry {
  readonly #types = new Map<string, JobType>();

  constructor(private readonly handle: LongjobDb) {}

  async register(types: readonly JobType[]): Promise<void> {
    const seen = new Set<string>();
    for (const t of types) {
      if (seen.has(t.name)) throw StratumError.invalidArgument([{ field: "types", description: `type ${t.name} is listed twice` }]);
      seen.add(t.name);
      if (!t.name.startsWith(`${t.service}.`)) throw StratumError.invalidArgument([{ field: "types", description: `type ${t.name} must be named ${t.service}.<name>: the service implementing it` }]);
    }
    try {
      await this.handle.db
        .insert(jobTypes)
        .values(types.map((t) => ({ name: t.name, service: t.service, spec: toJson(JobTypeSchema, t) as JsonObject })))
        .onConflictDoUpdate({ target: jobTypes.name, set: { service: sql`excluded.service`, spec: sql`excluded.spec`, registeredAt: sql`now()` } });
    } catch (e) {
      throw mapPgError(e, { operation: "register job types" });
    }
    for (const t of types) this.#types.set(t.name, t);
  }

  /** The type, or NOT_FOUND `JOB_TYPE_UNKNOWN` naming it. */
  async get(name: string): Promise<JobType> {
    const cached = this.#types.get(name);
    if (cached) return cached;
    await this.reload();
    const t = this.#types.get(name);
    if (!t) {
      const known = [...this.#types.keys()].sort().join(", ") || "none";
      throw new StratumError(Code.NOT_FOUND, `no job type ${name} is registered (registered: ${known})`, { reason: "JOB_TYPE_UNKNOWN", resources: { jobType: name } });
    }
    return t;
  }

  async list(): Promise<JobType[]> {
    await this.reload();
    return [...this.#types.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async reload(): Promise<void> {
    try {
      for (const row of await this.handle.db.select().from(jobTypes)) this.#types.set(row.name, fromJson(JobTypeSchema, row.spec as JsonObject));
    } catch (e) {
      throw mapPgError(e, { operation: "load job types" });
    }
  }
}

/** Whether a running job of the type resumes on its executor's death, or is failed or suspended. */
export function interruptPolicy(t: JobType): "resume" | "fail" | "suspend" {
  return t.onInterrupt === InterruptPolicy.RESUME ? "resume" : t.onInterrupt === InterruptPolicy.SUSPEND ? "suspend" : "fail";
}

/**
 * Checks parameters against the type's declaration: every violation at once, each naming the
 * parameter (`parameters.<name>`). Unknown parameters are refused: a field the caller believes
 * was sent must never be dropped silently.
 */
export function checkParameters(t: JobType, params: Record<string, unknown>, v: Violations): void {
  const specs = new Map(t.parameters.map((p) => [p.name, p]));
  for (const name of Object.keys(params)) {
    if (!specs.has(name)) v.add(`parameters.${name}`, `job type ${t.name} has no parameter ${name} (it has: ${[...specs.keys()].join(", ") || "none"})`);
  }
  for (const p of t.parameters) {
    const value = params[p.name];
    const field = `parameters.${p.name}`;
    if (value === undefined || value === null) {
      if (p.required) v.add(field, `is required by job type ${t.name}`);
      continue;
    }
    switch (p.kind) {
      case ParameterKind.NUMBER:
        if (typeof value !== "number" || !Number.isFinite(value)) v.add(field, "must be a number");
        else if (value < p.min || (p.max !== 0 && value > p.max)) v.add(field, `must be between ${p.min} and ${p.max || "∞"}, got ${value}`);
        break;
      case ParameterKind.STRING:
        if (typeof value !== "string") v.add(field, "must be a string");
        break;
      case ParameterKind.BOOL:
        if (typeof value !== "boolean") v.add(field, "must be true or false");
        break;
      case ParameterKind.STRING_LIST:
        if (!Array.isArray(value) || value.some((s) => typeof s !== "string")) v.add(field, "must be a list of strings");
        break;
      default:
        v.add(field, `has an unknown kind in job type ${t.name}`);
    }
  }
}
