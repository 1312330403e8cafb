import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVICE_ID, SMALL, startBrokerStack, type BrokerStack, type TenantName } from "./stack";

/**
 * The OSB v2.17 facade, status code by status code, as a platform (Cloud Foundry, a Kubernetes
 * service catalog) sees it. Every 4xx is checked to leave the broker's records as they were.
 */
describe("OSB v2.17 facade", () => {
  let s: BrokerStack;
  let base: string;
  beforeAll(async () => {
    s = await startBrokerStack({ brokerReplicas: 1 });
    base = s.osb[0]!;
  }, 180_000);
  afterAll(async () => {
    await s?.stop();
  });

  const call = async (method: string, path: string, o: { tenant?: TenantName | null; body?: unknown; headers?: Record<string, string> } = {}) => {
    const headers = { ...s.osbHeaders(o.tenant === null ? undefined : (o.tenant ?? "acme")), ...(o.headers ?? {}) };
    const res = await fetch(`${base}${path}`, { method, headers, ...(o.body !== undefined ? { body: typeof o.body === "string" ? o.body : JSON.stringify(o.body) } : {}) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
  const put = (id: string, body: unknown = { service_id: SERVICE_ID, plan_id: SMALL }, query = "?accepts_incomplete=true", tenant?: TenantName) =>
    call("PUT", `/v2/service_instances/${id}${query}`, { body, ...(tenant ? { tenant } : {}) });
  const untilDone = async (id: string, operation: string, tenant: TenantName = "acme") => {
    for (const deadline = Date.now() + 60_000; ; ) {
      const r = await call("GET", `/v2/service_instances/${id}/last_operation?operation=${operation}&service_id=${SERVICE_ID}&plan_id=${SMALL}`, { tenant });
      expect(r.status).toBe(200);
      if (r.body.state !== "in progress") return r;
      expect(r.headers.get("retry-after")).toBe("1");
      if (Date.now() > deadline) throw new Error(`${id} still in progress`);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  /** What the broker has recorded: a 4xx must leave it unchanged. */
  const records = async () => s.sql`SELECT uuid, state::text, operation, revision FROM broker.instances ORDER BY seq`;
  const unchangedBy = async (fn: () => Promise<void>) => {
    const before = await records();
    await fn();
    expect(await records()).toEqual(before);
  };

  it("GET /v2/catalog lists the services with each plan's schemas", async () => {
    const r = await call("GET", "/v2/catalog");
    expect(r.status).toBe(200);
    const services = r.body.services as Array<{ id: string; plans: Array<{ id: string; schemas: { service_instance: { create: { parameters: { properties: Record<string, unknown> } } } } }> }>;
    expect(services[0]!.id).toBe(SERVICE_ID);
    expect(services[0]!.plans.map((p) => p.id)).toEqual(["vm-small", "vm-medium", "vm-large"]);
    expect(Object.keys(services[0]!.plans[0]!.schemas.service_instance.create.parameters.properties)).toEqual(["name", "eip"]);
  });

  it("412 without X-Broker-API-Version (or with a 1.x one); 401 without valid credentials", async () => {
    await unchangedBy(async () => {
      const res = await fetch(`${base}/v2/catalog`, { headers: { authorization: s.osbHeaders("acme").authorization! } });
      expect(res.status).toBe(412);
      expect((await call("GET", "/v2/catalog", { headers: { "X-Broker-API-Version": "1.13" } })).status).toBe(412);
      const anonymous = await call("PUT", "/v2/service_instances/osb-anon?accepts_incomplete=true", { tenant: null, body: { service_id: SERVICE_ID, plan_id: SMALL } });
      expect(anonymous.status).toBe(401);
      const wrong = await call("GET", "/v2/catalog", { tenant: null, headers: { authorization: `Basic ${Buffer.from("acme-cf:wrong-password").toString("base64")}` } });
      expect(wrong.status).toBe(401);
    });
  });

  it("422 AsyncRequired without accepts_incomplete=true; 400 for an unknown service, plan, or parameters that break the schema", async () => {
    await unchangedBy(async () => {
      const sync = await put("osb-1", undefined, "");
      expect(sync.status).toBe(422);
      expect(sync.body.error).toBe("AsyncRequired");
      expect((await put("osb-1", { service_id: "nope", plan_id: SMALL })).status).toBe(400);
      expect((await put("osb-1", { service_id: SERVICE_ID, plan_id: "vm-huge" })).status).toBe(400);
      const bad = await put("osb-1", { service_id: SERVICE_ID, plan_id: SMALL, parameters: { eip: 3 } });
      expect(bad.status).toBe(400);
      expect(String(bad.body.description)).toContain("parameters.eip");
      expect((await put("osb-1", "{not json")).status).toBe(400);
    });
  });

  it("202 with an operation, 202 again for a re-sent PUT while in progress, 200 once provisioned, 409 for other attributes", async () => {
    // Held at the agent: the provision stays in progress while the re-sent PUT arrives.
    const hold = s.net.base.sim.hosts.map((h) => h.hold("vm/start"));
    let operation: string;
    try {
      const first = await put("osb-2");
      expect(first.status).toBe(202);
      operation = first.body.operation as string;
      await Promise.any(hold.map((h) => h.next(30_000)));
      const resent = await put("osb-2");
      expect(resent.status).toBe(202);
      expect(resent.body.operation).toBe(operation);
    } finally {
      for (const h of hold) h.cancel();
    }
    const done = await untilDone("osb-2", operation!);
    expect(done.body.state).toBe("succeeded");
    const again = await put("osb-2");
    expect(again.status).toBe(200);
    await unchangedBy(async () => {
      const conflict = await put("osb-2", { service_id: SERVICE_ID, plan_id: "vm-medium" });
      expect(conflict.status).toBe(409);
    });
    const got = await call("GET", "/v2/service_instances/osb-2");
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ service_id: SERVICE_ID, plan_id: SMALL });
  }, 90_000);

  it("422 ConcurrencyError for a DELETE while the provision runs; the DELETE after it deprovisions (202, then succeeded); then 410 Gone", async () => {
    const hold = s.net.base.sim.hosts.map((h) => h.hold("vm/start"));
    let first: Awaited<ReturnType<typeof put>>;
    try {
      first = await put("osb-3");
      expect(first.status).toBe(202);
      // The provision is parked at the agent: nothing moves its record until the hold lets go.
      await Promise.any(hold.map((h) => h.next(30_000)));
      await unchangedBy(async () => {
        const busy = await call("DELETE", `/v2/service_instances/osb-3?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`);
        expect(busy.status).toBe(422);
        expect(busy.body.error).toBe("ConcurrencyError");
        const update = await call("PATCH", "/v2/service_instances/osb-3?accepts_incomplete=true", { body: { service_id: SERVICE_ID, parameters: { eip: true } } });
        expect(update.status).toBe(422);
        expect(update.body.error).toBe("ConcurrencyError");
      });
    } finally {
      for (const h of hold) h.cancel();
    }
    await untilDone("osb-3", first!.body.operation as string);
    const del = await call("DELETE", `/v2/service_instances/osb-3?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`);
    expect(del.status).toBe(202);
    const done = await untilDone("osb-3", del.body.operation as string);
    expect(done.body.state).toBe("succeeded");
    expect((await call("DELETE", `/v2/service_instances/osb-3?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`)).status).toBe(410);
    expect((await call("DELETE", `/v2/service_instances/never-was?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`)).status).toBe(410);
    expect((await call("GET", "/v2/service_instances/osb-3")).status).toBe(404);
  }, 90_000);

  it("concurrent identical PUTs, released at once by a barrier, create one instance: one 202 operation for all; after DELETE the id provisions anew", async () => {
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const puts = Array.from({ length: 20 }, () => barrier.then(() => put("osb-race")));
    release();
    const answers = await Promise.all(puts);
    expect(answers.every((a) => a.status === 202 || a.status === 200)).toBe(true);
    const operations = new Set(answers.filter((a) => a.status === 202).map((a) => a.body.operation));
    expect(operations.size).toBe(1);
    expect((await s.sql`SELECT uuid FROM broker.instances WHERE instance_id = 'osb-race'`).length).toBe(1);
    await untilDone("osb-race", [...operations][0] as string);
    const del = await call("DELETE", `/v2/service_instances/osb-race?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`);
    await untilDone("osb-race", del.body.operation as string);
    const anew = await put("osb-race");
    expect(anew.status).toBe(202);
    expect(operations.has(anew.body.operation)).toBe(false);
    expect((await untilDone("osb-race", anew.body.operation as string)).body.state).toBe("succeeded");
    expect((await s.sql`SELECT state::text AS state FROM broker.instances WHERE instance_id = 'osb-race' ORDER BY seq`).map((r) => r.state)).toEqual(["Deleted", "Ready"]);
  }, 90_000);

  it("a provision that fails is `failed` with a description, and the platform's orphan-mitigation DELETE cleans it up", async () => {
    const faults = s.net.base.sim.hosts.map((h) => h.injectFault({ command: "vm/start", kind: "http500", message: "the hypervisor refused" }));
    let done: Awaited<ReturnType<typeof untilDone>>;
    try {
      const first = await put("osb-4");
      expect(first.status).toBe(202);
      done = await untilDone("osb-4", first.body.operation as string);
    } finally {
      for (const f of faults) f.clear();
    }
    expect(done.body.state).toBe("failed");
    expect(String(done.body.description)).not.toBe("");
    const del = await call("DELETE", `/v2/service_instances/osb-4?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`);
    expect(del.status).toBe(202);
    expect((await untilDone("osb-4", del.body.operation as string)).body.state).toBe("succeeded");
  }, 90_000);

  it("bindings: 201 with credentials, 200 for an identical repeat, 409 for other parameters, GET, DELETE 200 then 410", async () => {
    const first = await put("osb-5");
    await untilDone("osb-5", first.body.operation as string);
    const bind = (params: Record<string, unknown> = {}) => call("PUT", "/v2/service_instances/osb-5/service_bindings/b1", { body: { service_id: SERVICE_ID, plan_id: SMALL, parameters: params } });
    const created = await bind();
    expect(created.status).toBe(201);
    expect(created.body.credentials).toMatchObject({ port: 22, username: "stratum" });
    const repeat = await bind();
    expect(repeat.status).toBe(200);
    expect(repeat.body.credentials).toEqual(created.body.credentials);
    expect((await bind({ username: "other" })).status).toBe(409);
    const got = await call("GET", "/v2/service_instances/osb-5/service_bindings/b1");
    expect(got.status).toBe(200);
    expect(got.body.credentials).toEqual(created.body.credentials);
    expect((await call("GET", "/v2/service_instances/osb-5/service_bindings/b1/last_operation")).body.state).toBe("succeeded");
    const unbind = () => call("DELETE", `/v2/service_instances/osb-5/service_bindings/b1?service_id=${SERVICE_ID}&plan_id=${SMALL}`);
    expect((await unbind()).status).toBe(200);
    expect((await unbind()).status).toBe(410);
  }, 90_000);

  it("the platform's instance id is its own key: another platform's identity neither sees nor deletes it", async () => {
    const mine = await put("osb-6");
    expect(mine.status).toBe(202);
    expect((await call("GET", "/v2/service_instances/osb-6/last_operation", { tenant: "globex" })).status).toBe(404);
    expect((await call("DELETE", `/v2/service_instances/osb-6?accepts_incomplete=true&service_id=${SERVICE_ID}&plan_id=${SMALL}`, { tenant: "globex" })).status).toBe(410);
    const theirs = await put("osb-6", { service_id: SERVICE_ID, plan_id: "vm-medium" }, "?accepts_incomplete=true", "globex");
    expect(theirs.status).toBe(202);
    expect(theirs.body.operation).not.toBe(mine.body.operation);
  }, 60_000);
});
