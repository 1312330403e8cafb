/**
 * stratumctl against real broker replicas beside real network, compute, storage and longjob (real
 * Postgres, NATS and gRPC, simulated agents: services/broker/test/stack.ts), as a tenant with its
 * bearer token: the catalog, an instance provisioned with --wait (a VM with an address of the
 * private network), the identical create answered with the same instance, another tenant seeing
 * none of it, a binding's credentials, and the deprovision with --wait.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBrokerStack, TENANTS, type BrokerStack, type TenantName } from "../../../services/broker/test/stack";
import { run } from "../src/main";

let stack: BrokerStack;
let endpoint: string[];
const repoRoot = mkdtempSync(join(tmpdir(), "stratumctl-broker-it-"));

beforeAll(async () => {
  stack = await startBrokerStack();
  // Both replicas, as the devstack lists them: any replica routes an instance's calls to its owner.
  endpoint = ["--broker-endpoint", stack.broker.replicas.map((r) => r.address).join(",")];
}, 180_000);
afterAll(() => stack?.stop());

async function cli(argv: string[], tenant: TenantName | "nobody" = "acme") {
  let stdout = "";
  let stderr = "";
  const env = { STRATUM_BROKER_TOKEN: tenant === "nobody" ? "not-a-token-the-broker-knows" : TENANTS[tenant].token };
  const code = await run([...endpoint, ...argv], { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, repoRoot });
  return { code, stdout, stderr };
}

describe("the broker through stratumctl", () => {
  it("lists the catalog; refuses an unknown token naming where it came from", async () => {
    const listed = await cli(["broker", "catalog"]);
    expect(listed).toMatchObject({ code: 0, stderr: "" });
    expect(listed.stdout).toMatch(/\nvm\s+vm-small\s+small\s+1\s+1 GiB\s+10 GiB\s+yes\s/);
    const refused = await cli(["broker", "catalog"], "nobody");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe("error: UNAUTHENTICATED: the bearer token is not one the broker knows\nthe token is from $STRATUM_BROKER_TOKEN; pass another with --token or $STRATUM_BROKER_TOKEN\n");
  });

  it("provisions with --wait, answers the identical create with the same instance, keeps it from other tenants, binds, and deprovisions with --wait", async () => {
    const created = await cli(["broker", "instance", "create", "cli-web", "--plan", "small", "--wait"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const ready = /^instance cli-web Ready \(waited \d+:\d\d\): vm (\S+), address (10\.0\.\d+\.\d+)$/m.exec(created.stdout);
    expect(ready, created.stdout).not.toBeNull();
    const [, vmUuid, address] = ready!;

    const instance = JSON.parse((await cli(["broker", "instance", "get", "cli-web", "--json"])).stdout) as { state: string; vmUuid: string; operation: string };
    expect(instance).toMatchObject({ state: "INSTANCE_STATE_READY", vmUuid });
    const again = await cli(["broker", "instance", "create", "cli-web", "--plan", "vm-small"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`\ncli-web\\s+Ready\\s+vm-small\\s+\\S+\\s+${vmUuid}\\s+${instance.operation}\n$`));
    expect(again.stderr).toBe(`instance cli-web already existed with this plan and these parameters: nothing new was provisioned (operation ${instance.operation})\n`);
    const otherPlan = await cli(["broker", "instance", "create", "cli-web", "--plan", "medium"]);
    expect(otherPlan.code).toBe(1);
    expect(otherPlan.stderr).toMatch(/^error: ALREADY_EXISTS/);

    expect((await cli(["broker", "instance", "list", "--state", "ready"])).stdout).toMatch(new RegExp(`\ncli-web\\s+Ready\\s+vm-small\\s+${address!.replaceAll(".", "\\.")}\\s+${vmUuid}\\s`));
    const foreign = await cli(["broker", "instance", "get", "cli-web"], "globex");
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/^error: NOT_FOUND/);
    expect(await cli(["broker", "instance", "list"], "globex")).toMatchObject({ code: 0, stdout: "", stderr: "no instances found\n" });

    const bound = await cli(["broker", "instance", "bind", "cli-web", "app-1", "--username", "app"]);
    expect(bound.code).toBe(0);
    expect(bound.stdout).toMatch(new RegExp(`\nAddress:\\s+${address!.replaceAll(".", "\\.")}\nPort:\\s+22\nUsername:\\s+app\nPassword:\\s+\\S{8,}\nURI:\\s+ssh://app@`));
    expect((await cli(["broker", "instance", "unbind", "cli-web", "app-1"])).stdout).toBe("binding app-1 of instance cli-web revoked\n");

    const deleted = await cli(["broker", "instance", "delete", "cli-web", "--wait"]);
    expect(deleted.stderr).toBe("");
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/^instance cli-web Deleted \(waited \d+:\d\d\)$/m);
    expect((await cli(["broker", "instance", "get", "cli-web"])).stdout).toMatch(/\nState:\s+Deleted\n/);
  });
});
