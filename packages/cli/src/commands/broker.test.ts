import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import {
  BindingSchema,
  CatalogPlanSchema,
  CatalogServiceSchema,
  CredentialsSchema,
  GetCatalogResponseSchema,
  GetInstanceOperationResponseSchema,
  InstanceErrorSchema,
  InstanceSchema,
  InstanceState,
  OperationKind,
  OperationState,
  UnbindInstanceResponseSchema,
} from "@stratum/proto/stratum/broker/v1/broker_pb";
import type { CallOptions, ClientOptions } from "@stratum/rpc";
import type { Connect } from "../api";
import { run } from "../main";
import { findPlan } from "./broker";

const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-broker-"));
const TOKEN = "acme-token-0123456789abcdef";
const SERVICE = "a3c7e0d2-5b1f-4c7e-9a10-6f2b8d4e1c01";
const OP = "77777777-7777-4777-8777-777777777777";
const VM = "55555555-5555-4555-8555-555555555555";

const small = create(CatalogPlanSchema, { id: "vm-small", name: "small", description: "1 CPU", free: true, cpu: 1, memoryBytes: 1n << 30n, rootVolumeBytes: 10n << 30n });
const medium = create(CatalogPlanSchema, { id: "vm-medium", name: "medium", description: "2 CPUs", cpu: 2, memoryBytes: 4n << 30n, rootVolumeBytes: 20n << 30n });
const vmService = create(CatalogServiceSchema, { id: SERVICE, name: "vm", bindable: true, plans: [small, medium] });
const instance = (state: InstanceState, more: Partial<{ vmUuid: string; address: string; operationKind: OperationKind }> = {}) =>
  create(InstanceSchema, { instanceId: "web-1", uuid: "u-1", serviceId: SERVICE, planId: "vm-small", state, operation: OP, operationKind: OperationKind.PROVISION, ...more });
const operation = (state: OperationState, percent: number, description: string, i = instance(state === OperationState.SUCCEEDED ? InstanceState.READY : InstanceState.PROVISIONING)) =>
  create(GetInstanceOperationResponseSchema, { operation: OP, kind: i.operationKind, state, percent, description, instance: i });

interface Recorded {
  target: string;
  method: string;
  request: unknown;
  options: ClientOptions;
}

/** Answers by method name, each method's answers in turn (the last repeats); a method without one is a test bug. */
function fake(scripted: Record<string, Array<(request: never) => unknown>>) {
  const calls: Recorded[] = [];
  const turns = new Map<string, number>();
  const connect = ((service: DescService, target: string, options: ClientOptions) => {
    const client: Record<string, unknown> = {};
    for (const m of service.methods) {
      client[m.localName] = async (request: unknown, _options?: CallOptions) => {
        calls.push({ target, method: m.localName, request, options });
        const answers = scripted[m.localName];
        if (!answers) throw new Error(`no answer scripted for ${m.localName}`);
        const turn = turns.get(m.localName) ?? 0;
        turns.set(m.localName, turn + 1);
        return answers[Math.min(turn, answers.length - 1)]!(request as never);
      };
    }
    return client;
  }) as Connect;
  return { connect, calls };
}

const catalog = () => create(GetCatalogResponseSchema, { services: [vmService] });

async function cli(argv: string[], f = fake({ getCatalog: [catalog] }), env: Record<string, string> = { STRATUM_BROKER_TOKEN: TOKEN }, repoRoot = emptyRoot) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, repoRoot, connect: f.connect });
  return { code, stdout, stderr, calls: f.calls };
}

