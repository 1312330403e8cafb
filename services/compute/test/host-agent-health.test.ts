import { afterAll, beforeAll, expect, it } from "vitest";
import { HostState, HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { settle } from "./watch";

/**
 * The pinger against agents that hang. The agent client keeps its default deadlines
 * (`host/ping` 5 s, `host/connect` 30 s), far above the ping interval, so every outcome below
 * that names the interval as a deadline, or happens while a handshake is still stuck on the
 * agent, comes from the pinger bounding its own calls by one interval.
 */
const INTERVAL_MS = 200;
/** Bounds the operator calls: far below the 30 s a stuck handshake would hold the host's queue. */
const CALL_TIMEOUT_MS = 10_000;

let stack: ComputeStack;
let hostUuids: string[];

beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2, compute: { pingIntervalMs: INTERVAL_MS } });
  hostUuids = await stack.addSimHosts(8, 8n);
});
afterAll(() => stack?.stop());

const host = async (uuid: string) => (await stack.hosts.getHost({ uuid })).host!;
const received = (i: number, command: string) => stack.sim.hosts[i]!.inspect().commands[command]?.received ?? 0;

it("a host whose agent hangs is Disconnected after one hung ping, and reconnected by the next round once it answers though a handshake is still stuck", async () => {
  const sim = stack.sim.hosts[0]!;
  const uuid = hostUuids[0]!;
  const vm = await settle(stack.vms, stack.vms.createVm({ name: "gone-while-hung", cpu: 1, memoryBytes: 1n << 30n, hostUuid: uuid }), VmState.RUNNING);
  const pingsBefore = received(0, "host/ping");

  const hung = sim.injectFault({ command: "*", kind: "hang" });
  await until(async () => (await host(uuid)).status === HostStatus.DISCONNECTED, "host to be marked Disconnected");
  const pingsToDisconnect = received(0, "host/ping") - pingsBefore;
  // One hung ping is enough, and it gave up at one interval, not at host/ping's 5 s policy.
  expect(pingsToDisconnect).toBe(1);
  expect((await host(uuid)).lastError).toContain(`host/ping: no answer within ${INTERVAL_MS} ms`);
  // The pinger's handshakes hang too, each giving up at one interval (host/connect's is 30 s).
  await until(async () => (await host(uuid)).lastError.includes(`host/connect: no answer within ${INTERVAL_MS} ms`), "a pinger handshake to time out at one interval");

  // Catch one of the pinger's handshakes on the agent, then let the agent recover under it: that
  // handshake never answers, and the host must not wait for it.
  const hold = sim.hold("host/connect");
  const stuck = await hold.next(CALL_TIMEOUT_MS);
  sim.state.vms.delete(vm.uuid); // the hypervisor lost the VM meanwhile
  hung.clear();
  const handshakesAtRecovery = sim.inspect().connection!.count;
  const connectsAtRecovery = received(0, "host/connect");

  await until(async () => (await host(uuid)).status === HostStatus.CONNECTED, "host to reconnect");
  expect((await host(uuid)).lastError).toBe("");
  // Reconnected by the very next handshake, a new one: the stuck one is still held on the agent.
  expect(sim.inspect().connection!.count).toBe(handshakesAtRecovery + 1);
  expect(received(0, "host/connect") - connectsAtRecovery).toBe(1);
  // …and the reconnect ran the VM state sync.
  await until(async () => (await stack.vms.getVm({ uuid: vm.uuid })).vm!.state === VmState.STOPPED, "the lost VM to be synced Stopped");
  expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!.lastError).toContain("found missing");

  stuck.release();
  await stack.vms.destroyVm({ uuid: vm.uuid });
  console.log(`hung agent: Disconnected after ${pingsToDisconnect} ping(s); reconnected by ${received(0, "host/connect") - connectsAtRecovery} handshake(s) after recovery`);
});

it("a handshake stuck on the agent does not hold the host's queue: operator calls and the next rounds go on", async () => {
  const sim = stack.sim.hosts[1]!;
  const uuid = hostUuids[1]!;
  const hung = sim.injectFault({ command: "*", kind: "hang" });
  await until(async () => (await host(uuid)).status === HostStatus.DISCONNECTED, "host to be marked Disconnected");

  // A pinger handshake is now running under host-<uuid>, stuck on the agent until released.
  const hold = sim.hold("host/connect");
  const stuck = await hold.next(CALL_TIMEOUT_MS);
  const connectsWhileStuck = received(1, "host/connect");

  // An operator call queued behind it completes…
  const disabled = await stack.hosts.changeHostState({ uuid, state: HostState.DISABLED }, { timeoutMs: CALL_TIMEOUT_MS });
  expect(disabled.host!.state).toBe(HostState.DISABLED);
  // …and so do the next rounds: another handshake reaches the agent while the first is still held.
  await until(() => received(1, "host/connect") > connectsWhileStuck, "the next round's handshake");
  expect((await host(uuid)).status).toBe(HostStatus.DISCONNECTED);

  // The agent recovers; an explicit reconnect waits at most for the stuck handshake's one-interval
  // deadline, then succeeds.
  const stuckAgain = await sim.hold("host/connect").next(CALL_TIMEOUT_MS);
  hung.clear();
  const reconnected = await stack.hosts.reconnectHost({ uuid }, { timeoutMs: CALL_TIMEOUT_MS });
  expect(reconnected.host).toMatchObject({ status: HostStatus.CONNECTED, lastError: "" });

  stuck.release();
  stuckAgain.release();
  await stack.hosts.changeHostState({ uuid, state: HostState.ENABLED });
});
