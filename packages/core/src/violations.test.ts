import { EchoRequestSchema, ForwardRequestSchema } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { describe, expect, it } from "vitest";
import { Code } from "./code";
import { StratumError } from "./errors";
import { Violations, fieldPath, validate } from "./violations";

describe("fieldPath", () => {
  it("joins proto names, list indexes and descriptor names", () => {
    expect(fieldPath("nics", 0, "l3_network_uuid")).toBe("nics[0].l3_network_uuid");
    expect(fieldPath(ForwardRequestSchema.field.sleep, "duration")).toBe("sleep.duration");
    expect(fieldPath(EchoRequestSchema.field.payload)).toBe("payload");
  });
});

describe("validate", () => {
  it("passes valid input through without throwing", () => {
    expect(() => validate((v) => v.required("name", "vm-1").maxLength("name", "vm-1", 64).range("cpu", 4, 1, 128))).not.toThrow();
  });

  it("reports every violation at once as one INVALID_ARGUMENT", () => {
    let thrown: unknown;
    try {
      validate(
        (v) => {
          v.required("name", "  ");
          v.required("nics", []);
          v.required("zone_uuid", undefined);
          v.maxLength("description", "x".repeat(10), 5);
          v.range("memory_bytes", 0n, 1n, 1n << 40n);
          v.check(false, "nics[0].l3_network_uuid", "unknown l3 network");
        },
        { vmUuid: "v1" },
      );
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(StratumError);
    const err = thrown as StratumError;
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.reason).toBe("INVALID_ARGUMENT");
    expect(err.resources).toEqual({ vmUuid: "v1" });
    expect(err.violations.map((v) => v.field)).toEqual(["name", "nics", "zone_uuid", "description", "memory_bytes", "nics[0].l3_network_uuid"]);
    expect(err.violations[3]?.description).toBe("must be at most 5 characters");
  });

  it("Violations can be built up and inspected", () => {
    const v = new Violations();
    expect(v.ok).toBe(true);
    v.check(1 > 2, "a", "bad");
    expect(v.ok).toBe(false);
    expect(v.violations).toEqual([{ field: "a", description: "bad" }]);
    expect(() => v.throwIfAny()).toThrow(StratumError);
  });
});
