import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { runWithWork, type Logger } from "@stratum/core";
import { credentialsOf, type BindingManager } from "../domain/binding-manager";
import type { Catalog } from "../domain/catalog";
import type { InstanceManager } from "../domain/instance-manager";
import type { Tenancy } from "../domain/tenancy";
import type { InstanceRow } from "../store/schema";
import { osbCatalog } from "./osb-catalog";
import { OsbError, osbErrorOf } from "./osb-errors";

/** The OSB API versions served: 2.x (this facade is written to 2.17). */
const API_VERSION = /^2\.\d+$/;
/** What a platform waits between last_operation polls while an operation runs. */
const RETRY_AFTER_S = 1;
const MAX_BODY_BYTES = 1 << 20;

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  body: Json;
  headers?: Record<string, string>;
}

export interface OsbServerDeps {
  catalog: Catalog;
  instances: InstanceManager;
  bindings: BindingManager;
  tenancy: Tenancy;
  log: Logger;
}

/**
 * The Open Service Broker API v2.17 over HTTP, beside the broker's gRPC server and on the same
 * domain: the platform's basic-auth identity is the tenant, the instance id it chooses is the
 * idempotency key, and every operation is asynchronous (a long job; `operation` is its uuid).
 * Every 4xx is decided before anything is written, so a platform's orphan mitigation (a DELETE
 * after a failed PUT) is always safe.
 */
export class OsbServer {
  #server: Server | undefined;

  constructor(private readonly d: OsbServerDeps) {}

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => void this.#serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const a = server.address() as AddressInfo;
    return `http://${host.includes(":") ? `[${host}]` : host}:${a.port}`;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = header(req, "x-request-id") || header(req, "x-broker-api-request-identity") || crypto.randomUUID();
    const started = performance.now();
    let answer: Answer;
    try {
      answer = await runWithWork({ requestId }, () => this.#route(req));
    } catch (e) {
      const err = osbErrorOf(e);
      answer = { status: err.status, body: err.body(), ...(err.status === 401 ? { headers: { "WWW-Authenticate": 'Basic realm="stratum-broker"' } } : {}) };
      if (err.status >= 500) this.d.log.warn("osb request failed", { requestId, method: req.method, path: req.url, status: err.status, error: err.description, err: e });
    }
    const payload = JSON.stringify(answer.body);
    res.writeHead(answer.status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload), "x-request-id": requestId, ...(answer.headers ?? {}) });
    res.end(payload);
    if (req.method !== "GET" && answer.status < 400) {
      this.d.log.info("osb ok", { requestId, method: req.method, path: req.url, status: answer.status, durationMs: Math.round((performance.now() - started) * 10) / 10 });
    }
  }

  async #route(req: IncomingMessage): Promise<Answer> {
    const url = new URL(req.url ?? "/", "http://broker");
    const version = header(req, "x-broker-api-version");
    if (!API_VERSION.test(version)) throw new OsbError(412, `X-Broker-API-Version ${version ? JSON.stringify(version) : "is missing"}: this broker speaks 2.x (written to 2.17)`);
    const tenant = this.d.tenancy.basic(header(req, "authorization"));
    if (tenant === undefined) throw new OsbError(401, "no valid platform credentials (HTTP basic auth)");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;
    const method = req.method ?? "GET";
    if (parts[0] !== "v2") throw new OsbError(404, `no such endpoint ${url.pathname}`);
    if (parts.length === 2 && parts[1] === "catalog" && method === "GET") return { status: 200, body: osbCatalog(this.d.catalog) };
    if (parts[1] !== "service_instances" || parts.length < 3) throw new OsbError(404, `no such endpoint ${url.pathname}`);
    const instanceId = parts[2]!;
    const rest = parts.slice(3);
    if (rest.length === 0) {
      if (method === "PUT") return this.#provision(tenant, instanceId, q, await body(req));
      if (method === "PATCH") return this.#update(tenant, instanceId, q, await body(req));
      if (method === "GET") return this.#getInstance(tenant, instanceId);
      if (method === "DELETE") return this.#deprovision(tenant, instanceId, q);
    }
    if (rest.length === 1 && rest[0] === "last_operation" && method === "GET") return this.#lastOperation(tenant, instanceId, q);
    if (rest[0] === "service_bindings" && rest.length >= 2) {
      const bindingId = rest[1]!;
      if (rest.length === 2 && method === "PUT") return this.#bind(tenant, instanceId, bindingId, await body(req));
      if (rest.length === 2 && method === "GET") return this.#getBinding(tenant, instanceId, bindingId);
      if (rest.length === 2 && method === "DELETE") return this.#unbind(tenant, instanceId, bindingId, q);
      if (rest.length === 3 && rest[2] === "last_operation" && method === "GET") return this.#bindingOperation(tenant, instanceId, bindingId);
    }
    throw new OsbError(404, `no such endpoint ${method} ${url.pathname}`);
  }

  async #provision(tenant: string, instanceId: string, q: URLSearchParams, b: Json): Promise<Answer> {
    const serviceId = requiredString(b, "service_id");
    const planId = requiredString(b, "plan_id");
    const parameters = optionalObject(b, "parameters");
    asyncRequired(q);
    const { row, created } = await this.d.instances.provision(tenant, { instanceId, serviceId, planId, parameters });
    if (created || row.state === "Provisioning" || row.state === "Failed") return { status: 202, body: { operation: row.operation } };
    return { status: 200, body: {} };
  }

  async #update(tenant: string, instanceId: string, q: URLSearchParams, b: Json): Promise<Answer> {
    requiredString(b, "service_id");
    const planId = typeof b.plan_id === "string" ? b.plan_id : "";
    const parameters = optionalObject(b, "parameters");
    asyncRequired(q);
    const { row, started } = await this.d.instances.update(tenant, instanceId, planId, parameters);
    return started || row.state === "Updating" ? { status: 202, body: { operation: row.operation } } : { status: 200, body: {} };
  }

  async #getInstance(tenant: string, instanceId: string): Promise<Answer> {
    const row = await this.d.instances.get(tenant, instanceId);
    // The spec: an instance being provisioned is not there yet; one being updated is a conflict.
    if (row.state === "Deleted" || row.state === "Provisioning") throw new OsbError(404, `instance ${instanceId} ${row.state === "Deleted" ? "does not exist" : "is being provisioned"}`);
    if (row.state === "Updating") throw new OsbError(422, `instance ${instanceId} is being updated`, "ConcurrencyError");
    return { status: 200, body: { service_id: row.serviceId, plan_id: row.planId, parameters: row.parameters, metadata: { labels: { address: row.address, vm_uuid: row.vmUuid } } } };
  }

  async #deprovision(tenant: string, instanceId: string, q: URLSearchParams): Promise<Answer> {
    const serviceId = requiredQuery(q, "service_id");
    const planId = requiredQuery(q, "plan_id");
    asyncRequired(q);
    const current = await this.d.instances.get(tenant, instanceId).catch((e) => {
      if (osbErrorOf(e).status === 404) throw new OsbError(410, `no instance ${instanceId}`);
      throw e;
    });
    if (current.state === "Deleted") throw new OsbError(410, `instance ${instanceId} is deleted already`);
    checkIds(current, serviceId, planId);
    const row = await this.d.instances.deprovision(tenant, instanceId);
    return { status: 202, body: { operation: row.operation } };
  }

  async #lastOperation(tenant: string, instanceId: string, q: URLSearchParams): Promise<Answer> {
    const view = await this.d.instances.operation(tenant, instanceId, q.get("operation") ?? "");
    const running = view.state === "in progress";
    return { status: 200, body: { state: view.state, description: view.description }, ...(running ? { headers: { "Retry-After": String(RETRY_AFTER_S) } } : {}) };
  }

  async #bind(tenant: string, instanceId: string, bindingId: string, b: Json): Promise<Answer> {
    const serviceId = requiredString(b, "service_id");
    const planId = requiredString(b, "plan_id");
    const parameters = optionalObject(b, "parameters");
    const { row, instance, created } = await this.d.bindings.bind(tenant, { instanceId, bindingId, serviceId, planId, parameters });
    return { status: created ? 201 : 200, body: { credentials: credentialsOf(row, instance) } };
  }

  async #getBinding(tenant: string, instanceId: string, bindingId: string): Promise<Answer> {
    const { row, instance } = await this.d.bindings.get(tenant, instanceId, bindingId);
    return { status: 200, body: { credentials: credentialsOf(row, instance), parameters: row.parameters } };
  }

  async #unbind(tenant: string, instanceId: string, bindingId: string, q: URLSearchParams): Promise<Answer> {
    requiredQuery(q, "service_id");
    requiredQuery(q, "plan_id");
    try {
      await this.d.bindings.unbind(tenant, instanceId, bindingId);
    } catch (e) {
      if (osbErrorOf(e).status === 404) throw new OsbError(410, `no binding ${bindingId} of instance ${instanceId}`);
      throw e;
    }
    return { status: 200, body: {} };
  }

  /** Bindings are made synchronously: one that exists has succeeded. */
  async #bindingOperation(tenant: string, instanceId: string, bindingId: string): Promise<Answer> {
    try {
      await this.d.bindings.get(tenant, instanceId, bindingId);
    } catch (e) {
      if (osbErrorOf(e).status === 404) throw new OsbError(410, `no binding ${bindingId} of instance ${instanceId}`);
      throw e;
    }
    return { status: 200, body: { state: "succeeded", description: "bound" } };
  }
}

