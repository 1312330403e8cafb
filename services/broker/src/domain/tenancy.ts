import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { DescService } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import type { HandlerContext, ServerInterceptor } from "@stratum/rpc";

/**
 * Who may call the broker, and as which tenant: bearer tokens for gRPC callers and HTTP
 * basic-auth identities for OSB platforms, from one JSON file (a Kubernetes Secret, mounted):
 *
 *     { "tokens": [{ "token": "…", "tenant": "acme" }],
 *       "platforms": [{ "username": "cf", "password": "…", "tenant": "acme" }] }
 *
 * A stand-in until a security issue brings real identities; what it guarantees already is that
 * every instance, binding and key belongs to exactly one tenant and no call crosses tenants.
 */
export class Tenancy {
  /** sha256(token) → tenant: a lookup that does not compare secrets byte by byte. */
  readonly #tokens = new Map<string, string>();
  readonly #platforms = new Map<string, { password: Buffer; tenant: string }>();

  constructor(raw: unknown, source = "auth") {
    const problems: string[] = [];
    const o = (raw ?? {}) as { tokens?: unknown; platforms?: unknown };
    for (const [i, t] of list(o.tokens, `${source}: tokens`, problems).entries()) {
      const { token, tenant } = (t ?? {}) as Record<string, unknown>;
      if (typeof token !== "string" || token.length < 16) problems.push(`${source}: tokens[${i}].token must be a string of at least 16 characters`);
      else if (!validTenant(tenant)) problems.push(`${source}: tokens[${i}].tenant must be 1–64 characters of [A-Za-z0-9._-]`);
      else this.#tokens.set(digest(token), tenant);
    }
    for (const [i, p] of list(o.platforms, `${source}: platforms`, problems).entries()) {
      const { username, password, tenant } = (p ?? {}) as Record<string, unknown>;
      if (typeof username !== "string" || username === "" || username.includes(":")) problems.push(`${source}: platforms[${i}].username must be a non-empty string without ':'`);
      else if (typeof password !== "string" || password.length < 8) problems.push(`${source}: platforms[${i}].password must be at least 8 characters`);
      else if (!validTenant(tenant)) problems.push(`${source}: platforms[${i}].tenant must be 1–64 characters of [A-Za-z0-9._-]`);
      else this.#platforms.set(username, { password: Buffer.from(digest(password)), tenant });
    }
    if (problems.length > 0) throw new Error(`invalid broker auth file:\n  ${problems.join("\n  ")}`);
  }

  /** The file's identities; no file: nobody (every call UNAUTHENTICATED). */
  static load(path: string): Tenancy {
    if (path === "") return new Tenancy({});
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`cannot read the broker auth file ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return new Tenancy(raw, path);
  }

  get empty(): boolean {
    return this.#tokens.size === 0 && this.#platforms.size === 0;
  }

  /** The tenant of an `authorization: Bearer <token>` value, or undefined. */
  bearer(authorization: string | undefined): string | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    return m ? this.#tokens.get(digest(m[1]!)) : undefined;
  }

  /** The tenant of an HTTP `Authorization: Basic …` value, or undefined. */
  basic(authorization: string | undefined): string | undefined {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "");
    if (!m) return undefined;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    const platform = this.#platforms.get(decoded.slice(0, colon));
    const given = Buffer.from(digest(decoded.slice(colon + 1)));
    // Compared in constant time, and against a dummy for an unknown user, so timing tells nothing.
    const expected = platform?.password ?? Buffer.from(digest(""));
    return timingSafeEqual(given, expected) && platform ? platform.tenant : undefined;
  }

  /**
   * The kit's auth interceptor for `services`: a call without a token this file knows is
   * UNAUTHENTICATED; one with is served as its tenant (`tenantOf(ctx)`).
   */
  interceptor(services: readonly DescService[]): ServerInterceptor {
    const guarded = new Set(services.map((s) => s.typeName));
    return (next) => (call) => {
      if (!guarded.has(call.service.typeName)) return next(call);
      const header = call.ctx.metadata.get("authorization")[0];
      const tenant = this.bearer(typeof header === "string" ? header : undefined);
      if (tenant === undefined) {
        throw new StratumError(Code.UNAUTHENTICATED, header === undefined ? "no credentials: send authorization: Bearer <token>" : "the bearer token is not one the broker knows", { reason: "UNAUTHENTICATED" });
      }
      tenants.set(call.ctx, tenant);
      return next(call);
    };
  }
}

const tenants = new WeakMap<HandlerContext, string>();

/** The tenant the auth interceptor found for this call. */
export function tenantOf(ctx: HandlerContext): string {
  const tenant = tenants.get(ctx);
  if (tenant === undefined) throw new StratumError(Code.INTERNAL, "a broker call reached its handler without a tenant", { reason: "NO_TENANT" });
  return tenant;
}

function digest(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

function validTenant(t: unknown): t is string {
  return typeof t === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(t);
}

function list(v: unknown, at: string, problems: string[]): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    problems.push(`${at} must be an array`);
    return [];
  }
  return v;
}
