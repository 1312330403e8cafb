import { connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "@stratum/proto/grpc/health/v1/health_pb";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { closeClient, createClient } from "@stratum/rpc";
import postgres from "postgres";
import { startDevstack, type Devstack } from "../../../test/support/devstack";
import { alive } from "../src/liveness";

/**
 * The real devstack (as `pnpm start` runs it) with 2 compute replicas: a `kill -9` of one replica
 * must not take the rest down, and the devstack brings it back like a StatefulSet pod.
 */
let stack: Devstack;

beforeAll(async () => {
  stack = await startDevstack(["--replicas", "2", "--hosts", "2"]);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

/** The INFO line a NATS server greets every client with: the server answers. */
function natsInfo(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: hostname, port: Number(port) });
    socket.once("data", (chunk) => {
      socket.destroy();
      resolve(chunk.toString("utf8"));
    });
    socket.once("error", reject);
  });
}

async function healthOf(address: string): Promise<Serving> {
  const health = createClient(Health, address);
  try {
    return (await health.check({ service: "" })).status;
  } finally {
    closeClient(health);
  }
}

/**
 * Resolves once the replica's health turns SERVING, as its health watch stream says: after a
 * NATS restart it is NOT_SERVING until its client has reconnected (packages/runtime readiness).
 */
async function servingAgain(address: string, timeoutMs = 60_000): Promise<void> {
  const health = createClient(Health, address);
  try {
    for await (const { status } of health.watch({ service: "" }, { timeoutMs })) if (status === Serving.SERVING) return;
    throw new Error(`${address}: health watch ended before SERVING`);
  } finally {
    closeClient(health);
  }
}

describe("devstack supervision", () => {
  it("a SIGKILLed compute replica comes back on the same address with a new pid, and nothing else stops", async () => {
    const others = Object.fromEntries(["nats", "postgres", "agent-sim", "compute-0"].map((n) => [n, stack.pidOf(n)]));
    const victim = stack.pidOf("compute-1");
    const mark = stack.output.length;

    process.kill(victim, "SIGKILL");
    const exitLine = await stack.waitForLine(/^compute-1 \(pid \d+\) exited/, mark);
    expect(exitLine).toMatch(new RegExp(`^compute-1 \\(pid ${victim}\\) exited \\(signal SIGKILL\\) after .*; restarting in 0\\.5 s \\(backoff 0\\.5 s doubling to 10 s, reset after 30 s up\\)`));
    const restartLine = await stack.waitForLine(/^compute-1 restarted \(pid \d+\)/, mark);
    const newPid = Number(/pid (\d+)/.exec(restartLine)![1]);

    expect(stack.running()).toBe(true);
    expect(newPid).not.toBe(victim);
    expect(stack.pidOf("compute-1")).toBe(newPid);
    expect(restartLine).toContain(`grpc ${stack.endpoints.compute[1]}  metrics ${stack.endpoints.computeMetrics[1]}`);
    expect(await healthOf(stack.endpoints.compute[1]!)).toBe(Serving.SERVING);

    // The rest kept running, untouched: same pids, and each still answers.
    for (const [name, pid] of Object.entries(others)) {
      expect(stack.pidOf(name), name).toBe(pid);
      expect(alive(pid), name).toBe(true);
    }
    expect(await natsInfo(stack.endpoints.nats)).toMatch(/^INFO \{/);
    const sql = postgres(stack.endpoints.postgres, { max: 1 });
    try {
      expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    } finally {
      await sql.end();
    }
    const hosts = createClient(HostService, stack.endpoints.compute[0]!);
    try {
      expect((await hosts.listHosts({})).hosts).toHaveLength(2);
    } finally {
      closeClient(hosts);
    }
    // The replica that came back serves too (it rejoined and reads the same database).
    const viaRestarted = createClient(HostService, stack.endpoints.compute[1]!);
    try {
      expect((await viaRestarted.listHosts({})).hosts).toHaveLength(2);
    } finally {
      closeClient(viaRestarted);
    }
  }, 120_000);

  it("a SIGKILLed NATS server is restarted on its port and store, and the replicas keep serving", async () => {
    const victim = stack.pidOf("nats");
    const mark = stack.output.length;
    process.kill(victim, "SIGKILL");
    await stack.waitForLine(new RegExp(`^nats \\(pid ${victim}\\) exited .*; restarting in`), mark);
    const restartLine = await stack.waitForLine(/^nats restarted \(pid \d+\)/, mark);
    expect(restartLine).toContain(stack.endpoints.nats);
    expect(stack.pidOf("nats")).not.toBe(victim);
    expect(await natsInfo(stack.endpoints.nats)).toMatch(/"jetstream":true/);
    expect(stack.running()).toBe(true);
    // Each replica reconnects by itself and is ready again; none of them was restarted.
    for (const address of stack.endpoints.compute) await servingAgain(address);
    const hosts = createClient(HostService, stack.endpoints.compute[1]!);
    try {
      expect((await hosts.listHosts({})).hosts).toHaveLength(2);
    } finally {
      closeClient(hosts);
    }
    expect(stack.output.slice(mark).filter((l) => /^compute-\d/.test(l))).toEqual([]);
  }, 120_000);

  it("shut down while a replica waits for its restart, it restarts nothing and stops every child", async () => {
    const pids = ["nats", "postgres", "agent-sim", "compute-0", "compute-1"].map((n) => stack.pidOf(n));
    const victim = stack.pidOf("compute-0");
    const mark = stack.output.length;
    process.kill(victim, "SIGKILL");
    await stack.waitForLine(/^compute-0 \(pid \d+\) exited .*; restarting in/, mark);
    // SIGINT now, within the backoff (or at the latest while the new replica is starting).
    await stack.stop();
    expect(stack.running()).toBe(false);
    expect(stack.output.slice(mark).filter((l) => /restarted/.test(l))).toEqual([]);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  }, 120_000);
});
