/**
 * `pnpm bench:broker`: idempotent provisioning through the broker's Open Service Broker API, on a
 * fresh devstack (zero agent latency). K distinct instance ids (GUIDs, as a platform makes them);
 * each is PUT D times at once (`accepts_incomplete=true`, plan vm-small), the duplicates spread
 * over the broker replicas, as a platform retrying through a load balancer would. Every PUT must
 * be answered 202 with an operation, and the D answers of one id must name exactly one operation.
 * Then each instance's last_operation is polled until it is terminal, honouring Retry-After but
 * never waiting more than POLL_CAP_MS between polls, so the figure is the broker's and not the
 * poll's. Afterwards the tenant's instances are listed over gRPC (BrokerService.ListInstances with
 * the devstack's dev token) and compute's VMs counted: each id must have exactly one instance,
 * Ready, with its own VM.
 *
 * Figures: PUT answer latency, first PUT → terminal per instance, and provisions/s = K / seconds
 * from the first PUT to the last instance terminal. Last line:
 * `broker: X provisions/s, instances K/K, duplicates 0`; the exit code is 1 when an instance is
 * missing, failed or duplicated, or a PUT was refused.
 *
 * Options: --instances K (100) --duplicates D (10) --concurrency C (K: instance ids in flight at
 * once) --replicas R (2, the devstack's count for every service) --hosts H (4).
 */
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { BrokerService, InstanceState, type Instance } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { bearerToken, closeClient, createClient } from "@stratum/rpc";
import { startDevstack, type Endpoints } from "../support/devstack";
import { describeError, positive } from "./latencies";

const { values } = parseArgs({
  options: {
    instances: { type: "string", default: "100" },
    duplicates: { type: "string", default: "10" },
    concurrency: { type: "string" },
    replicas: { type: "string", default: "2" },
    hosts: { type: "string", default: "4" },
  },
  strict: true,
});
const K = positive("instances", values.instances);
const D = positive("duplicates", values.duplicates);
const C = values.concurrency === undefined ? K : positive("concurrency", values.concurrency);
const REPLICAS = positive("replicas", values.replicas);
const HOSTS = positive("hosts", values.hosts);

/** The catalog's vm service and its smallest plan (1 CPU, 1 GiB): services/broker/catalog.json. */
const SERVICE_ID = "a3c7e0d2-5b1f-4c7e-9a10-6f2b8d4e1c01";
const PLAN_ID = "vm-small";
/** The longest the bench waits between last_operation polls, whatever Retry-After says. */
const POLL_CAP_MS = 100;
/** How long one instance may take to reach a terminal state before it counts as failed. */
const TERMINAL_WAIT_MS = 300_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** What happened to one instance id. */
interface Outcome {
  /** Each PUT's status, and its latency. */
  statuses: number[];
  putMs: number[];
  /** The distinct operations the 202s named. */
  operations: Set<string>;
  /** The last_operation state it ended in (`succeeded`, `failed`), or why it has none. */
  final: string;
  /** First PUT sent → terminal last_operation seen. */
  terminalMs: number;
  /** When it was seen terminal (performance.now()). */
  terminalAt: number;
  polls: number;
  error?: string;
}

interface Osb {
  base: string;
  headers: Record<string, string>;
}