function header(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? "";
}

/** Every provision, update and deprovision is a long job: the platform must accept that. */
function asyncRequired(q: URLSearchParams): void {
  if (q.get("accepts_incomplete") !== "true") throw new OsbError(422, "this broker provisions asynchronously: send accepts_incomplete=true", "AsyncRequired");
}

function checkIds(row: InstanceRow, serviceId: string, planId: string): void {
  if (serviceId !== row.serviceId) throw new OsbError(400, `service_id ${JSON.stringify(serviceId)} is not the instance's (${row.serviceId})`);
  if (planId !== row.planId) throw new OsbError(400, `plan_id ${JSON.stringify(planId)} is not the instance's (${row.planId})`);
}

function requiredString(b: Json, field: string): string {
  const v = b[field];
  if (typeof v !== "string" || v === "") throw new OsbError(400, `${field} is required (a non-empty string)`);
  return v;
}

function requiredQuery(q: URLSearchParams, field: string): string {
  const v = q.get(field);
  if (!v) throw new OsbError(400, `the query parameter ${field} is required`);
  return v;
}

function optionalObject(b: Json, field: string): Json {
  const v = b[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new OsbError(400, `${field} must be a JSON object`);
  return v as Json;
}

async function body(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new OsbError(400, `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw new OsbError(400, "the request body is empty: a JSON object is required");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new OsbError(400, `the request body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new OsbError(400, "the request body must be a JSON object");
  return parsed as Json;
}
