import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts", "deploy/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One nats-server and one Postgres for the whole run: inject("natsUrl") / inject("databaseUrl").
    globalSetup: ["packages/testing/src/global-setup.ts"],
  },
});
