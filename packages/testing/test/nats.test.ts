import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import { findNatsServer, startNats, type NatsServer } from "../src/index";
import { alive, listening } from "./proc";

const servers: NatsServer[] = [];
const connections: NatsConnection[] = [];

async function start(options: Parameters<typeof startNats>[0] = {}): Promise<NatsServer> {
  const server = await startNats(options);
  servers.push(server);
  return server;
}

async function open(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: 0 });
  connections.push(nc);
  return nc;
}

afterEach(async () => {
  await Promise.allSettled(connections.splice(0).map((nc) => nc.close()));
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
});

/** Creates a file-backed stream and publishes `count` messages, acknowledged by JetStream. */
async function seedStream(url: string, count: number): Promise<void> {
  const nc = await open(url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "DURABLE", subjects: ["durable.>"], storage: StorageType.File });
  const js = jetstream(nc);
  for (let i = 1; i <= count; i++) await js.publish(`durable.m${i}`, `message ${i}`);
  await nc.close();
}

async function readStream(url: string): Promise<{ messages: number; second: string | undefined }> {
  const nc = await open(url);
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info("DURABLE");
  const second = await jsm.streams.getMessage("DURABLE", { seq: 2 });
  await nc.close();
  return { messages: info.state.messages, second: second?.string() };
}

describe("startNats", () => {
  it("starts nats-server on a free local port with JetStream ready for the first call", async () => {
    const server = await start();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    const nc = await open(server.url);
    const account = await (await jetstreamManager(nc)).getAccountInfo();
    expect(account.streams).toBe(0);
    const health = await fetch(`${server.monitorUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(existsSync(join(server.storeDir, "jetstream"))).toBe(true);
  });

  it("keeps a JetStream stream's messages across restart() on the same port, graceful or crash", async () => {
    const server = await start();
    await seedStream(server.url, 3);
    const firstPid = server.pid;

    await server.restart();
    expect(server.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
    expect(await readStream(server.url)).toEqual({ messages: 3, second: "message 2" });

    await server.restart({ hard: true });
    expect(await readStream(server.url)).toEqual({ messages: 3, second: "message 2" });
  });

  it("stop() leaves no process behind, frees the port and deletes its temp store dir", async () => {
    const server = await start();
    const pid = server.pid;
    expect(alive(pid)).toBe(true);
    await server.stop();
    expect(alive(pid)).toBe(false);
    expect(await listening(server.port)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(false);
    await server.stop(); // idempotent
  });

  it("keeps a persistent store dir on stop, and a new server on it sees the old streams", async () => {
    const storeDir = mkdtempSync(join(tmpdir(), "stratum-nats-test-"));
    try {
      const first = await start({ storeDir });
      await seedStream(first.url, 2);
      await first.stop();
      expect(existsSync(join(storeDir, "jetstream"))).toBe(true);
      const second = await start({ storeDir });
      expect((await readStream(second.url)).messages).toBe(2);
    } finally {
      await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
      rmSync(storeDir, { recursive: true, force: true });
    }
  });

  it("reports a server that exits at start with its own output", async () => {
    const err = await startNats({ args: ["--no-such-flag"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/nats-server did not start: nats-server exited with code \d+/);
    expect((err as Error).message).toContain("no-such-flag");
  });

  it("fails with the server's reason when a fixed port is taken", async () => {
    const first = await start();
    const err = await startNats({ port: first.port }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/address already in use/i);
  });

  it("says how to install nats-server when the binary is missing", () => {
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(/apt-get install nats-server/);
  });
});
