/**
 * `pnpm bench:eip`: elastic-IP attach/detach throughput against a fresh devstack (zero agent
 * latency). M running VMs are created on the default private network and M EIPs on the public
 * one; each of C workers owns the pairs (VM i, EIP i) with i ≡ worker (mod C), so no two
 * operations touch the same EIP or NIC. One operation: AttachEip to the VM's first NIC, poll
 * GetEip until ACTIVE (there is no watch), DetachEip, poll until DETACHED. An RPC failure, an EIP
 * in ERROR (or DOWN: the VM runs) or a wait past its bound is an error. In the same run, the
 * ceiling: no-op gRPC unary calls (grpc.health.v1 Check) against a network replica, C clients.
 * Last line: `eip attach: X/s = Y% of ceiling`.
 *
 * Options: --vms M (200) --ops N (4000) --concurrency C (50). M operations are run first as a
 * warm-up and not counted. attach→ACTIVE latency includes up to one poll interval (POLL_MS).
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { Health } from "@stratum/proto/grpc/health/v1/health_pb";
import { VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipService, EipStatus, type Eip } from "@stratum/proto/stratum/network/v1/eip_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { untilVmState } from "../../services/compute/test/watch";
import { startDevstack, type Endpoints } from "../support/devstack";
import { describeError, drive, positive } from "./latencies";

const { values } = parseArgs({
  options: {
    vms: { type: "string", default: "200" },
    ops: { type: "string", default: "4000" },
    concurrency: { type: "string", default: "50" },
  },
  strict: true,
});
const M = positive("vms", values.vms);
const N = positive("ops", values.ops);
const C = positive("concurrency", values.concurrency);
if (C > M) {
  console.error(`--concurrency (${C}) must not exceed --vms (${M}): each worker needs at least one VM/EIP pair of its own`);
  process.exit(2);
}
/** Between GetEip polls: short, so the latency is the service's, not the poll's; not zero, so C pollers do not saturate the replicas by themselves. */
const POLL_MS = 5;
/** How long one EIP may take to reach the status waited for before it counts as an error. */
const WAIT_MS = 30_000;
const VM_SPEC = { cpu: 1, memoryBytes: 256n * 1024n * 1024n };
/**
 * Workers creating the VMs and EIPs, which are not measured. Kept below C: with 50 concurrent
 * creates the network service answered some with NO_FREE_IP on a near-empty /16 (its allocators
 * racing for the same candidates past their retry rounds), which is not what this bench measures.
 */
const SETUP_CONCURRENCY = Math.min(C, 8);