async function provisionOne(osb: readonly Osb[], instanceId: string, firstPutAt: { t?: number }): Promise<Outcome> {
  const o: Outcome = { statuses: [], putMs: [], operations: new Set(), final: "", terminalMs: NaN, terminalAt: NaN, polls: 0 };
  const body = JSON.stringify({ service_id: SERVICE_ID, plan_id: PLAN_ID, organization_guid: "bench-org", space_guid: "bench-space", parameters: {} });
  const t0 = performance.now();
  firstPutAt.t ??= t0;
  // All D requests leave in the same turn, each to the next replica: they race for the key.
  await Promise.all(
    Array.from({ length: D }, async (_, j) => {
      const { base, headers } = osb[j % osb.length]!;
      const s = performance.now();
      try {
        const res = await fetch(`${base}/v2/service_instances/${instanceId}?accepts_incomplete=true`, { method: "PUT", headers, body });
        const json = (await res.json()) as { operation?: string; description?: string };
        o.statuses.push(res.status);
        o.putMs.push(performance.now() - s);
        if (res.status === 202 && typeof json.operation === "string") o.operations.add(json.operation);
        else o.error ??= `PUT answered ${res.status} ${JSON.stringify(json)}`;
      } catch (e) {
        o.statuses.push(0);
        o.error ??= `PUT failed: ${describeError(e)}`;
      }
    }),
  );
  const [operation] = o.operations;
  if (o.operations.size !== 1 || operation === undefined) {
    o.final = "no single operation";
    o.error ??= `the ${D} PUTs named ${o.operations.size} operations`;
    return o;
  }
  const { base, headers } = osb[0]!;
  const deadline = t0 + TERMINAL_WAIT_MS;
  for (;;) {
    o.polls++;
    const res = await fetch(`${base}/v2/service_instances/${instanceId}/last_operation?operation=${encodeURIComponent(operation)}&service_id=${SERVICE_ID}&plan_id=${PLAN_ID}`, { headers });
    const json = (await res.json()) as { state?: string; description?: string };
    if (res.status !== 200) {
      o.final = `last_operation ${res.status}`;
      o.error ??= `last_operation answered ${res.status} ${JSON.stringify(json)}`;
      return o;
    }
    if (json.state === "succeeded" || json.state === "failed") {
      o.terminalAt = performance.now();
      o.terminalMs = o.terminalAt - t0;
      o.final = json.state;
      if (json.state === "failed") o.error ??= `provision failed: ${json.description ?? ""}`;
      return o;
    }
    if (performance.now() > deadline) {
      o.final = "timeout";
      o.error ??= `still ${json.state} after ${TERMINAL_WAIT_MS} ms: ${json.description ?? ""}`;
      return o;
    }
    const retryAfter = Number(res.headers.get("retry-after"));
    await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, POLL_CAP_MS) : POLL_CAP_MS);
  }
}

/** Runs `items` with at most `limit` in flight, in order of start. */
async function bounded<T, R>(items: readonly T[], limit: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await run(items[i]!);
    }),
  );
  return results;
}