describe("broker usage errors: exit 2, the problem named, nothing sent", () => {
  it.each([
    [["broker", "instance", "create", "web-1"], /^error: missing required flag --plan\n/],
    [["broker", "instance", "create", "--plan", "small"], /^error: missing argument INSTANCE_ID\n/],
    [["broker", "instance", "create", "web-1", "--plan", "small", "--wait-timeout", "5"], /^error: --wait-timeout needs --wait\n/],
    [["broker", "instance", "create", "web-1", "--plan", "small", "--name", "a", "--param", "name=b"], /^error: parameter "name" given both by --name and as a parameter\n/],
    [["broker", "instance", "list", "--state", "running"], /^error: invalid --state "running": must be one of provisioning, ready, failed, updating, deprovisioning, deleted\n/],
    [["broker", "instance", "bind", "web-1"], /^error: missing argument BINDING_ID\n/],
    [["broker", "instance"], /^error: missing command after 'broker instance'; one of: create, get, list, delete, bind, unbind\n/],
    [["broker", "catalog", "--token", "has space"], /^error: the broker token from --token must be printable ASCII without spaces\n/],
  ])("%j", async (argv, message) => {
    const res = await cli(argv);
    expect(res.stderr).toMatch(message);
    expect(res.code).toBe(2);
    expect(res.calls).toEqual([]);
  });

  it("without a token anywhere, says where to put one", async () => {
    const res = await cli(["broker", "catalog"], undefined, {});
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: no broker token: pass --token TOKEN or set \$STRATUM_BROKER_TOKEN \(the devstack's dev token is in \.data\/devstack\/endpoints\.json, "brokerToken"\)\n/);
    expect(res.calls).toEqual([]);
  });
});

describe("broker endpoint and token", () => {
  it("dials the flag, $STRATUM_BROKER_ENDPOINT, the devstack's broker list, then 127.0.0.1:7501, with a bearer token interceptor", async () => {
    const f = fake({ getCatalog: [catalog] });
    await cli(["broker", "catalog"], f);
    await cli(["broker", "catalog"], f, { STRATUM_BROKER_TOKEN: TOKEN, STRATUM_BROKER_ENDPOINT: "10.0.0.5:7501" });
    await cli(["broker", "catalog", "--broker-endpoint", "10.0.0.6:7501", "--token", TOKEN], f, {});
    const devstack = mkdtempSync(join(tmpdir(), "stratumctl-broker-devstack-"));
    mkdirSync(join(devstack, ".data", "devstack"), { recursive: true });
    writeFileSync(join(devstack, ".data", "devstack", "endpoints.json"), JSON.stringify({ broker: ["127.0.0.1:41001", "127.0.0.1:41002"], brokerToken: "dev-0123456789abcdef" }));
    // No flag and no env: the devstack's address list and its dev token.
    expect((await cli(["broker", "catalog"], f, {}, devstack)).code).toBe(0);
    expect(f.calls.map((c) => c.target)).toEqual(["127.0.0.1:7501", "10.0.0.5:7501", "10.0.0.6:7501", "ipv4:127.0.0.1:41001,127.0.0.1:41002"]);
    for (const c of f.calls) expect(c.options.interceptors).toHaveLength(1);
  });

  it("a refused token names where it came from", async () => {
    const f = fake({ getCatalog: [() => Promise.reject(new StratumError(Code.UNAUTHENTICATED, "the bearer token is not one the broker knows", { reason: "UNAUTHENTICATED" }))] });
    const res = await cli(["broker", "catalog"], f);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe("error: UNAUTHENTICATED: the bearer token is not one the broker knows\nthe token is from $STRATUM_BROKER_TOKEN; pass another with --token or $STRATUM_BROKER_TOKEN\n");
  });
});

describe("broker commands", () => {
  it("catalog lists every plan with its size", async () => {
    const res = await cli(["broker", "catalog"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      "SERVICE  PLAN       NAME    CPU  MEMORY  ROOT VOLUME  FREE  DESCRIPTION\n" + "vm       vm-small   small   1    1 GiB   10 GiB       yes   1 CPU\n" + "vm       vm-medium  medium  2    4 GiB   20 GiB       no    2 CPUs\n",
    );
  });

  it("instance create resolves the plan by name, sends the parameters, and says when the instance already existed", async () => {
    const f = fake({ getCatalog: [catalog], provisionInstance: [() => ({ instance: instance(InstanceState.PROVISIONING), created: true }), () => ({ instance: instance(InstanceState.READY), created: false })] });
    const first = await cli(["broker", "instance", "create", "web-1", "--plan", "small", "--eip", "--name", "web", "--param", "extra=3"], f);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toMatch(/^INSTANCE ID\s+STATE\s+PLAN\s+ADDRESS\s+VM\s+OPERATION\nweb-1\s+Provisioning\s+vm-small\s+-\s+-\s+7777/);
    expect(f.calls[1]!.request).toMatchObject({ instanceId: "web-1", serviceId: SERVICE, planId: "vm-small", parameters: { extra: 3, name: "web", eip: true } });
    const again = await cli(["broker", "instance", "create", "web-1", "--plan", "vm-small", "--service", "vm"], f);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe(`instance web-1 already existed with this plan and these parameters: nothing new was provisioned (operation ${OP})\n`);
  });

  it("instance create --wait polls the operation, a line per change, and ends Ready (exit 0) or Failed (exit 1, the reason)", async () => {
    const ready = instance(InstanceState.READY, { vmUuid: VM, address: "10.0.0.10" });
    const f = fake({
      getCatalog: [catalog],
      provisionInstance: [() => ({ instance: instance(InstanceState.PROVISIONING), created: true })],
      getInstanceOperation: [
        () => operation(OperationState.IN_PROGRESS, 10, "creating VM"),
        () => operation(OperationState.IN_PROGRESS, 10, "creating VM"),
        () => operation(OperationState.IN_PROGRESS, 70, "attaching elastic IP"),
        () => operation(OperationState.SUCCEEDED, 100, "provision succeeded", ready),
      ],
    });
    const ok = await cli(["broker", "instance", "create", "web-1", "--plan", "small", "--wait"], f);
    expect(ok.code).toBe(0);
    const lines = ok.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^In progress\s+provision\s+10%\s+0:00\s+creating VM$/);
    expect(lines[1]).toMatch(/^In progress\s+provision\s+70%\s+0:00\s+attaching elastic IP$/);
    expect(lines[2]).toMatch(new RegExp(`^instance web-1 Ready \\(waited 0:0\\d\\): vm ${VM}, address 10\\.0\\.0\\.10$`));
    expect(f.calls.filter((c) => c.method === "getInstanceOperation").map((c) => c.request)).toEqual(Array(4).fill(expect.objectContaining({ instanceId: "web-1", operation: OP })));

    const failedInstance = create(InstanceSchema, { ...instance(InstanceState.FAILED), error: create(InstanceErrorSchema, { reason: "NO_HOST_AVAILABLE", message: "no host has 1 CPU free" }) });
    const g = fake({
      getCatalog: [catalog],
      provisionInstance: [() => ({ instance: instance(InstanceState.PROVISIONING), created: true })],
      getInstanceOperation: [() => operation(OperationState.FAILED, 10, "no host has 1 CPU free", failedInstance)],
    });
    const failed = await cli(["broker", "instance", "create", "web-1", "--plan", "small", "--wait", "--json"], g);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^instance web-1 Failed \(waited 0:00\): the provision failed: NO_HOST_AVAILABLE: no host has 1 CPU free\n$/);
    expect(JSON.parse(failed.stdout)).toMatchObject({ instanceId: "web-1", state: "INSTANCE_STATE_FAILED", error: { reason: "NO_HOST_AVAILABLE" } });
  });

  it("instance delete --wait ends Deleted; bind prints the credentials; unbind says so", async () => {
    const deleting = instance(InstanceState.DEPROVISIONING, { operationKind: OperationKind.DEPROVISION });
    const deleted = instance(InstanceState.DELETED, { operationKind: OperationKind.DEPROVISION });
    const credentials = create(CredentialsSchema, { address: "10.0.0.10", port: 22, username: "stratum", password: "s3cret-s3cret", uri: "ssh://stratum@10.0.0.10:22" });
    const f = fake({
      deprovisionInstance: [() => ({ instance: deleting })],
      getInstanceOperation: [() => operation(OperationState.SUCCEEDED, 100, "deprovision succeeded", deleted)],
      bindInstance: [() => ({ binding: create(BindingSchema, { bindingId: "app-1", instanceId: "web-1", credentials }), created: true })],
      unbindInstance: [() => create(UnbindInstanceResponseSchema)],
    });
    const del = await cli(["broker", "instance", "delete", "web-1", "--wait"], f);
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/^instance web-1 Deleted \(waited 0:00\)\n$/);
    const bound = await cli(["broker", "instance", "bind", "web-1", "app-1", "--username", "ops"], f);
    expect(bound.code).toBe(0);
    expect(bound.stdout).toMatch(/\nPassword:\s+s3cret-s3cret\nURI:\s+ssh:\/\/stratum@10\.0\.0\.10:22\n/);
    expect(f.calls.find((c) => c.method === "bindInstance")!.request).toMatchObject({ instanceId: "web-1", bindingId: "app-1", parameters: { username: "ops" } });
    expect((await cli(["broker", "instance", "unbind", "web-1", "app-1"], f)).stdout).toBe("binding app-1 of instance web-1 revoked\n");
  });

  it("findPlan: by id or name, within --service, and names what the catalog has", () => {
    const other = create(CatalogServiceSchema, { id: "s2", name: "db", plans: [create(CatalogPlanSchema, { id: "db-small", name: "small" })] });
    expect(findPlan([vmService], "small", undefined).plan.id).toBe("vm-small");
    expect(findPlan([vmService, other], "small", "db").plan.id).toBe("db-small");
    expect(() => findPlan([vmService, other], "small", undefined)).toThrow('plan "small" is in several services (vm, db): name one with --service');
    expect(() => findPlan([vmService], "huge", undefined)).toThrow(`the catalog has no plan "huge"; plans: vm-small, vm-medium ('stratumctl broker catalog')`);
    expect(() => findPlan([vmService], "small", "mq")).toThrow(`the catalog has no service "mq"; it has vm ('stratumctl broker catalog')`);
  });
});
