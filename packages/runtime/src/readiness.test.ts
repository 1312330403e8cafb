import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type Bus } from "@stratum/bus";
import { connect, type DbHandle } from "@stratum/db";
import { HealthRegistry, ServingStatus } from "@stratum/rpc";
import { startNats, startPostgres, type NatsServer, type PostgresServer } from "@stratum/testing";
import { LIVENESS_SERVICE, natsCheck, postgresCheck, ReadinessWatcher, type ReadinessOptions } from "./readiness";

// A Postgres and a nats-server of this file's own: it takes them down, which the shared ones must not be.
let pg: PostgresServer;
let nats: NatsServer;
let db: DbHandle;
let bus: Bus;
const SERVICE = "stratum.fixture.v1.FixtureService";
/** A bound on waiting for an event that must come; reaching it is the failure, not the measure. */
const FAILURE_BOUND_MS = 20_000;

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  db = await connect({ url: await pg.createDatabase("readiness"), schema: "readiness", max: 2 });
  bus = await connectBus({ servers: nats.url, name: "readiness-test" });
});

afterAll(async () => {
  await bus?.close();
  await db?.close();
  await Promise.all([pg?.stop(), nats?.stop()]);
});

/** The wiring of service.ts: the watcher drives "" and the service names, never the liveness name. */
function servingReplica(options: Partial<ReadinessOptions> = {}) {
  const health = new HealthRegistry();
  const setStatus = (status: ServingStatus) => {
    health.set("", status);
    health.set(SERVICE, status);
  };
  health.set(LIVENESS_SERVICE, ServingStatus.SERVING);
  setStatus(ServingStatus.SERVING);
  const calls: boolean[] = [];
  const watcher = new ReadinessWatcher({
    checks: [postgresCheck(db.sql), natsCheck(bus.nc)],
    periodMs: 50,
    timeoutMs: 1_000,
    ...options,
    setServing: (ok) => {
      calls.push(ok);
      setStatus(ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    },
  });
  return { health, watcher, calls };
}

/** The watcher's next change of outcome. */
function nextChange(watcher: ReadinessWatcher): Promise<{ ready: boolean; failures: readonly string[] }> {
  return new Promise((resolve, reject) => {
    const bound = setTimeout(() => {
      off();
      reject(new Error(`no readiness change within ${FAILURE_BOUND_MS} ms`));
    }, FAILURE_BOUND_MS);
    const off = watcher.onChange((ready, failures) => {
      clearTimeout(bound);
      off();
      resolve({ ready, failures });
    });
  });
}

const statuses = (health: HealthRegistry) => [health.get(""), health.get(SERVICE), health.get(LIVENESS_SERVICE)];

describe("ReadinessWatcher", () => {
  it("turns NOT_SERVING while Postgres is down and SERVING once it is back, liveness untouched", async () => {
    const { health, watcher, calls } = servingReplica();
    watcher.start();
    try {
      const down = nextChange(watcher);
      await pg.halt();
      const lost = await down;
      expect(lost.ready).toBe(false);
      expect(lost.failures).toEqual([expect.stringMatching(/^postgres: /)]);
      expect(statuses(health)).toEqual([ServingStatus.NOT_SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);

      const up = nextChange(watcher);
      await pg.resume();
      expect(await up).toEqual({ ready: true, failures: [] });
      expect(statuses(health)).toEqual([ServingStatus.SERVING, ServingStatus.SERVING, ServingStatus.SERVING]);
      // Once per change, not once per round.
      expect(calls).toEqual([false, true]);
    } finally {
      await watcher.stop();
      await pg.resume();
    }
  });

  it("turns NOT_SERVING while NATS is down and SERVING once the bus has reconnected", async () => {
    const { health, watcher, calls } = servingReplica();
    watcher.start();
    try {
      const down = nextChange(watcher);
      const port = nats.port;
      await nats.stop();
      const lost = await down;
      expect(lost.ready).toBe(false);
      expect(lost.failures).toEqual([expect.stringMatching(/^nats: /)]);
      expect(statuses(health)).toEqual([ServingStatus.NOT_SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);

      // A new server on the same port: the bus reconnects by itself (it retries forever).
      const up = nextChange(watcher);
      nats = await startNats({ port });
      expect(await up).toEqual({ ready: true, failures: [] });
      expect(statuses(health)).toEqual([ServingStatus.SERVING, ServingStatus.SERVING, ServingStatus.SERVING]);
      expect(calls).toEqual([false, true]);
    } finally {
      await watcher.stop();
    }
  });

  it("counts a check that does not answer within its timeout as down, naming it", async () => {
    const { health, watcher } = servingReplica({ checks: [postgresCheck(db.sql), async function stuck() { await new Promise(() => {}); }], timeoutMs: 100 });
    watcher.start();
    try {
      const lost = await nextChange(watcher);
      expect(lost).toEqual({ ready: false, failures: ["stuck: did not answer within 100 ms"] });
      expect(health.get("")).toBe(ServingStatus.NOT_SERVING);
    } finally {
      await watcher.stop();
    }
  });

  it("never sets a status after stop(), even from a round that was in flight", async () => {
    let entered!: () => void;
    const inRound = new Promise<void>((resolve) => (entered = resolve));
    let fail!: (e: Error) => void;
    const gated = () => {
      entered();
      return new Promise<void>((_, reject) => (fail = reject));
    };
    const { health, watcher, calls } = servingReplica({ checks: [gated], timeoutMs: FAILURE_BOUND_MS });
    // What a stopping replica does: stop the watcher, then turn NOT_SERVING to drain.
    watcher.start();
    await inRound;
    const stopped = watcher.stop();
    health.set("", ServingStatus.NOT_SERVING);
    fail(new Error("postgres: down"));
    await stopped;
    expect(calls).toEqual([]);
    expect(health.get("")).toBe(ServingStatus.NOT_SERVING);
  });

  it("rejects options it cannot work with, naming them", () => {
    const setServing = () => {};
    expect(() => new ReadinessWatcher({ checks: [], setServing })).toThrow(/no checks/);
    expect(() => new ReadinessWatcher({ checks: [async () => {}], setServing, periodMs: 0 })).toThrow(/periodMs must be a positive number/);
    expect(() => new ReadinessWatcher({ checks: [async () => {}], setServing, timeoutMs: Number.NaN })).toThrow(/timeoutMs must be a positive number/);
  });
});
