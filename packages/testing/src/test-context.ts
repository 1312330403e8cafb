import { createDatabaseAt, uniqueDatabaseName } from "./postgres";

/**
 * Helpers for test files running under the global setup. They import vitest lazily so that the
 * devstack, which imports this package outside vitest, never loads it.
 */

/**
 * Creates a fresh database on the run's shared Postgres and returns its URL, so each test file
 * (or case) migrates and writes in isolation without the cost of its own server.
 */
export async function testDatabase(label = "t"): Promise<string> {
  const { inject } = await import("vitest");
  return createDatabaseAt(inject("databaseUrl"), uniqueDatabaseName(label));
}

/** URL of the run's shared nats-server (JetStream enabled); pair it with uniquePrefix(). */
export async function testNatsUrl(): Promise<string> {
  const { inject } = await import("vitest");
  return inject("natsUrl");
}
