import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { Code, StratumError } from "@stratum/core";

type Json = Record<string, unknown>;

/** The parameter schemas a plan applies (OSB `schemas`). */
export interface PlanSchemas {
  create: Json;
  update: Json;
  bind: Json;
}

export interface Plan {
  id: string;
  name: string;
  description: string;
  free: boolean;
  cpu: number;
  memoryBytes: bigint;
  rootVolumeBytes: bigint;
  schemas: PlanSchemas;
}

export interface CatalogEntry {
  id: string;
  name: string;
  description: string;
  bindable: boolean;
  planUpdateable: boolean;
  instancesRetrievable: boolean;
  bindingsRetrievable: boolean;
  tags: string[];
  plans: Plan[];
}

/** Which of a plan's schemas a request is checked against. */
export type SchemaUse = keyof PlanSchemas;

const EMPTY_SCHEMA: Json = { type: "object", additionalProperties: false };

/**
 * The catalog, loaded once from a committed JSON file (`catalog.json`; OSB's own shape, with each
 * plan's VM size) and checked then: a catalog that names a plan twice or carries a schema that
 * does not compile stops the replica at start, not a caller's request later.
 */
export class Catalog {
  readonly services: readonly CatalogEntry[];
  readonly #plans = new Map<string, { service: CatalogEntry; plan: Plan; check: Record<SchemaUse, ValidateFunction> }>();

  constructor(raw: unknown, source = "catalog") {
    const problems: string[] = [];
    const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true });
    const services = arrayAt(raw, "services", source, problems).map((s, i) => entry(s, `${source}: services[${i}]`, problems));
    const ids = new Set<string>();
    for (const service of services) {
      if (ids.has(service.id)) problems.push(`${source}: service id ${service.id} appears twice`);
      ids.add(service.id);
      for (const plan of service.plans) {
        if (this.#plans.has(plan.id)) problems.push(`${source}: plan id ${plan.id} appears twice`);
        try {
          const check = { create: ajv.compile(plan.schemas.create), update: ajv.compile(plan.schemas.update), bind: ajv.compile(plan.schemas.bind) };
          this.#plans.set(plan.id, { service, plan, check });
        } catch (e) {
          problems.push(`${source}: plan ${plan.id}: a schema does not compile: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    if (problems.length > 0) throw new Error(`invalid catalog:\n  ${problems.join("\n  ")}`);
    this.services = services;
  }

  static load(path: string): Catalog {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`cannot read the catalog ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new Catalog(raw, path);
  }

  /**
   * The plan a request names, after checking that it belongs to the service and that the
   * parameters satisfy its schema: INVALID_ARGUMENT naming what is wrong otherwise. The
   * parameters come back with the schema's defaults filled in, so that `{}` and `{eip: false}`
   * are the same request.
   */
  resolve(serviceId: string, planId: string, parameters: Json, use: SchemaUse): { service: CatalogEntry; plan: Plan; parameters: Json } {
    const found = this.#plans.get(planId);
    const service = this.services.find((s) => s.id === serviceId);
    if (!service) throw invalid("service_id", `unknown service ${JSON.stringify(serviceId)}`, "UNKNOWN_SERVICE");
    if (!found || found.service !== service) throw invalid("plan_id", `unknown plan ${JSON.stringify(planId)} of service ${service.name}`, "UNKNOWN_PLAN");
    return { service: found.service, plan: found.plan, parameters: this.check(found.plan, parameters, use) };
  }

  /** Checks `parameters` against one of a plan's schemas; a copy with the schema's defaults filled in. */
  check(plan: Plan, parameters: Json, use: SchemaUse): Json {
    const validate = this.#plans.get(plan.id)!.check[use];
    const withDefaults = structuredClone(parameters);
    if (!validate(withDefaults)) {
      throw invalid("parameters", `parameters do not satisfy plan ${plan.name}'s ${use} schema: ${describe(validate.errors ?? [])}`, "PARAMETERS_INVALID");
    }
    return withDefaults;
  }

  plan(planId: string): Plan | undefined {
    return this.#plans.get(planId)?.plan;
  }
}

function invalid(field: string, message: string, reason: string): StratumError {
  return new StratumError(Code.INVALID_ARGUMENT, message, { reason, violations: [{ field, description: message }] });
}

function describe(errors: readonly ErrorObject[]): string {
  return errors
    .map((e) => {
      const where = e.instancePath === "" ? "parameters" : `parameters${e.instancePath.replaceAll("/", ".")}`;
      if (e.keyword === "additionalProperties") return `${where}: unknown parameter ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
      return `${where} ${e.message ?? "is invalid"}`;
    })
    .join("; ");
}

function entry(raw: unknown, at: string, problems: string[]): CatalogEntry {
  const s = (raw ?? {}) as Json;
  const schemas = (s.schemas ?? {}) as Json;
  const instanceSchemas = (schemas.service_instance ?? {}) as Json;
  const bindingSchemas = (schemas.service_binding ?? {}) as Json;
  const schemaOf = (group: Json, name: string): Json => (((group[name] as Json | undefined)?.parameters as Json | undefined) ?? EMPTY_SCHEMA);
  const planSchemas: PlanSchemas = { create: schemaOf(instanceSchemas, "create"), update: schemaOf(instanceSchemas, "update"), bind: schemaOf(bindingSchemas, "create") };
  const plans = arrayAt(s, "plans", at, problems).map((p, i): Plan => {
    const q = (p ?? {}) as Json;
    const where = `${at}.plans[${i}]`;
    return {
      id: str(q, "id", where, problems),
      name: str(q, "name", where, problems),
      description: str(q, "description", where, problems),
      free: q.free !== false,
      cpu: positive(q, "cpu", where, problems),
      memoryBytes: BigInt(positive(q, "memory_bytes", where, problems)),
      rootVolumeBytes: BigInt(positive(q, "root_volume_bytes", where, problems)),
      schemas: planSchemas,
    };
  });
  if (plans.length === 0) problems.push(`${at}: has no plans`);
  return {
    id: str(s, "id", at, problems),
    name: str(s, "name", at, problems),
    description: str(s, "description", at, problems),
    bindable: s.bindable === true,
    planUpdateable: s.plan_updateable === true,
    instancesRetrievable: s.instances_retrievable === true,
    bindingsRetrievable: s.bindings_retrievable === true,
    tags: Array.isArray(s.tags) ? s.tags.map(String) : [],
    plans,
  };
}

function arrayAt(raw: unknown, key: string, at: string, problems: string[]): unknown[] {
  const v = (raw as Json | undefined)?.[key];
  if (!Array.isArray(v)) {
    problems.push(`${at}: ${key} must be an array`);
    return [];
  }
  return v;
}

function str(o: Json, key: string, at: string, problems: string[]): string {
  const v = o[key];
  if (typeof v !== "string" || v === "") problems.push(`${at}: ${key} must be a non-empty string`);
  return typeof v === "string" ? v : "";
}

function positive(o: Json, key: string, at: string, problems: string[]): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    problems.push(`${at}: ${key} must be a positive integer`);
    return 1;
  }
  return v;
}
