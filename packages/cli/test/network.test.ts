/**
 * stratumctl against real network replicas beside real compute, storage and longjob (real
 * Postgres, NATS and gRPC, simulated agents: services/network/test/stack.ts): L3 networks and
 * ranges as an operator drives them, a VM created on a network, and an elastic IP created,
 * attached to its NIC, audited, detached and deleted with `--wait`, the agent's rules checked.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNetworkStack, type NetworkStack } from "../../../services/network/test/stack";
import { run } from "../src/main";

let stack: NetworkStack;
let endpoints: string[];
const repoRoot = mkdtempSync(join(tmpdir(), "stratumctl-network-it-"));

beforeAll(async () => {
  stack = await startNetworkStack();
  // Every replica, as the devstack lists them: the CLI dials each service's as one pick_first target.
  endpoints = [
    "--endpoint",
    stack.base.compute.replicas.map((r) => r.address).join(","),
    "--network-endpoint",
    stack.network.replicas.map((r) => r.address).join(","),
  ];
}, 120_000);
afterAll(() => stack?.stop());

async function cli(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await run([...endpoints, ...argv], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {}, repoRoot });
  return { code, stdout, stderr };
}

async function json<T>(argv: string[]): Promise<T> {
  const res = await cli([...argv, "--json"]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as T;
}

describe("networks and elastic IPs through stratumctl", () => {
  it("creates a network with a range, lists its held addresses, refuses an overlap, deletes the range and the network", async () => {
    const n = await json<{ uuid: string; gateway: string; dns: string[] }>(["network", "create", "--name", "lab", "--cidr", "192.168.8.0/24", "--dns", "192.168.8.2,1.1.1.1"]);
    expect(n).toMatchObject({ gateway: "192.168.8.1", dns: ["192.168.8.2", "1.1.1.1"] });
    const added = await cli(["network", "range", "add", n.uuid, "--start", "192.168.8.10", "--end", "192.168.8.19"]);
    expect(added.stderr).toBe("");
    const rangeUuid = new RegExp(`\n(\\S+)\\s+${n.uuid}\\s+192\\.168\\.8\\.10\\s+192\\.168\\.8\\.19\\s+10\n$`).exec(added.stdout)?.[1];
    expect(rangeUuid, added.stdout).toBeDefined();

    const overlap = await cli(["network", "range", "add", n.uuid, "--start", "192.168.8.15", "--end", "192.168.8.30"]);
    expect(overlap.code).toBe(1);
    expect(overlap.stderr).toMatch(/^error: FAILED_PRECONDITION \(IP_RANGE_OVERLAPS\): the range 192\.168\.8\.15–192\.168\.8\.30 overlaps range /);
    const outside = await cli(["network", "range", "add", n.uuid, "--start", "192.168.9.1", "--end", "192.168.9.5"]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^error: INVALID_ARGUMENT: start_ip: 192\.168\.9\.1 is not an assignable address of 192\.168\.8\.0\/24/);
    expect((await cli(["network", "range", "list", n.uuid])).stdout.trim().split("\n")).toHaveLength(2);

    expect((await cli(["network", "get", n.uuid])).stdout).toMatch(/\nRanges:\s+192\.168\.8\.10–192\.168\.8\.19 \(10\)\n/);
    expect((await cli(["network", "list", "--private"])).stdout).toMatch(new RegExp(`\n${n.uuid}\\s+lab\\s+192\\.168\\.8\\.0/24\\s+192\\.168\\.8\\.1\\s+192\\.168\\.8\\.2,1\\.1\\.1\\.1\\s+no\n`));
    expect((await cli(["network", "list", "--public"])).stdout).not.toContain(n.uuid);
    expect(await cli(["network", "ips", n.uuid])).toMatchObject({ code: 0, stdout: "", stderr: "no held addresses found\n" });

    expect((await cli(["network", "range", "delete", rangeUuid!])).stdout).toBe(`IP range ${rangeUuid} deleted\n`);
    expect((await cli(["network", "delete", n.uuid])).code).toBe(0);
    const gone = await cli(["network", "get", n.uuid]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: NOT_FOUND/);
  });

  it("a VM on the private network gets a NIC; an EIP attached to it with --wait is Active with its rule on the VM's host, then detached and deleted", async () => {
    const created = await cli(["vm", "create", "--name", "eip-cli", "--cpu", "1", "--memory", "1GiB", "--host", stack.hostUuids[0]!, "--network", stack.privateL3, "--wait"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const vmUuid = /^vm (\S+) Running/m.exec(created.stdout)?.[1];
    expect(vmUuid, created.stdout).toBeDefined();
    const shown = await cli(["vm", "get", vmUuid!]);
    const nic = new RegExp(`\nNIC 0:\\s+(\\S+) (10\\.0\\.\\d+\\.\\d+) on L3 ${stack.privateL3}, mac `).exec(shown.stdout);
    expect(nic, shown.stdout).not.toBeNull();
    const [, nicUuid, guestIp] = nic!;
    expect((await cli(["network", "ips", stack.privateL3])).stdout).toMatch(new RegExp(`\n${guestIp!.replaceAll(".", "\\.")}\\s+Nic\\s+${nicUuid}\\s+${vmUuid}\\s`));

    const eip = await json<{ uuid: string; vipIp: string; status: string }>(["eip", "create", "--network", stack.publicL3, "--name", "web"]);
    expect(eip.status).toBe("EIP_STATUS_DETACHED");
    const notPublic = await cli(["eip", "create", "--network", stack.privateL3]);
    expect(notPublic.code).toBe(1);

    const attached = await cli(["eip", "attach", eip.uuid, "--nic", nicUuid!, "--wait"]);
    expect(attached.stderr).toBe("");
    expect(attached.code).toBe(0);
    expect(attached.stdout).toMatch(new RegExp(`^eip ${eip.uuid} Active \\(waited \\d+:\\d\\d\\) on host ${stack.hostUuids[0]}, ${eip.vipIp.replaceAll(".", "\\.")} → ${guestIp!.replaceAll(".", "\\.")}$`, "m"));
    expect(stack.rules().get(stack.hostUuids[0]!)).toContainEqual({ eipUuid: eip.uuid, vip: eip.vipIp, guestIp, nicUuid });
    expect((await cli(["eip", "list", "--vm", vmUuid!, "--status", "active"])).stdout).toMatch(new RegExp(`\n${eip.uuid}\\s+web\\s+\\S+\\s+Active\\s+${vmUuid}\\s+${guestIp!.replaceAll(".", "\\.")}\n$`));
    const audit = await cli(["eip", "audit", "--host", stack.hostUuids[0]!]);
    expect(audit).toMatchObject({ code: 0, stderr: "" });
    expect(audit.stdout).toMatch(new RegExp(`\n${stack.hostUuids[0]}\\s+in sync\\s+0\\s+0\\s+-\n$`));

    // The rule lost on the agent (a rebooted host): the audit reports it missing and exits 1.
    stack.simHost(stack.hostUuids[0]!).clearEipRules();
    const drift = await cli(["eip", "audit", "--host", stack.hostUuids[0]!]);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(new RegExp(`\n${stack.hostUuids[0]}\\s+missing\\s+${eip.uuid}\\s`));

    const detached = await cli(["eip", "detach", eip.uuid, "--wait", "--wait-timeout", "20"]);
    expect(detached.code).toBe(0);
    expect(detached.stdout).toMatch(new RegExp(`^eip ${eip.uuid} Detached \\(waited`, "m"));
    const deleted = await cli(["eip", "delete", eip.uuid, "--wait"]);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(new RegExp(`^eip ${eip.uuid} deleted`, "m"));
    expect((await cli(["eip", "get", eip.uuid])).code).toBe(1);
    expect((await cli(["network", "ips", stack.publicL3])).stdout).not.toContain(eip.vipIp + " ");
  });
});
