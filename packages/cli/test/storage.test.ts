/**
 * stratumctl against real storage replicas (real Postgres, NATS and gRPC): primary storage and
 * volumes as an operator drives them, sizes typed and read in binary units, and the server's
 * refusals as exit 1 with its message. (Backups need agents and longjob; their --wait is
 * covered against in-process servers in src/commands/job-follow.test.ts.)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GIB, startStorage, type StorageStack } from "../../../services/storage/test/harness";
import { run } from "../src/main";

const VM = "0b7c1c3e-5d2a-4b8e-9f01-2a3b4c5d6e7f";
let stack: StorageStack;
let endpoint: string;
const repoRoot = mkdtempSync(join(tmpdir(), "stratumctl-storage-it-"));

beforeAll(async () => {
  stack = await startStorage();
  // Both replicas, as the devstack lists them: the CLI dials them as one pick_first target.
  endpoint = stack.service.replicas.map((r) => r.address).join(",");
});
afterAll(() => stack?.stop());

async function cli(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await run(["--storage-endpoint", endpoint, ...argv], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {}, repoRoot });
  return { code, stdout, stderr };
}

async function json<T>(argv: string[]): Promise<T> {
  const res = await cli([...argv, "--json"]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as T;
}

describe("primary storage and volumes through stratumctl", () => {
  it("adds a storage, creates, resizes, attaches, detaches and deletes a volume, the capacity following", async () => {
    const ps = await json<{ uuid: string; totalCapacityBytes: string }>(["primary-storage", "add", "--name", "ceph-cli", "--capacity", "100GiB"]);
    expect(ps.totalCapacityBytes).toBe(String(100n * GIB));

    const created = await cli(["volume", "create", "--name", "data-1", "--size", "10GiB", "--storage", ps.uuid]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const uuid = /\n(\S+)\s+data-1\s+Data\s+10 GiB\s+Available\s+-\s+/.exec(created.stdout)?.[1];
    expect(uuid, created.stdout).toBeDefined();
    expect((await cli(["primary-storage", "get", ps.uuid])).stdout).toMatch(/\nUsed:\s+10 GiB\/100 GiB \(10%\)\n/);

    expect((await cli(["volume", "resize", uuid!, "--size", "20G"])).stdout).toMatch(/\s20 GiB\s+Available\s/);
    expect((await cli(["primary-storage", "list"])).stdout).toMatch(new RegExp(`\n${ps.uuid}\\s+ceph-cli\\s+shared\\s+20 GiB/100 GiB \\(20%\\)\n`));

    expect((await cli(["volume", "attach", uuid!, "--vm", VM])).stdout).toMatch(new RegExp(`\\sIn Use\\s+${VM}\\s`));
    expect((await cli(["volume", "list", "--vm", VM])).stdout).toMatch(new RegExp(`\n${uuid}\\s+data-1\\s`));
    const refused = await cli(["volume", "delete", uuid!]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: FAILED_PRECONDITION/);

    expect((await cli(["volume", "detach", uuid!])).stdout).toMatch(/\sAvailable\s/);
    expect((await cli(["primary-storage", "delete", ps.uuid])).code).toBe(1);
    expect((await cli(["volume", "delete", uuid!])).stdout).toMatch(/\sDeleted\s/);
    expect((await cli(["primary-storage", "get", ps.uuid])).stdout).toMatch(/\nUsed:\s+0 B\/100 GiB \(0%\)\n/);
  });

  it("the server's refusals are exit 1 naming the field; a size over the storage's free bytes changes nothing", async () => {
    const ps = await json<{ uuid: string }>(["primary-storage", "add", "--name", "small", "--capacity", "1GiB"]);
    const tiny = await cli(["volume", "create", "--name", "t", "--size", "1KiB", "--storage", ps.uuid]);
    expect(tiny.code).toBe(1);
    expect(tiny.stderr).toMatch(/^error: INVALID_ARGUMENT: size_bytes: /);
    const big = await cli(["volume", "create", "--name", "b", "--size", "2GiB", "--storage", ps.uuid]);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/^error: RESOURCE_EXHAUSTED/);
    expect((await cli(["volume", "list", "--storage", ps.uuid])).stderr).toBe("no volumes found\n");
  });
});
