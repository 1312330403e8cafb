import { describe, expect, it } from "vitest";
import { HostState, HostStateSchema } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmState, VmStateSchema } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { enumWord } from "./enums";

describe("enumWord", () => {
  it("shows proto enum values as words", () => {
    expect(enumWord(VmStateSchema, VmState.RUNNING)).toBe("Running");
    expect(enumWord(HostStateSchema, HostState.MAINTENANCE)).toBe("Maintenance");
  });

  it("shows the unset value as - and an unknown number as itself", () => {
    expect(enumWord(VmStateSchema, VmState.UNSPECIFIED)).toBe("-");
    expect(enumWord(VmStateSchema, 42)).toBe("42");
  });
});
