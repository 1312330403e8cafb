import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import { VmNicSchema, VmSchema, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { AuditEipsResponseSchema, DeleteEipResponseSchema, EipSchema, EipStatus, HostEipDriftSchema } from "@stratum/proto/stratum/network/v1/eip_pb";
import {
  DeleteIpRangeResponseSchema,
  DeleteL3NetworkResponseSchema,
  IpAddressSchema,
  IpHolderKind,
  IpRangeSchema,
  L3NetworkSchema,
  ListIpRangesResponseSchema,
} from "@stratum/proto/stratum/network/v1/network_pb";
import type { CallOptions } from "@stratum/rpc";
import type { Connect } from "../api";
import { run } from "../main";

const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-network-"));
const L3 = "11111111-1111-4111-8111-111111111111";
const RANGE = "22222222-2222-4222-8222-222222222222";
const EIP = "33333333-3333-4333-8333-333333333333";
const NIC = "44444444-4444-4444-8444-444444444444";
const VM = "55555555-5555-4555-8555-555555555555";
const HOST = "66666666-6666-4666-8666-666666666666";

interface Recorded {
  service: string;
  target: string;
  method: string;
  request: unknown;
}

const network = create(L3NetworkSchema, { uuid: L3, name: "private", cidr: "10.0.0.0/16", gateway: "10.0.0.1", dns: ["10.0.0.2", "1.1.1.1"], public: false });
const range = create(IpRangeSchema, { uuid: RANGE, l3NetworkUuid: L3, startIp: "10.0.0.10", endIp: "10.0.255.250" });
const eip = (status: EipStatus, revision = 1n) => create(EipSchema, { uuid: EIP, name: "web", l3NetworkUuid: L3, vipIp: "172.20.0.10", vmNicUuid: NIC, vmUuid: VM, guestIp: "10.0.0.12", status, revision, hostUuid: status === EipStatus.ACTIVE ? HOST : "" });
const rule = { eipUuid: EIP, vipIp: "172.20.0.10", guestIp: "10.0.0.12", vmNicUuid: NIC };

/** Answers by method name; a method without an answer is a test bug, loudly. */
function answers(overrides: Record<string, (request: never) => unknown> = {}): Record<string, (request: never) => unknown> {
  return {
    createL3Network: () => ({ l3Network: network }),
    listL3Networks: () => ({ l3Networks: [network], nextPageToken: "" }),
    getL3Network: () => ({ l3Network: network }),
    deleteL3Network: () => create(DeleteL3NetworkResponseSchema),
    addIpRange: () => ({ ipRange: range }),
    listIpRanges: () => create(ListIpRangesResponseSchema, { ipRanges: [range] }),
    deleteIpRange: () => create(DeleteIpRangeResponseSchema),
    listIpAddresses: () => ({ ipAddresses: [create(IpAddressSchema, { l3NetworkUuid: L3, ip: "10.0.0.12", holderKind: IpHolderKind.NIC, holderUuid: NIC, vmUuid: VM })], nextPageToken: "" }),
    createEip: () => ({ eip: create(EipSchema, { uuid: EIP, name: "web", l3NetworkUuid: L3, vipIp: "172.20.0.10", status: EipStatus.DETACHED }) }),
    attachEip: () => ({ eip: eip(EipStatus.APPLYING) }),
    detachEip: () => ({ eip: eip(EipStatus.RELEASING) }),
    deleteEip: () => create(DeleteEipResponseSchema),
    getEip: () => ({ eip: eip(EipStatus.ACTIVE, 2n) }),
    listEips: () => ({ eips: [eip(EipStatus.ACTIVE)], nextPageToken: "" }),
    auditEips: () => create(AuditEipsResponseSchema, { hosts: [create(HostEipDriftSchema, { hostUuid: HOST })] }),
    createVm: () => ({ vm: create(VmSchema, { uuid: VM, name: "web-1", state: VmState.CREATED }) }),
    getVm: () => ({
      vm: create(VmSchema, {
        uuid: VM,
        name: "web-1",
        state: VmState.RUNNING,
        nics: [create(VmNicSchema, { uuid: NIC, l3NetworkUuid: L3, ip: "10.0.0.12", mac: "fa:16:3e:00:00:01", deviceIndex: 0 }), create(VmNicSchema, { uuid: RANGE, l3NetworkUuid: EIP, ip: "", mac: "fa:16:3e:00:00:02", deviceIndex: 1 })],
      }),
    }),
    ...overrides,
  };
}

function fake(scripted = answers()) {
  const calls: Recorded[] = [];
  const connect = ((service: DescService, target: string) => {
    const client: Record<string, unknown> = {};
    for (const m of service.methods) {
      client[m.localName] = async (request: unknown, _options?: CallOptions) => {
        calls.push({ service: service.typeName.split(".").at(-1)!, target, method: m.localName, request });
        const answer = scripted[m.localName];
        if (!answer) throw new Error(`no answer scripted for ${m.localName}`);
        return answer(request as never);
      };
    }
    return client;
  }) as Connect;
  return { connect, calls };
}

async function cli(argv: string[], f = fake(), env: Record<string, string> = {}, repoRoot = emptyRoot) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, repoRoot, connect: f.connect });
  return { code, stdout, stderr, calls: f.calls };
}

