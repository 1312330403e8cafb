import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { create, type DescService } from "@bufbuild/protobuf";
import { VmSchema, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { REQUEST_ID_KEY, type CallOptions } from "@stratum/rpc";
import type { Connect } from "./api";
import { run } from "./main";

/** A repository root without a devstack endpoints file, so the default endpoint applies. */
const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-main-"));

interface Recorded {
  method: string;
  request: unknown;
  options: CallOptions | undefined;
}

/** A fake compute: every method records its call and answers with a Running VM. */
function fakeConnect(): { connect: Connect; calls: Recorded[]; targets: string[] } {
  const calls: Recorded[] = [];
  const targets: string[] = [];
  const connect = ((service: DescService, target: string) => {
    targets.push(target);
    const client: Record<string, unknown> = {};
    for (const m of service.methods) {
      client[m.localName] = async (request: unknown, options?: CallOptions) => {
        calls.push({ method: m.localName, request, options });
        return { vm: create(VmSchema, { uuid: "11111111-1111-4111-8111-111111111111", name: "web-1", state: VmState.RUNNING, cpu: 2, memoryBytes: 4n * 1024n ** 3n }) };
      };
    }
    return client;
  }) as Connect;
  return { connect, calls, targets };
}

async function cli(argv: string[], connect: Connect = fakeConnect().connect, env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, repoRoot: emptyRoot, connect });
  return { code, stdout, stderr };
}

describe("usage errors: exit 2, a message naming the problem, nothing sent", () => {
  it.each([
    [["vm", "create", "--name", "a", "--cpu", "1", "--memory", "1GiB", "--colour", "red"], /^error: unknown flag --colour for 'vm create'\n/],
    [["vm", "stop", "u", "--forse"], /^error: unknown flag --forse for 'vm stop' \(did you mean --force\?\)/],
    [["vm", "create", "--cpu", "1", "--memory", "1GiB"], /^error: missing required flag --name\n/],
    [["vm", "create", "--name", "a", "--cpu", "1", "--memory", "4Gx"], /^error: invalid --memory: "4Gx" has an unknown unit "Gx"/],
    [["host", "add", "--name", "h", "--agent-url", "http://x:1", "--cpu", "1", "--memory", "64GB"], /^error: invalid --memory: "64GB" is ambiguous: write 64GiB/],
    [["vm", "list", "--state", "sleeping"], /^error: invalid --state "sleeping": must be one of created, /],
    [["vm", "get"], /^error: missing argument UUID\n/],
    [["vm", "get", "a", "b"], /^error: unexpected argument "b"\n/],
    [["vm", "destory", "u"], /^error: unknown command "vm destory" \(did you mean destroy\?\)/],
    [["vms", "list"], /^error: unknown command "vms" \(did you mean vm\?\)/],
    [["vm"], /^error: missing command after 'vm'; one of: create, list, get, start, stop, reboot, destroy, migrate\n/],
    [[], /^error: missing command/],
    [["vm", "list", "--timeout", "soon"], /^error: invalid --timeout "soon"/],
    [["vm", "list", "--endpoint", "nowhere"], /^error: --endpoint: "nowhere" is not HOST:PORT/],
  ])("%j", async (argv, message) => {
    const fake = fakeConnect();
    const connect = vi.fn(fake.connect) as unknown as Connect;
    const res = await cli(argv, connect);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toMatch(/Run 'stratumctl( [a-z]+){0,2} --help' for usage\.\n$/);
    expect(res.stdout).toBe("");
    expect(connect).not.toHaveBeenCalled();
    expect(fake.calls).toEqual([]);
  });
});