/** Every live instance of the dev tenant, over gRPC. */
async function listInstances(address: string, token: string): Promise<Instance[]> {
  const client = createClient(BrokerService, address, { interceptors: [bearerToken(token)] });
  try {
    const all: Instance[] = [];
    let pageToken = "";
    do {
      const page = await client.listInstances({ pageSize: 1000, pageToken });
      all.push(...page.instances);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return all;
  } finally {
    closeClient(client);
  }
}

async function countVms(address: string): Promise<number> {
  const client = createClient(VmService, address);
  try {
    let n = 0;
    let pageToken = "";
    do {
      const page = await client.listVms({ pageSize: 1000, pageToken });
      n += page.vms.length;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return n;
  } finally {
    closeClient(client);
  }
}

function osbClients(e: Endpoints): Osb[] {
  const auth = `Basic ${Buffer.from(`${e.brokerOsbUsername}:${e.brokerOsbPassword}`).toString("base64")}`;
  return (e.brokerOsb ?? []).map((base) => ({ base, headers: { authorization: auth, "X-Broker-API-Version": "2.17", "content-type": "application/json" } }));
}

async function main(): Promise<number> {
  console.log(`starting a fresh devstack: ${REPLICAS} replica(s) of each service, ${HOSTS} simulated hosts, zero agent latency…`);
  // Hosts far larger than K one-CPU, 1 GiB VMs need: what is measured is the broker, not placement.
  const stack = await startDevstack(["--replicas", String(REPLICAS), "--hosts", String(HOSTS), "--host-cpu", "100000", "--host-memory", "1000000", "--agent-latency", "0"]);
  try {
    const e = stack.endpoints;
    const osb = osbClients(e);
    if (!osb.length || !e.broker?.length || !e.brokerToken) throw new Error(`the devstack started no broker (endpoints: ${Object.keys(e).join(", ")})`);
    const ids: string[] = Array.from({ length: K }, () => randomUUID());
    const firstPutAt: { t?: number } = {};
    const outcomes = await bounded(ids, C, (id) => provisionOne(osb, id, firstPutAt));
    const lastTerminal = Math.max(...outcomes.map((o) => (Number.isNaN(o.terminalAt) ? -Infinity : o.terminalAt)));
    const seconds = (lastTerminal - firstPutAt.t!) / 1000;

    const listed = await listInstances(e.broker[0]!, e.brokerToken);
    const ours = new Set(ids);
    const perId = new Map<string, Instance[]>();
    for (const i of listed) if (ours.has(i.instanceId)) perId.set(i.instanceId, [...(perId.get(i.instanceId) ?? []), i]);
    const created = perId.size;
    const duplicates = [...perId.values()].reduce((n, list) => n + list.length - 1, 0);
    const ready = [...perId.values()].filter((list) => list.every((i) => i.state === InstanceState.READY)).length;
    const vmUuids = new Set([...perId.values()].flat().map((i) => i.vmUuid).filter(Boolean));
    const vms = await countVms(e.compute[0]!);

    const putMs = outcomes.flatMap((o) => o.putMs).sort((a, b) => a - b);
    const terminalMs = outcomes.map((o) => o.terminalMs).filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
    const refused = outcomes.reduce((n, o) => n + o.statuses.filter((s) => s !== 202).length, 0);
    const notOneOperation = outcomes.filter((o) => o.operations.size !== 1).length;
    const succeeded = outcomes.filter((o) => o.final === "succeeded").length;
    const polls = outcomes.reduce((n, o) => n + o.polls, 0);
    const firstError = outcomes.find((o) => o.error)?.error;
    const rate = K / seconds;

    const row = (name: string, sorted: readonly number[], extra = "") =>
      console.log(`${name.padEnd(38)} n ${String(sorted.length).padStart(5)}   p50 ${pct(sorted, 50).toFixed(1).padStart(7)} ms   p99 ${pct(sorted, 99).toFixed(1).padStart(7)} ms   max ${(sorted[sorted.length - 1] ?? NaN).toFixed(1).padStart(7)} ms${extra}`);
    console.log(
      `\nK=${K} instance ids × D=${D} concurrent PUTs each (C=${C} ids in flight), plan ${PLAN_ID}, over OSB on ${osb.length} broker replica(s); ${REPLICAS} replica(s) of every service, ${HOSTS} hosts (${availableParallelism()} cores, everything on one machine); last_operation polled honouring Retry-After, at most ${POLL_CAP_MS} ms apart`,
    );
    row("PUT → answer (202 + operation)", putMs, `   not 202: ${refused}, ids without exactly one operation: ${notOneOperation}`);
    row("first PUT → last_operation terminal", terminalMs, `   succeeded ${succeeded}/${K}, ${(polls / K).toFixed(1)} polls per instance`);
    console.log(`${"cross-check (gRPC ListInstances, dev)".padEnd(38)} ${listed.length} listed, ${created} of our ids, ${ready} Ready, ${vmUuids.size} distinct VMs; compute lists ${vms} VMs`);
    if (firstError) console.log(`first error: ${firstError}`);
    console.log(`broker: ${rate.toFixed(1)} provisions/s, instances ${created}/${K}, duplicates ${duplicates}`);
    const ok = created === K && duplicates === 0 && ready === K && refused === 0 && notOneOperation === 0 && succeeded === K && vmUuids.size === K && vms === K;
    return ok ? 0 : 1;
  } finally {
    await stack.stop();
  }
}

process.exitCode = await main();