describe("network and eip usage errors: exit 2, the problem named, nothing sent", () => {
  it.each([
    [["network", "create", "--name", "n"], /^error: missing required flag --cidr\n/],
    [["network", "create", "--name", "n", "--cidr", "10.0.0.0/16", "--dns", "10.0.0.2,,1.1.1.1"], /^error: invalid --dns "10\.0\.0\.2,,1\.1\.1\.1": write the servers comma-separated/],
    [["network", "create", "--name", "n", "--cidr", "10.0.0.0/16", "--public=yes"], /^error: flag --public takes no value/],
    [["network", "list", "--public", "--private"], /^error: --public and --private exclude each other\n/],
    [["network", "range"], /^error: missing command after 'network range'; one of: add, list, delete\n/],
    [["network", "range", "ad", L3], /^error: unknown command "network range ad" \(did you mean range add\?\)/],
    [["network", "range", "add", L3, "--start", "10.0.0.10"], /^error: missing required flag --end\n/],
    [["network", "range", "list"], /^error: missing argument NETWORK\n/],
    [["network", "ips"], /^error: missing argument NETWORK\n/],
    [["network", "get", L3, "--network-endpoint", "nowhere"], /^error: --network-endpoint: "nowhere" is not HOST:PORT/],
    [["eip", "create"], /^error: missing required flag --network\n/],
    [["eip", "attach", EIP], /^error: missing required flag --nic\n/],
    [["eip", "attach", EIP, "--nic", NIC, "--wait-timeout", "30"], /^error: --wait-timeout needs --wait\n/],
    [["eip", "attach", EIP, "--nic", NIC, "--wait", "--wait-timeout", "soon"], /^error: invalid --wait-timeout "soon": must be a positive number of seconds/],
    [["eip", "list", "--status", "bound"], /^error: invalid --status "bound": must be one of detached, applying, active, down, releasing, error, deleting\n/],
    [["eip", "detatch", EIP], /^error: unknown command "eip detatch" \(did you mean detach\?\)/],
    [["eip"], /^error: missing command after 'eip'; one of: create, attach, detach, list, get, delete, audit\n/],
    [["vm", "create", "--name", "a", "--cpu", "1", "--memory", "1GiB", "--network"], /^error: flag --network needs a value \(L3\)/],
  ])("%j", async (argv, message) => {
    const res = await cli(argv);
    expect(res.stderr).toMatch(message);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.calls).toEqual([]);
  });
});

