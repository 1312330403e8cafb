/**
 * stratumctl against a real compute replica (real Postgres, NATS and gRPC, simulated agents):
 * the CLI's requests, output and exit codes as an operator sees them. Lifecycle commands answer
 * once compute accepts the operation; `--wait` follows WatchVm to its outcome, so a test that
 * needs the outcome waits for it, and agent-sim holds force what the VM is doing meanwhile.
 */
import { mkdtempSync } from "node:fs";
import { getFreePort } from "@stratum/testing";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HostState } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { createClient } from "@stratum/rpc";
import { startComputeStack, type ComputeStack } from "../../../services/compute/test/harness";
import { untilVmState } from "../../../services/compute/test/watch";
import type { Connect } from "../src/api";
import { run } from "../src/main";

let stack: ComputeStack;
let endpoint: string;
/** No devstack endpoints file here: only --endpoint decides where the CLI goes. */
const repoRoot = mkdtempSync(join(tmpdir(), "stratumctl-it-"));

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2 });
  endpoint = stack.replicas[0]!.address;
});
afterAll(() => stack?.stop());

async function cli(argv: string[], options: { connect?: Connect; endpoint?: string; signal?: AbortSignal; onStdout?: (text: string) => void } = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(["--endpoint", options.endpoint ?? endpoint, ...argv], {
    stdout: {
      write: (s: string) => {
        stdout += s;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    repoRoot,
    ...(options.connect ? { connect: options.connect } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { code, stdout, stderr };
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const ELAPSED = "\\d+:\\d\\d";

/** The last line `--wait` printed: the operation's outcome. */
function outcome(stdout: string): string {
  return stdout.trimEnd().split("\n").pop()!;
}

/** Resolves once the CLI's stdout so far matches `pattern` (a state line of `--wait`). */
function printed(pattern: RegExp): { promise: Promise<void>; onStdout: (text: string) => void } {
  let seen!: () => void;
  const promise = new Promise<void>((resolve) => (seen = resolve));
  return { promise, onStdout: (text) => pattern.test(text) && seen() };
}

/** Runs a command that must succeed, returning its stdout. */
async function ok(...argv: string[]): Promise<string> {
  const res = await cli(argv);
  expect(res.stderr, `stratumctl ${argv.join(" ")}`).toBe("");
  expect(res.code).toBe(0);
  return res.stdout;
}

const hostUuids: string[] = [];

describe("hosts", () => {
  it("adds hosts and lists them in a table with human units", async () => {
    for (const [i, host] of stack.sim.hosts.entries()) {
      const json = JSON.parse(await ok("host", "add", "--name", `kvm-${i}`, "--agent-url", host.url, "--cpu", "16", "--memory", "64GiB", "--json"));
      expect(json).toMatchObject({ name: `kvm-${i}`, status: "HOST_STATUS_CONNECTED", state: "HOST_STATE_ENABLED", memoryCapacityBytes: String(64n * 1024n ** 3n), cpuUsed: 0 });
      hostUuids.push(json.uuid);
    }
    // The server has what the CLI sent, sizes converted to bytes.
    const stored = (await stack.hosts.getHost({ uuid: hostUuids[0]! })).host!;
    expect(stored.memoryCapacityBytes).toBe(64n * 1024n ** 3n);
    expect(stored.cpuCapacity).toBe(16);

    const table = await ok("host", "list");
    const lines = table.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^UUID\s+NAME\s+STATUS\s+STATE\s+CPU\s+MEMORY\s+AGENT URL$/);
    expect(lines).toHaveLength(3);
    for (const [i, uuid] of hostUuids.entries()) {
      const line = lines.find((l) => l.startsWith(uuid));
      expect(line).toMatch(new RegExp(`^${uuid}\\s+kvm-${i}\\s+Connected\\s+Enabled\\s+0/16\\s+0 B/64 GiB\\s+${stack.sim.hosts[i]!.url}$`));
    }
  });

  it("filters by status and shows one host in detail", async () => {
    expect(JSON.parse(await ok("host", "list", "--status", "connected", "--json")).hosts).toHaveLength(2);
    const res = await cli(["host", "list", "--status", "disconnected"]);
    expect(res).toEqual({ code: 0, stdout: "", stderr: "no hosts found\n" });

    const details = await ok("host", "get", hostUuids[0]!);
    expect(details).toMatch(/^UUID:\s+[0-9a-f-]{36}\n/);
    expect(details).toMatch(/\nStatus:\s+Connected\n/);
    expect(details).toMatch(/\nMemory:\s+0 B used of 64 GiB\n/);
  });

  it("changes a host's state", async () => {
    expect(await ok("host", "maintenance", hostUuids[1]!)).toMatch(/\sMaintenance\s/);
    expect((await stack.hosts.getHost({ uuid: hostUuids[1]! })).host!.state).toBe(HostState.MAINTENANCE);
    expect(await ok("host", "disable", hostUuids[1]!)).toMatch(/\sDisabled\s/);
    expect(await ok("host", "enable", hostUuids[1]!)).toMatch(/\sEnabled\s/);
    expect((await stack.hosts.getHost({ uuid: hostUuids[1]! })).host!.state).toBe(HostState.ENABLED);
    expect(await ok("host", "reconnect", hostUuids[1]!)).toMatch(/\sConnected\s/);
  });
});

describe("VM lifecycle", () => {
  let uuid: string;

  it("creates a VM with --wait, ending Running, and get --json shows it Running", async () => {
    const created = await ok("vm", "create", "--name", "web-1", "--cpu", "2", "--memory", "4GiB", "--host", hostUuids[0]!, "--wait");
    // The accepted VM first, then each state it passes through, then the outcome.
    expect(created).toMatch(new RegExp(`^Created  ${ELAPSED}\n(Starting  ${ELAPSED}\n)?vm ${UUID} Running \\(waited ${ELAPSED}\\)\n$`));
    uuid = new RegExp(`^vm (${UUID}) `).exec(outcome(created))![1]!;

    const json = JSON.parse(await ok("vm", "get", uuid, "--json"));
    expect(json).toMatchObject({ uuid, name: "web-1", state: "VM_STATE_RUNNING", cpu: 2, memoryBytes: String(4n * 1024n ** 3n), hostUuid: hostUuids[0] });
    expect((await stack.vms.getVm({ uuid })).vm!.memoryBytes).toBe(4n * 1024n ** 3n);

    expect(await ok("vm", "get", uuid)).toMatch(/\nState:\s+Running\n[\s\S]*\nMemory:\s+4 GiB\n/);
    expect(await ok("host", "get", hostUuids[0]!)).toMatch(/\nCPU:\s+2 used of 16\n/);
  });

  it("stops, starts, reboots, force-stops and destroys it with --wait, each to its outcome", async () => {
    const state = async () => (await stack.vms.getVm({ uuid })).vm!.state;
    const ended = (word: string) => new RegExp(`\nvm ${uuid} ${word} \\(waited ${ELAPSED}\\)\n$`);
    expect(await ok("vm", "stop", uuid, "--wait")).toMatch(new RegExp(`^Stopping  ${ELAPSED}${ended("Stopped").source}`));
    expect(await state()).toBe(VmState.STOPPED);
    expect(await ok("vm", "start", uuid, "--wait")).toMatch(new RegExp(`^Starting  ${ELAPSED}${ended("Running").source}`));
    expect(await state()).toBe(VmState.RUNNING);
    expect(await ok("vm", "reboot", uuid, "--wait")).toMatch(new RegExp(`^Rebooting  ${ELAPSED}${ended("Running").source}`));
    expect(await ok("vm", "stop", uuid, "--force", "--wait")).toMatch(ended("Stopped"));
    expect(await state()).toBe(VmState.STOPPED);
    // --json: the VM as it ended on stdout, the progress on stderr.
    const destroyed = await cli(["vm", "destroy", uuid, "--wait", "--json"]);
    expect(destroyed.code).toBe(0);
    expect(JSON.parse(destroyed.stdout)).toMatchObject({ uuid, state: "VM_STATE_DESTROYED", hostUuid: "" });
    expect(destroyed.stderr).toMatch(new RegExp(`^Destroying  ${ELAPSED}${ended("Destroyed").source}`));
    expect(await state()).toBe(VmState.DESTROYED);
    // Destroying a destroyed VM answers Destroyed: --wait has nothing to wait for.
    expect(await ok("vm", "destroy", uuid, "--wait")).toMatch(new RegExp(`^vm ${uuid} Destroyed \\(waited ${ELAPSED}\\)\n$`));
  });

  it("without --wait prints the VM as accepted, in its transient state", async () => {
    const vm = await untilVmState(stack.vms, (await stack.vms.createVm({ name: "no-wait", cpu: 1, memoryBytes: 1024n ** 3n, hostUuid: hostUuids[0]! })).vm!.uuid, VmState.RUNNING);
    const hold = stack.sim.hold(0, "vm/stop");
    expect(await ok("vm", "stop", vm.uuid)).toMatch(new RegExp(`^UUID\\s+NAME\\s+STATE\\s+CPU\\s+MEMORY\\s+HOST\n${vm.uuid}\\s+no-wait\\s+Stopping\\s`));
    (await hold.next(10_000)).release();
    await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
    expect(await ok("vm", "destroy", vm.uuid)).toMatch(/\sDestroying\s/);
    await untilVmState(stack.vms, vm.uuid, VmState.DESTROYED);
  });

  it("a reboot that failed on the agent ends Running with last_error: --wait exits 1 and prints it", async () => {
    const vm = await untilVmState(stack.vms, (await stack.vms.createVm({ name: "bad-reboot", cpu: 1, memoryBytes: 1024n ** 3n, hostUuid: hostUuids[0]! })).vm!.uuid, VmState.RUNNING);
    stack.sim.host(0).injectFault({ command: "vm/reboot", kind: "http500", message: "qemu monitor not responding" });
    try {
      const res = await cli(["vm", "reboot", vm.uuid, "--wait"]);
      expect(res.code).toBe(1);
      expect(outcome(res.stdout)).toMatch(new RegExp(`^vm ${vm.uuid} Running \\(waited ${ELAPSED}\\): the reboot failed: .*vm/reboot.*qemu monitor not responding`));
    } finally {
      stack.sim.host(0).clearFaults();
    }
    expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!).toMatchObject({ state: VmState.RUNNING, lastError: expect.stringContaining("qemu monitor not responding") });
    expect(await ok("vm", "destroy", vm.uuid, "--wait")).toMatch(/ Destroyed /);
  });

  it("reports a refused operation with exit 1 and the VM's state", async () => {
    const vm = (await stack.vms.createVm({ name: "web-2", cpu: 1, memoryBytes: 1024n ** 3n, hostUuid: hostUuids[0]! })).vm!;
    // The create answered Created: a stop is accepted only once the start has ended.
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    await ok("vm", "stop", vm.uuid, "--wait");
    const res = await cli(["vm", "stop", vm.uuid]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe(`error: FAILED_PRECONDITION (VM_STATE_INVALID): cannot stop vm ${vm.uuid}: it is Stopped (stop needs Running)\n`);
  });

  it("reports an operation refused while another works on the VM as VM_BUSY, naming its state", async () => {
    const hold = stack.sim.hold(0, "vm/start");
    const vm = (await stack.vms.createVm({ name: "busy", cpu: 1, memoryBytes: 1024n ** 3n, hostUuid: hostUuids[0]! })).vm!;
    const held = await hold.next(10_000);
    const res = await cli(["vm", "stop", vm.uuid, "--wait"]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(new RegExp(`^error: FAILED_PRECONDITION \\(VM_BUSY\\): .*${vm.uuid}.*it is Starting`));
    held.release();
    await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    expect(await ok("vm", "destroy", vm.uuid, "--wait")).toMatch(/ Destroyed /);
  });

  it("reports a missing VM as NOT_FOUND with its reason", async () => {
    const missing = "00000000-0000-4000-8000-000000000000";
    const res = await cli(["vm", "get", missing]);
    expect(res).toEqual({ code: 1, stdout: "", stderr: `error: NOT_FOUND (VM_NOT_FOUND): vm ${missing} not found\n` });
  });

  it("prints every invalid field the server names, one per line", async () => {
    const res = await cli(["vm", "create", "--name", "tiny", "--cpu", "0", "--memory", "1MiB"]);
    expect(res.code).toBe(1);
    const lines = res.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines).toContain("error: INVALID_ARGUMENT: cpu: must be between 1 and 512");
    expect(lines.find((l) => l.startsWith("error: INVALID_ARGUMENT: memory_bytes: must be between "))).toBeDefined();
    expect((await stack.vms.listVms({ name: "tiny" })).vms).toHaveLength(0);
  });

  it("refuses to delete a host with VMs on it", async () => {
    // web-2 (stopped) is on hosts[0].
    const res = await cli(["host", "delete", hostUuids[0]!]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: FAILED_PRECONDITION \(HOST_HAS_VMS\): /);
    expect((await stack.hosts.getHost({ uuid: hostUuids[0]! })).host).toBeDefined();
  });
});

describe("vm create while the agent holds the start", () => {
  it("without --wait prints the VM Created at once, the agent's start still held", async () => {
    const hold = stack.sim.hold(0, "vm/start");
    const res = await cli(["vm", "create", "--name", "held-1", "--cpu", "1", "--memory", "1GiB", "--host", hostUuids[0]!]);
    // Answered although nothing releases the start until after it.
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^UUID\\s+NAME\\s+STATE\\s+CPU\\s+MEMORY\\s+HOST\n${UUID}\\s+held-1\\s+Created\\s+1\\s+1 GiB\\s+${hostUuids[0]!}\n$`));
    const uuid = res.stdout.split("\n")[1]!.split(/\s+/)[0]!;
    const held = await hold.next(10_000);
    expect((await stack.vms.getVm({ uuid })).vm!.state).toBe(VmState.STARTING);
    held.release();
    await untilVmState(stack.vms, uuid, VmState.RUNNING);
    expect(await ok("vm", "destroy", uuid, "--wait")).toMatch(/ Destroyed /);
  });

  it("with --wait shows Created, then Starting while held, and ends Running (exit 0) after the release", async () => {
    const hold = stack.sim.hold(0, "vm/start");
    const starting = printed(/\nStarting  /);
    let finished = false;
    const waiting = cli(["vm", "create", "--name", "held-2", "--cpu", "1", "--memory", "1GiB", "--host", hostUuids[0]!, "--wait"], { onStdout: starting.onStdout }).finally(() => (finished = true));
    const held = await hold.next(10_000);
    await starting.promise;
    // The agent has not answered: the VM cannot be Running, so the CLI must still be waiting.
    expect(finished).toBe(false);
    held.release();
    const res = await waiting;
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^Created  ${ELAPSED}\nStarting  ${ELAPSED}\nvm ${UUID} Running \\(waited ${ELAPSED}\\)\n$`));
    const uuid = new RegExp(`^vm (${UUID}) `).exec(outcome(res.stdout))![1]!;
    expect((await stack.vms.getVm({ uuid })).vm!.state).toBe(VmState.RUNNING);
    expect(await ok("vm", "destroy", uuid, "--wait")).toMatch(/ Destroyed /);
  });

  it("Ctrl-C stops the waiting (130), says the create goes on, and it does", async () => {
    const hold = stack.sim.hold(0, "vm/start");
    const ctrlC = new AbortController();
    const res = await cli(["vm", "create", "--name", "held-3", "--cpu", "1", "--memory", "1GiB", "--host", hostUuids[0]!, "--wait"], {
      signal: ctrlC.signal,
      onStdout: (text) => /\nStarting  /.test(text) && ctrlC.abort(),
    });
    expect(res.code).toBe(130);
    const line = new RegExp(`^stopped waiting; the create of vm (${UUID}) goes on \\(Starting\\): see where it is with 'stratumctl vm get \\1'$`).exec(outcome(res.stdout));
    expect(line).not.toBeNull();
    const uuid = line![1]!;
    (await hold.next(10_000)).release();
    await untilVmState(stack.vms, uuid, VmState.RUNNING);
    expect(await ok("vm", "destroy", uuid, "--wait")).toMatch(/ Destroyed /);
  });
});

describe("listing VMs", () => {
  it("filters, pages and follows pages with --all", async () => {
    for (const name of ["list-a", "list-b", "list-c"]) await ok("vm", "create", "--name", name, "--cpu", "1", "--memory", "512MiB", "--host", hostUuids[1]!, "--wait");

    const onHost = await ok("vm", "list", "--host", hostUuids[1]!, "--state", "running");
    expect(onHost.trimEnd().split("\n").slice(1).map((l) => l.split(/\s+/)[1])).toEqual(["list-a", "list-b", "list-c"]);
    expect(onHost).toMatch(/list-a\s+Running\s+1\s+512 MiB\s/);

    const firstPage = await cli(["vm", "list", "--host", hostUuids[1]!, "--page-size", "2"]);
    expect(firstPage.stdout.trimEnd().split("\n")).toHaveLength(3);
    expect(firstPage.stderr).toMatch(/^more VMs exist: add --all, or --page-token \S+ for the next page/);
    const token = /--page-token (\S+)/.exec(firstPage.stderr)![1]!;
    const secondPage = JSON.parse(await ok("vm", "list", "--host", hostUuids[1]!, "--page-size", "2", "--page-token", token, "--json"));
    expect(secondPage.vms.map((v: { name: string }) => v.name)).toEqual(["list-c"]);

    const all = JSON.parse(await ok("vm", "list", "--host", hostUuids[1]!, "--page-size", "2", "--all", "--json"));
    expect(all.vms.map((v: { name: string }) => v.name)).toEqual(["list-a", "list-b", "list-c"]);
    expect(all.nextPageToken).toBe("");

    expect(JSON.parse(await ok("vm", "list", "--name", "list-b", "--json")).vms).toHaveLength(1);
  });
});

describe("deleting a host", () => {
  it("deletes an empty host", async () => {
    // Destroyed, not just Destroying: only then is the host's capacity released.
    for (const vm of (await stack.vms.listVms({ hostUuid: hostUuids[1]! })).vms) await ok("vm", "destroy", vm.uuid, "--wait");
    expect(await ok("host", "delete", hostUuids[1]!)).toBe(`host ${hostUuids[1]!} deleted\n`);
    const res = await cli(["host", "get", hostUuids[1]!]);
    expect(res).toEqual({ code: 1, stdout: "", stderr: `error: NOT_FOUND (HOST_NOT_FOUND): host ${hostUuids[1]!} not found\n` });
  });
});

describe("usage errors and connectivity", () => {
  it("rejects an unknown flag with exit 2 before calling anything", async () => {
    const connect = vi.fn(createClient) as unknown as Connect;
    const res = await cli(["vm", "create", "--name", "never", "--cpu", "1", "--memory", "1GiB", "--colour", "red"], { connect });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: unknown flag --colour for 'vm create'\n/);
    expect(connect).not.toHaveBeenCalled();
    expect((await stack.vms.listVms({ name: "never" })).vms).toHaveLength(0);
  });

  it("says compute cannot be reached when nothing listens", async () => {
    const port = await getFreePort();
    const res = await cli(["vm", "create", "--name", "nowhere", "--cpu", "1", "--memory", "1GiB"], { endpoint: `127.0.0.1:${port}` });
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`error: cannot reach compute at 127.0.0.1:${port} (UNAVAILABLE)\n`);
  });

  it("uses the next replica address when the first one is down", async () => {
    const port = await getFreePort();
    const res = await cli(["vm", "list", "--name", "web-2", "--json"], { endpoint: `127.0.0.1:${port},${endpoint}` });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).vms).toHaveLength(1);
  });
});
