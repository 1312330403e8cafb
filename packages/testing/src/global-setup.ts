import type { TestProject } from "vitest/node";
import { startNats, type NatsServer } from "./nats";
import { startPostgres, type PostgresServer } from "./postgres";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the one nats-server (JetStream enabled) of this test run. */
    natsUrl: string;
    /**
     * Superuser URL of the one Postgres of this test run. Do not write to it directly: create a
     * database of your own with `testDatabase()`.
     */
    databaseUrl: string;
  }
}

/** Use an existing nats-server instead of starting one (e.g. a CI service container). */
export const TEST_NATS_URL_ENV = "STRATUM_TEST_NATS_URL";
/** Use an existing Postgres (a superuser URL) instead of starting one. */
export const TEST_DATABASE_URL_ENV = "STRATUM_TEST_DATABASE_URL";

/**
 * vitest globalSetup: one nats-server and one Postgres for the whole run, started in parallel,
 * provided to test files as `inject("natsUrl")` / `inject("databaseUrl")`. Test files isolate
 * themselves on them with their own database (`testDatabase()`) and their own JetStream name
 * prefix (`uniquePrefix()`), which is far cheaper than a server per file.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const externalNats = process.env[TEST_NATS_URL_ENV];
  const externalDb = process.env[TEST_DATABASE_URL_ENV];
  const [nats, pg] = await Promise.allSettled([
    externalNats ? Promise.resolve(undefined) : startNats(),
    externalDb ? Promise.resolve(undefined) : startPostgres({ fast: true }),
  ]);
  const servers = [nats, pg].flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value as NatsServer | PostgresServer] : []));
  const teardown = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
  if (nats.status === "rejected" || pg.status === "rejected") {
    await teardown();
    const reasons = [nats, pg].flatMap((r) => (r.status === "rejected" ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
    throw new Error(`global setup could not start its servers:\n${reasons.join("\n")}`);
  }
  project.provide("natsUrl", externalNats ?? nats.value!.url);
  project.provide("databaseUrl", externalDb ?? pg.value!.url);
  if (process.env.STRATUM_TEST_VERBOSE) {
    console.log(`[global-setup] nats ${externalNats ?? nats.value!.url}, postgres ${externalDb ?? pg.value!.url} in ${Date.now() - started} ms`);
  }
  return teardown;
}
