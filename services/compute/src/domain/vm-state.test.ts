import { describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { assertCanRun, TRANSITIONS } from "./vm-state";

describe("VM state machine", () => {
  it("allows each operation only from its source states", () => {
    expect(assertCanRun("stop", "v1", "Running")).toBe(TRANSITIONS.stop);
    expect(assertCanRun("start", "v1", "Stopped").to).toBe("Running");
    expect(assertCanRun("destroy", "v1", "Error").via).toBe("Destroying");
  });

  it("refuses an illegal transition with FAILED_PRECONDITION naming the current state", () => {
    expect(() => assertCanRun("stop", "v1", "Stopped")).toThrow(expect.objectContaining({
      code: Code.FAILED_PRECONDITION,
      reason: "VM_STATE_INVALID",
      resources: { vmUuid: "v1", state: "Stopped" },
      message: expect.stringContaining("it is Stopped"),
    }));
    for (const op of ["start", "stop", "reboot", "destroy"] as const) {
      expect(() => assertCanRun(op, "v1", "Destroyed")).toThrow(/it is Destroyed/);
      expect(() => assertCanRun(op, "v1", "Starting")).toThrow(/it is Starting/);
    }
  });
});