describe("network commands", () => {
  it("go to network's endpoint: the flag, $STRATUM_NETWORK_ENDPOINT, the devstack's network list, then 127.0.0.1:7601", async () => {
    const f = fake();
    await cli(["network", "list"], f);
    await cli(["network", "list"], f, { STRATUM_ENDPOINT: "10.0.0.1:7101", STRATUM_NETWORK_ENDPOINT: "10.0.0.5:7601" });
    await cli(["eip", "list", "--network-endpoint", "10.0.0.6:7601"], f, { STRATUM_NETWORK_ENDPOINT: "10.0.0.5:7601" });
    const devstack = mkdtempSync(join(tmpdir(), "stratumctl-network-devstack-"));
    mkdirSync(join(devstack, ".data", "devstack"), { recursive: true });
    writeFileSync(join(devstack, ".data", "devstack", "endpoints.json"), JSON.stringify({ compute: ["127.0.0.1:7101"], network: ["127.0.0.1:41001", "127.0.0.1:41002"] }));
    await cli(["eip", "get", EIP], f, {}, devstack);
    expect(f.calls.map((c) => [c.service, c.target, c.method])).toEqual([
      ["NetworkService", "127.0.0.1:7601", "listL3Networks"],
      ["NetworkService", "10.0.0.5:7601", "listL3Networks"],
      ["EipService", "10.0.0.6:7601", "listEips"],
      ["EipService", "ipv4:127.0.0.1:41001,127.0.0.1:41002", "getEip"],
    ]);
    // A devstack without network replicas is an error naming the key, not a silent default.
    writeFileSync(join(devstack, ".data", "devstack", "endpoints.json"), JSON.stringify({ compute: ["127.0.0.1:7101"] }));
    const missing = await cli(["network", "list"], fake(), {}, devstack);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/has no "network" list of addresses .*set \$STRATUM_NETWORK_ENDPOINT/);
  });

  it("network create sends the DNS list and --public; prints the network as a row", async () => {
    const res = await cli(["network", "create", "--name", "private", "--cidr", "10.0.0.0/16", "--gateway", "10.0.0.1", "--dns", "10.0.0.2, 1.1.1.1", "--request-id", "k-1"]);
    expect(res.stderr).toBe("");
    expect(res.calls[0]!.request).toEqual({ name: "private", cidr: "10.0.0.0/16", gateway: "10.0.0.1", dns: ["10.0.0.2", "1.1.1.1"], public: false, clientRequestId: "k-1", uuid: "" });
    expect(res.stdout).toBe(`UUID${" ".repeat(34)}NAME     CIDR         GATEWAY   DNS               PUBLIC\n${L3}  private  10.0.0.0/16  10.0.0.1  10.0.0.2,1.1.1.1  no\n`);
    const pub = await cli(["network", "create", "--name", "public", "--cidr", "172.20.0.0/16", "--public"]);
    expect(pub.calls[0]!.request).toMatchObject({ dns: [], public: true, gateway: "" });
  });

  it("network list filters public or private; get shows the ranges with their sizes", async () => {
    expect((await cli(["network", "list", "--public"])).calls[0]!.request).toEqual({ public: true, pageSize: 0, pageToken: "" });
    expect((await cli(["network", "list", "--private"])).calls[0]!.request).toEqual({ public: false, pageSize: 0, pageToken: "" });
    expect((await cli(["network", "list"])).calls[0]!.request).toEqual({ pageSize: 0, pageToken: "" });
    const get = await cli(["network", "get", L3]);
    expect(get.calls.map((c) => c.method)).toEqual(["getL3Network", "listIpRanges"]);
    expect(get.stdout).toMatch(/\nRanges:\s+10\.0\.0\.10–10\.0\.255\.250 \(65521\)\n/);
    expect(get.stdout).toMatch(/\nDNS:\s+10\.0\.0\.2, 1\.1\.1\.1\n/);
    expect(JSON.parse((await cli(["network", "get", L3, "--json"])).stdout)).toMatchObject({ uuid: L3, cidr: "10.0.0.0/16", public: false });
  });

  it("range add, list and delete; ips lists the holders", async () => {
    const add = await cli(["network", "range", "add", L3, "--start", "10.0.0.10", "--end", "10.0.255.250"]);
    expect(add.calls[0]!.request).toEqual({ l3NetworkUuid: L3, startIp: "10.0.0.10", endIp: "10.0.255.250", clientRequestId: "", uuid: "" });
    expect(add.stdout).toMatch(new RegExp(`\n${RANGE}\\s+${L3}\\s+10\\.0\\.0\\.10\\s+10\\.0\\.255\\.250\\s+65521\n$`));
    expect((await cli(["network", "range", "list", L3])).calls[0]!.request).toEqual({ l3NetworkUuid: L3 });
    const empty = await cli(["network", "range", "list", L3], fake(answers({ listIpRanges: () => create(ListIpRangesResponseSchema) })));
    expect(empty).toMatchObject({ code: 0, stdout: "" });
    expect(empty.stderr).toMatch(/^no IP ranges on network .*network range add/);
    const del = await cli(["network", "range", "delete", RANGE]);
    expect(del.calls[0]!.request).toEqual({ uuid: RANGE, clientRequestId: "" });
    expect(del.stdout).toBe(`IP range ${RANGE} deleted\n`);
    const ips = await cli(["network", "ips", L3]);
    expect(ips.calls[0]!.request).toEqual({ l3NetworkUuid: L3, pageSize: 0, pageToken: "" });
    expect(ips.stdout).toMatch(new RegExp(`^IP\\s+HOLDER\\s+HOLDER UUID\\s+VM\\s+SINCE\n10\\.0\\.0\\.12\\s+Nic\\s+${NIC}\\s+${VM}\\s+-\n$`));
  });

  it("help lists the network and eip groups, the range commands and the network endpoint", async () => {
    const help = await cli(["--help"]);
    for (const cmd of ["network create", "network range add NETWORK", "network range delete UUID", "network ips NETWORK", "eip create", "eip attach EIP", "eip audit"]) expect(help.stdout).toContain(`  ${cmd}`);
    expect(help.stdout).toContain("--network-endpoint HOST:PORT");
    expect((await cli(["network", "range", "add", "--help"])).stdout).toMatch(/^Usage: stratumctl network range add NETWORK --start IP --end IP/);
    expect((await cli(["help", "network", "range", "list"])).stdout).toMatch(/^Usage: stratumctl network range list NETWORK\n/);
    expect((await cli(["network", "--help"])).stdout).toContain("  range add NETWORK");
  });
});