/** Each of the C clients gets its own HTTP/2 connection, as C separate programs would. */
function ownChannel<T extends Parameters<typeof createClient>[0]>(service: T, address: string) {
  return createClient(service, address, { channelOptions: { "grpc.use_local_subchannel_pool": 1 }, retry: false });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls GetEip until it is in `want`; throws on ERROR, on any other settled status, or after WAIT_MS. */
async function untilEipStatus(client: Client<typeof EipService>, uuid: string, want: EipStatus): Promise<Eip> {
  const deadline = performance.now() + WAIT_MS;
  for (;;) {
    const eip = (await client.getEip({ uuid })).eip!;
    if (eip.status === want) return eip;
    if (eip.status === EipStatus.ERROR) throw new Error(`eip ${uuid} went ERROR waiting for ${EipStatus[want]}: ${eip.statusReason}`);
    // DOWN means the VM is not running: it would never become ACTIVE, and it is not the case measured.
    if (eip.status === EipStatus.DOWN) throw new Error(`eip ${uuid} is DOWN (its VM ${eip.vmUuid} does not run) waiting for ${EipStatus[want]}`);
    if (performance.now() > deadline) throw new Error(`eip ${uuid} was ${EipStatus[eip.status]} after ${WAIT_MS} ms, not ${EipStatus[want]}`);
    await sleep(POLL_MS);
  }
}

/** Attach→ACTIVE and detach→DETACHED latencies of one phase, and its errors. */
interface CycleFigures {
  seconds: number;
  attachMs: number[];
  detachMs: number[];
  errors: number;
  firstError: unknown;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  // 4 hosts big enough for every VM: what is measured is the EIP path, not placement.
  console.log(`starting a fresh devstack: 4 simulated hosts, zero agent latency…`);
  const stack = await startDevstack(["--hosts", "4", "--host-cpu", "100000", "--host-memory", "100000", "--agent-latency", "0"]);
  const endpoints: Endpoints = stack.endpoints;
  const networkAddresses = endpoints.network ?? [];
  const { privateL3Network, publicL3Network } = endpoints;
  if (!networkAddresses.length || !privateL3Network || !publicL3Network) {
    await stack.stop();
    throw new Error(`the devstack started no network service or default networks (endpoints: ${Object.keys(endpoints).join(", ")})`);
  }
  const vmClients = Array.from({ length: C }, (_, i) => ownChannel(VmService, endpoints.compute[i % endpoints.compute.length]!));
  const eipClients = Array.from({ length: C }, (_, i) => ownChannel(EipService, networkAddresses[i % networkAddresses.length]!));
  const health = Array.from({ length: C }, () => ownChannel(Health, networkAddresses[0]!));
  try {
    // The pairs: VM i (Running, one NIC on the private network) and EIP i (DETACHED, public).
    const nics: string[] = new Array(M);
    const eipUuids: string[] = new Array(M);
    const setup = await drive(M, SETUP_CONCURRENCY, async (w, i) => {
      const { vm } = await vmClients[w]!.createVm({ name: `eip-bench-${i}`, ...VM_SPEC, l3NetworkUuids: [privateL3Network] }).catch((e: unknown) => {
        throw new Error(`CreateVm on the private network: ${describeError(e)}`);
      });
      const running = await untilVmState(vmClients[w]!, vm!.uuid, VmState.RUNNING, 60_000);
      const nic = running.nics[0];
      if (!nic) throw new Error(`vm ${running.uuid} is Running with no NIC though it was created on ${privateL3Network}`);
      nics[i] = nic.uuid;
      eipUuids[i] = (
        await eipClients[w]!.createEip({ name: `eip-bench-${i}`, l3NetworkUuid: publicL3Network }).catch((e: unknown) => {
          throw new Error(`CreateEip on the public network: ${describeError(e)}`);
        })
      ).eip!.uuid;
    });
    if (setup.errors) throw new Error(`setting up ${M} VMs and EIPs: ${setup.errors} failed, first: ${describeError(setup.firstError)}`);

    /** `total` attach/detach cycles, C workers, each cycling through its own pairs. */
    const cycles = async (total: number): Promise<CycleFigures> => {
      const figures: CycleFigures = { seconds: 0, attachMs: [], detachMs: [], errors: 0, firstError: undefined };
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: C }, async (_, w) => {
          const client = eipClients[w]!;
          const own = Array.from({ length: Math.ceil((M - w) / C) }, (_, k) => w + k * C);
          for (let turn = 0; next < total; turn++) {
            next++;
            const pair = own[turn % own.length]!;
            const uuid = eipUuids[pair]!;
            try {
              const t0 = performance.now();
              await client.attachEip({ uuid, vmNicUuid: nics[pair]! });
              await untilEipStatus(client, uuid, EipStatus.ACTIVE);
              const t1 = performance.now();
              figures.attachMs.push(t1 - t0);
              await client.detachEip({ uuid });
              await untilEipStatus(client, uuid, EipStatus.DETACHED);
              figures.detachMs.push(performance.now() - t1);
            } catch (e) {
              figures.errors++;
              figures.firstError ??= e;
              // Leave the pair detached for its next turn, if it can be; a failure here is already counted.
              await client.detachEip({ uuid }).then(() => untilEipStatus(client, uuid, EipStatus.DETACHED)).catch(() => {});
            }
          }
        }),
      );
      figures.seconds = (performance.now() - started) / 1000;
      figures.attachMs.sort((a, b) => a - b);
      figures.detachMs.sort((a, b) => a - b);
      return figures;
    };

    // Warm-up, not counted: connections, prepared statements, the JIT of every process.
    const warm = await cycles(M);
    const run = await cycles(N);
    const ceiling = await drive(Math.max(N * 5, 20_000), C, async (w) => void (await health[w]!.check({ service: "" })));

    const attachRate = run.attachMs.length / run.seconds;
    const detachRate = run.detachMs.length / run.seconds;
    const row = (name: string, perSecond: number, sorted: number[], errors: number) =>
      console.log(`${name.padEnd(34)} ${perSecond.toFixed(0).padStart(8)}/s   p50 ${pct(sorted, 50).toFixed(1).padStart(6)} ms   p99 ${pct(sorted, 99).toFixed(1).padStart(7)} ms   errors ${errors}`);
    console.log(`\nM=${M} VMs/EIPs N=${N} attach/detach cycles C=${C} network replicas=${networkAddresses.length}, after ${M} warm-up cycles (${warm.errors} errors) (${availableParallelism()} cores, everything on one machine; GetEip polled every ${POLL_MS} ms)`);
    row("eip attach (→ ACTIVE, polled)", attachRate, run.attachMs, run.errors);
    row("eip detach (→ DETACHED, polled)", detachRate, run.detachMs, run.errors);
    row("ceiling: no-op gRPC unary", ceiling.perSecond, ceiling.sorted, ceiling.errors);
    if (run.firstError) console.log(`first eip error: ${describeError(run.firstError)}`);
    console.log(`eip attach: ${attachRate.toFixed(0)}/s = ${((100 * attachRate) / ceiling.perSecond).toFixed(1)}% of ceiling`);
  } finally {
    for (const c of [...vmClients, ...eipClients, ...health]) closeClient(c);
    await stack.stop();
  }
}

await main();
