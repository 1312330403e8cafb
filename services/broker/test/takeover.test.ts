import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerService, InstanceState } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { bearerToken, closeClient, createClient } from "@stratum/rpc";
import { exitOf, kill9, outputOf, startChildReplica } from "@stratum/runtime/testing";
import { SERVICE_ID, SMALL, startBrokerStack, TENANTS, type BrokerStack } from "./stack";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

/**
 * A broker replica dies mid-provision: the provision is resumed by the new owner or submitted by
 * the sweep, never left "in progress" for ever, and never makes a second VM.
 */
describe("broker replica death mid-provision", () => {
  let s: BrokerStack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    s = await startBrokerStack({ brokerReplicas: 1 });
  }, 180_000);
  afterAll(async () => {
    for (const c of children) await kill9(c);
    await s?.stop();
  });

  const child = async (replicaId: string, env: Record<string, string> = {}) => {
    const { child: c, address } = await startChildReplica({
      main: MAIN,
      like: s.broker.replicas[0]!.ctx.config,
      replicaId,
      env: { STRATUM_BROKER_AUTH_FILE: s.authFile, STRATUM_BROKER_NETWORK: "private", STRATUM_BROKER_PUBLIC_NETWORK: "public", STRATUM_BROKER_SWEEP_INTERVAL_MS: "200", ...env },
    });
    children.push(c);
    await s.broker.replicas[0]!.ctx.view.until((v) => v.members("broker").some((m) => m.replicaId === replicaId), 30_000);
    return { c, client: createClient(BrokerService, address, { interceptors: [bearerToken(TENANTS.acme.token)], retry: false }) };
  };
  const vmsNamed = async (name: string) => (await s.sql`SELECT uuid FROM compute.vms WHERE name = ${name} AND state <> 'Destroyed'`).length;

  it("killed between recording the instance and submitting its job: the sweep submits it, and the identical repeat gets the same instance", async () => {
    const { c, client } = await child("broker-crash", { STRATUM_CRASH_POINT: "broker:provision-recorded" });
    await expect(client.provisionInstance({ instanceId: "crash-1", serviceId: SERVICE_ID, planId: SMALL })).rejects.toThrow();
    closeClient(client);
    expect(await exitOf(c)).toBe("SIGKILL");
    const [row] = await s.sql`SELECT uuid, operation_submitted FROM broker.instances WHERE instance_id = 'crash-1'`;
    expect(row).toBeDefined();
    const ready = await s.untilInstance("acme", "crash-1", (i) => i.state === InstanceState.READY, "Ready");
    expect(ready.uuid).toBe(row!.uuid);
    const again = await s.client("acme").provisionInstance({ instanceId: "crash-1", serviceId: SERVICE_ID, planId: SMALL });
    expect(again.created).toBe(false);
    expect(again.instance!.uuid).toBe(row!.uuid);
    expect(await vmsNamed("svc-crash-1")).toBe(1);
  }, 120_000);

  it("its executor killed while the VM starts (held at the agent): the job resumes on the new owner, the instance ends Ready with one VM", async () => {
    const { c, client } = await child("broker-victim");
    closeClient(client);
    const jobs = createClient(LongJobService, s.net.base.longjob.replicas[0]!.address);
    const holds = s.net.base.sim.hosts.map((h) => h.hold("vm/start", { times: 1_000 }));
    const provisioned: string[] = [];
    let victim: string | undefined;
    try {
      // The job runs on the owner of the instance's (random) UUID: provision until one lands on the child.
      for (let i = 0; i < 40 && !victim; i++) {
        const id = `victim-${i}`;
        const { instance } = await s.client("acme").provisionInstance({ instanceId: id, serviceId: SERVICE_ID, planId: SMALL });
        provisioned.push(id);
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
          const { job } = await jobs.getJob({ uuid: instance!.operation });
          if (job!.executor !== "") {
            if (job!.executor.startsWith("broker-victim")) victim = id;
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      expect(victim).toBeDefined();
      // Parked at the agent (vm/start held) or on its way there: either way mid-provision.
      await kill9(c);
      if (process.env.DEBUG_BROKER_TAKEOVER) console.log(outputOf(c).slice(-40).join("\n"));
    } finally {
      for (const h of holds) h.cancel();
      closeClient(jobs);
    }
    for (const id of provisioned) {
      const ready = await s.untilInstance("acme", id, (i) => i.state === InstanceState.READY || i.state === InstanceState.FAILED, "an end", 90_000);
      expect(ready.state, `${id}: ${ready.error?.message ?? ""}`).toBe(InstanceState.READY);
      const { vm } = await s.net.vms.getVm({ uuid: ready.vmUuid });
      expect(vm!.state).toBe(VmState.RUNNING);
      expect(await vmsNamed(`svc-${id}`)).toBe(1);
    }
  }, 180_000);
});
