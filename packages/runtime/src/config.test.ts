import { describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { configFromEnv } from "./config";

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
