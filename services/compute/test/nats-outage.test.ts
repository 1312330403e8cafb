import { EventBus, connectBus } from "@stratum/bus";
import { startNats, type NatsServer } from "@stratum/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { VmState, type VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { Client } from "@stratum/rpc";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

/**
 * A NATS outage of 10 s (kill -9 of the nats-server, started again on the same port and store
 * 10 s later) under a create/stop/start/destroy load through both replicas: no call fails — the
 * owners stay certain (membership keeps its ring while it hears nobody; the Postgres lease is the
 * fencing authority) — and every state change of the window reaches JetStream once NATS is back,
 * each exactly once (the outbox, `Nats-Msg-Id`).
 */
const OUTAGE_MS = 10_000;

let nats: NatsServer;
let stack: ComputeStack;
beforeAll(async () => {
  nats = await startNats();
  stack = await startComputeStack({ replicas: 2, hosts: 2, natsUrl: nats.url });
  await stack.addSimHosts(32, 64n);
});
afterAll(async () => {
  await stack?.stop();
  await nats?.stop();
});

/**
 * Waits for an accepted operation's outcome by reading the VM: while NATS is away no event can
 * tell anyone (a WatchVm would fall back to its resync read every 2 s), and what is under test
 * here is that the operations go on, not how they are watched.
 */
async function readUntil(vms: Client<typeof VmService>, uuid: string, state: VmState): Promise<void> {
  await until(async () => (await vms.getVm({ uuid })).vm!.state === state, `vm ${uuid} ${VmState[state]}`, 20_000);
}

const LIFECYCLE = ["Created", "Starting", "Running", "Stopping", "Stopped", "Starting", "Running", "Destroying", "Destroyed"];

it("mutations go on through a 10 s NATS outage and every event of the window is delivered once it is back", async () => {
  const clients = [stack.clientsTo(0), stack.clientsTo(1)];
  const down = nats.restart({ hard: true, downMs: OUTAGE_MS });
  await until(() => stack.replicas.every((r) => r.ctx.bus.nc.isClosed() || r.ctx.view.silent), "every replica to be cut off from NATS", 10_000);

  const vms: string[] = [];
  const failures: unknown[] = [];
  let back = false;
  void down.then(() => (back = true));
  // A bounded load while NATS is away: lifecycles on both replicas, one after the other per client.
  await Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; !back && n < 500; n++) {
        try {
          const { vm } = await c.vms.createVm({ name: `outage-${i}-${n}`, cpu: 1, memoryBytes: GIB });
          vms.push(vm!.uuid);
          await readUntil(c.vms, vm!.uuid, VmState.RUNNING);
          await c.vms.stopVm({ uuid: vm!.uuid });
          await readUntil(c.vms, vm!.uuid, VmState.STOPPED);
          await c.vms.startVm({ uuid: vm!.uuid });
          await readUntil(c.vms, vm!.uuid, VmState.RUNNING);
          await c.vms.destroyVm({ uuid: vm!.uuid });
          await readUntil(c.vms, vm!.uuid, VmState.DESTROYED);
        } catch (e) {
          failures.push(e);
        }
      }
    }),
  );
  expect(failures).toEqual([]);
  expect(vms.length).toBeGreaterThan(10);
  console.log(`nats outage: ${vms.length} VM lifecycles during the outage, 0 failed`);
  await down;

  // A subscriber from the start of the stream, after the outage: every change of the window, once.
  const bus = await connectBus({ servers: nats.url, prefix: stack.replicas[0]!.ctx.config.busPrefix, name: "outage-observer" });
  const events = await EventBus.open(bus);
  const seen = new Map<string, string[]>(vms.map((uuid) => [uuid, []]));
  const sub = await events.subscribe<{ vmUuid: string; to: string }>("compute.vm_state_changed.>", (e) => void seen.get(e.data.vmUuid)?.push(e.data.to), { from: "all" });
  try {
    await until(() => [...seen.values()].every((tos) => tos.length >= LIFECYCLE.length), "every event of the outage to be delivered", 30_000);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive right behind
    for (const [uuid, tos] of seen) expect({ uuid, tos }).toEqual({ uuid, tos: LIFECYCLE });
  } finally {
    await sub.stop();
    await bus.close();
  }
});
