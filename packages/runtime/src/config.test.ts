import { describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { configFromEnv, envInt, envString, loadConfig } from "./config";

describe("configFromEnv", () => {
  it("has working defaults", () => {
    const c = configFromEnv("compute", {});
    expect(c).toMatchObject({ service: "compute", host: "0.0.0.0", port: 0, natsUrl: "nats://127.0.0.1:4222", heartbeatMs: 1000, busPrefix: "" });
    expect(c.replicaId).toMatch(/^compute-/);
  });

  it("reports every bad variable by name in one INVALID_ARGUMENT", () => {
    const err = (() => {
      try {
        configFromEnv("compute", { STRATUM_GRPC_PORT: "70000", NATS_URL: "http://x", DATABASE_URL: "nope", STRATUM_REPLICA_ID: "a b", STRATUM_HEARTBEAT_MS: "1.5" });
      } catch (e) {
        return e;
      }
    })() as StratumError;
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.reason).toBe("INVALID_CONFIGURATION");
    expect(err.violations.map((v) => v.field).sort()).toEqual(["DATABASE_URL", "NATS_URL", "STRATUM_GRPC_PORT", "STRATUM_HEARTBEAT_MS", "STRATUM_REPLICA_ID"]);
    expect(err.message).toContain("STRATUM_GRPC_PORT must be an integer in [0, 65535]");
  });
});

describe("loadConfig", () => {
  const serviceEnv = { STRATUM_PING_INTERVAL_MS: envInt("ping period", 5_000, 100, 3_600_000), STRATUM_MODE: envString("mode", "fast", /^(fast|slow)$/) };

  it("reads a service's own variables with the runtime's, with their defaults", () => {
    const { config, settings } = loadConfig("compute", serviceEnv, { STRATUM_PING_INTERVAL_MS: "250" });
    expect(config.service).toBe("compute");
    expect(settings).toEqual({ STRATUM_PING_INTERVAL_MS: 250, STRATUM_MODE: "fast" });
  });

  it("reports bad service and runtime variables together, in one error", () => {
    let err: unknown;
    try {
      loadConfig("compute", serviceEnv, { STRATUM_PING_INTERVAL_MS: "5", STRATUM_MODE: "wild", STRATUM_GRPC_PORT: "-1" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StratumError);
    expect((err as StratumError).violations.map((v) => v.field).sort()).toEqual(["STRATUM_GRPC_PORT", "STRATUM_MODE", "STRATUM_PING_INTERVAL_MS"]);
  });

  it("refuses a service variable that shadows a runtime one", () => {
    expect(() => loadConfig("compute", { NATS_URL: envString("x", "") }, {})).toThrow(/runtime variable/);
  });
});