describe("help", () => {
  it("lists every command for the tool, on stdout, exit 0", async () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const res = await cli(argv);
      expect(res.code).toBe(0);
      expect(res.stderr).toBe("");
      for (const cmd of ["host add", "host list", "host get UUID", "host reconnect", "host enable", "host disable", "host maintenance", "host delete", "vm create", "vm list", "vm get", "vm start", "vm stop", "vm reboot", "vm destroy"]) {
        expect(res.stdout).toContain(`  ${cmd}`);
      }
    }
  });

  it("shows a command's flags, even with required flags missing, without connecting", async () => {
    const connect = vi.fn(fakeConnect().connect) as unknown as Connect;
    for (const argv of [["vm", "create", "--help"], ["help", "vm", "create"], ["vm", "create", "--name", "x", "-h"]]) {
      const res = await cli(argv, connect);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/^Usage: stratumctl vm create --name NAME --cpu N --memory SIZE \[--host UUID\]/);
      expect(res.stdout).toMatch(/Required flags:\n {2}--name NAME/);
      expect(res.stdout).toContain("--request-id KEY");
    }
    expect((await cli(["vm", "--help"])).stdout).toMatch(/^Usage: stratumctl vm <command>/);
    expect(connect).not.toHaveBeenCalled();
  });
});

describe("calls", () => {
  it("converts flags into the request: sizes in bytes, counts, booleans", async () => {
    const fake = fakeConnect();
    expect((await cli(["vm", "create", "--name", "web-1", "--cpu", "2", "--memory", "1.5GiB", "--request-id", "k-1"], fake.connect)).code).toBe(0);
    expect((await cli(["vm", "create", "--name", "db-1", "--cpu", "1", "--memory", "1GiB", "--root-size", "20GiB", "--primary-storage", "p-1", "--network", "l3-a", "--network", "l3-b"], fake.connect)).code).toBe(0);
    expect((await cli(["vm", "stop", "u-1", "--force"], fake.connect)).code).toBe(0);
    expect((await cli(["vm", "stop", "u-2"], fake.connect)).code).toBe(0);
    expect(fake.calls.map((c) => [c.method, c.request])).toEqual([
      ["createVm", { name: "web-1", cpu: 2, memoryBytes: 3n * 512n * 1024n ** 2n, hostUuid: "", rootVolumeSizeBytes: 0n, primaryStorageUuid: "", l3NetworkUuids: [], clientRequestId: "k-1", uuid: "" }],
      ["createVm", { name: "db-1", cpu: 1, memoryBytes: 1024n ** 3n, hostUuid: "", rootVolumeSizeBytes: 20n * 1024n ** 3n, primaryStorageUuid: "p-1", l3NetworkUuids: ["l3-a", "l3-b"], clientRequestId: "", uuid: "" }],
      ["stopVm", { uuid: "u-1", force: true }],
      ["stopVm", { uuid: "u-2", force: false }],
    ]);
  });

  it("sends each call with the --timeout deadline and a request id, to the resolved endpoint", async () => {
    const fake = fakeConnect();
    await cli(["--timeout", "2.5", "vm", "get", "u-1"], fake.connect, { STRATUM_ENDPOINT: "10.1.1.1:7000,10.1.1.2:7000" });
    expect(fake.targets).toEqual(["ipv4:10.1.1.1:7000,10.1.1.2:7000"]);
    const options = fake.calls[0]!.options!;
    expect(options.timeoutMs).toBe(2500);
    expect((options.metadata as Record<string, string>)[REQUEST_ID_KEY]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("accepts global flags on either side of the command", async () => {
    const res = await cli(["--json", "vm", "get", "u-1"]);
    const after = await cli(["vm", "get", "u-1", "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ uuid: "11111111-1111-4111-8111-111111111111", state: "VM_STATE_RUNNING", memoryBytes: "4294967296", lastError: "" });
    expect(after.stdout).toBe(res.stdout);
  });

  it("prints a table with human units and state words by default", async () => {
    const res = await cli(["vm", "start", "u-1"]);
    expect(res.stdout).toBe("UUID                                  NAME   STATE    CPU  MEMORY  HOST\n" + "11111111-1111-4111-8111-111111111111  web-1  Running  2    4 GiB   -\n");
  });
});