describe("eip commands", () => {
  it("eip create names it when --name is not given; sends the VIP wanted", async () => {
    const res = await cli(["eip", "create", "--network", L3, "--vip", "172.20.0.50"]);
    expect(res.calls[0]!.request).toEqual({ name: expect.stringMatching(/^eip-[0-9a-f]{8}$/), l3NetworkUuid: L3, vipIp: "172.20.0.50", clientRequestId: "", uuid: "" });
    expect(res.stdout).toMatch(new RegExp(`\n${EIP}\\s+web\\s+172\\.20\\.0\\.10\\s+Detached\\s+-\\s+-\n$`));
    expect((await cli(["eip", "create", "--network", L3, "--name", "db"])).calls[0]!.request).toMatchObject({ name: "db", vipIp: "" });
  });

  it("attach without --wait prints it Applying; with --wait polls GetEip to Active, --json the EIP as it ended", async () => {
    const plain = await cli(["eip", "attach", EIP, "--nic", NIC]);
    expect(plain.calls.map((c) => [c.method, c.request])).toEqual([["attachEip", { uuid: EIP, vmNicUuid: NIC, clientRequestId: "" }]]);
    expect(plain.stdout).toMatch(/\sApplying\s/);
    const waited = await cli(["eip", "attach", EIP, "--nic", NIC, "--wait", "--json"]);
    expect(waited.code).toBe(0);
    expect(waited.calls.map((c) => c.method)).toEqual(["attachEip", "getEip"]);
    expect(JSON.parse(waited.stdout)).toMatchObject({ uuid: EIP, status: "EIP_STATUS_ACTIVE", hostUuid: HOST });
    expect(waited.stderr).toMatch(new RegExp(`^Applying  0:00\neip ${EIP} Active \\(waited 0:00\\) on host ${HOST}`));
  });

  it("delete answers gone at once, or Deleting and --wait polls until NOT_FOUND", async () => {
    const gone = await cli(["eip", "delete", EIP]);
    expect(gone.stdout).toBe(`eip ${EIP} deleted\n`);
    const deleting = answers({
      deleteEip: () => create(DeleteEipResponseSchema, { eip: eip(EipStatus.DELETING) }),
      getEip: () => {
        throw new StratumError(Code.NOT_FOUND, `eip ${EIP} not found`);
      },
    });
    const waited = await cli(["eip", "delete", EIP, "--wait"], fake(deleting));
    expect(waited.code).toBe(0);
    expect(waited.stdout).toBe(`Deleting  0:00\neip ${EIP} deleted (waited 0:00)\n`);
    expect((await cli(["eip", "delete", EIP], fake(deleting))).stdout).toMatch(/\sDeleting\s/);
  });

  it("list sends the filters; get shows the binding and status", async () => {
    const list = await cli(["eip", "list", "--status", "error", "--vm", VM, "--network", L3]);
    expect(list.calls[0]!.request).toEqual({ status: EipStatus.ERROR, vmUuid: VM, l3NetworkUuid: L3, pageSize: 0, pageToken: "" });
    expect(list.stdout).toMatch(new RegExp(`^UUID\\s+NAME\\s+VIP\\s+STATUS\\s+VM\\s+GUEST IP\n${EIP}\\s+web\\s+172\\.20\\.0\\.10\\s+Active\\s+${VM}\\s+10\\.0\\.0\\.12\n$`));
    const get = await cli(["eip", "get", EIP]);
    expect(get.stdout).toMatch(new RegExp(`\nNIC:\\s+${NIC}\n`));
    expect(get.stdout).toMatch(new RegExp(`\nHost:\\s+${HOST}\n`));
  });

  it("audit: exit 0 when every host is in sync, 1 with the drifting rules listed", async () => {
    const clean = await cli(["eip", "audit", "--host", HOST, "--host", VM]);
    expect(clean.calls[0]!.request).toEqual({ hostUuids: [HOST, VM] });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(new RegExp(`\n${HOST}\\s+in sync\\s+0\\s+0\\s+-\n$`));
    const drifting = answers({
      auditEips: () =>
        create(AuditEipsResponseSchema, { hosts: [create(HostEipDriftSchema, { hostUuid: HOST, stale: [rule] }), create(HostEipDriftSchema, { hostUuid: VM, error: "agent unreachable" })] }),
    });
    const res = await cli(["eip", "audit"], fake(drifting));
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(new RegExp(`\n${HOST}\\s+drifting\\s+0\\s+1\\s+-\n${VM}\\s+unknown\\s+0\\s+0\\s+agent unreachable\n\nHOST\\s+DRIFT\\s+EIP\\s+VIP\\s+GUEST IP\\s+NIC\n${HOST}\\s+stale\\s+${EIP}\\s+172\\.20\\.0\\.10\\s+10\\.0\\.0\\.12\\s+${NIC}\n$`));
  });

  it("vm create --network gives the VM a NIC per network in order; vm get shows each NIC's uuid and address", async () => {
    const created = await cli(["vm", "create", "--name", "web-1", "--cpu", "1", "--memory", "1GiB", "--network", L3, "--network", EIP]);
    expect(created.calls[0]!.request).toMatchObject({ l3NetworkUuids: [L3, EIP] });
    const get = await cli(["vm", "get", VM]);
    expect(get.stdout).toMatch(new RegExp(`\nNIC 0:\\s+${NIC} 10\\.0\\.0\\.12 on L3 ${L3}, mac fa:16:3e:00:00:01\nNIC 1:\\s+${RANGE} \\(no address yet\\) on L3 ${EIP}, mac fa:16:3e:00:00:02\n`));
    expect((await cli(["vm", "get", VM], fake(answers({ getVm: () => ({ vm: create(VmSchema, { uuid: VM }) }) })))).stdout).toMatch(/\nNICs:\s+-\n/);
  });
});
