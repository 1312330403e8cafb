import { VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, StratumError } from "@stratum/rpc";
import { startService } from "@stratum/runtime";
import { getFreePort } from "@stratum/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { computeModule } from "../src/module";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { settle } from "./watch";

/**
 * A rolling restart under load: each replica in turn is stopped gracefully (as on SIGTERM: off the
 * ring, its running operations finish, then it leaves) and started again on its address, while
 * clients run VM lifecycles through both replicas with the Stratum client's retries. No client
 * call fails and every VM ends where its last operation took it.
 */
let stack: ComputeStack;
let ports: number[];
beforeAll(async () => {
  ports = [await getFreePort(), await getFreePort()];
  stack = await startComputeStack({ replicas: 2, hosts: 2, config: (i) => ({ port: ports[i]! }) });
  await stack.addSimHosts(32, 64n);
});
afterAll(() => stack?.stop());

it("restarting every replica one at a time under load fails no call and leaves every operation terminal", async () => {
  const target = `ipv4:${ports.map((p) => `127.0.0.1:${p}`).join(",")}`;
  const roundRobin = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };
  const clients = Array.from({ length: 4 }, () =>
    createClient(VmService, target, { retry: { mutating: true, maxAttempts: 30, initialBackoffMs: 50, maxBackoffMs: 500 }, defaultTimeoutMs: 60_000, channelOptions: roundRobin }),
  );
  const failures: string[] = [];
  const destroyed: string[] = [];
  let stop = false;
  const load = clients.map(async (c, w) => {
    for (let n = 0; !stop; n++) {
      try {
        // Each call answers once accepted; its outcome comes through WatchVm.
        const vm = await settle(c, c.createVm({ name: `rolling-${w}-${n}`, cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
        await settle(c, c.stopVm({ uuid: vm.uuid }), VmState.STOPPED);
        await settle(c, c.startVm({ uuid: vm.uuid }), VmState.RUNNING);
        await settle(c, c.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
        destroyed.push(vm.uuid);
      } catch (e) {
        const err = StratumError.from(e);
        failures.push(`${err.reason || err.code}: ${err.message}`);
      }
    }
  });

  // Each restart lands in the middle of the load: some lifecycles done before, more after.
  const moreDone = (n: number) => until(() => destroyed.length >= n, `${n} lifecycles`, 30_000);
  for (const i of [0, 1]) {
    await moreDone(destroyed.length + 5);
    const old = stack.replicas[i]!;
    const config = old.ctx.config;
    await old.stop();
    const again = await startService(computeModule(), config, { settings: old.ctx.settings as never });
    stack.replicas[i] = again;
    await again.ctx.view.until((v) => v.members("compute").length === 2);
  }
  await moreDone(destroyed.length + 5);
  stop = true;
  await Promise.all(load);
  for (const c of clients) closeClient(c);

  expect(failures).toEqual([]);
  expect(destroyed.length).toBeGreaterThan(10);
  const { sql } = stack.replicas[0]!.ctx.db;
  const left = await sql`SELECT uuid, state::text AS state FROM compute.vms WHERE state <> 'Destroyed'`;
  expect(left).toEqual([]);
  for (const uuid of destroyed.slice(0, 5)) expect((await stack.vms.getVm({ uuid })).vm!.state).toBe(VmState.DESTROYED);
});
