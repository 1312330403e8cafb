import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { Catalog } from "./catalog";

const committed = Catalog.load(fileURLToPath(new URL("../../catalog.json", import.meta.url)));
const VM = committed.services[0]!.id;

describe("Catalog", () => {
  it("loads the committed catalog: the vm service with its plans' sizes", () => {
    expect(committed.services.map((s) => s.name)).toEqual(["vm"]);
    expect(committed.plan("vm-small")).toMatchObject({ cpu: 1, memoryBytes: 1n << 30n });
  });

  it("fills the schema's defaults, so {} and {eip: false} are the same parameters", () => {
    expect(committed.resolve(VM, "vm-small", {}, "create").parameters).toEqual({ eip: false });
    expect(committed.resolve(VM, "vm-small", { eip: false }, "create").parameters).toEqual({ eip: false });
  });

  it("names every violation of a plan's schema", () => {
    try {
      committed.resolve(VM, "vm-small", { eip: "yes", name: "-bad", colour: "red" }, "create");
      throw new Error("expected INVALID_ARGUMENT");
    } catch (e) {
      const err = StratumError.from(e);
      expect(err.code).toBe(Code.INVALID_ARGUMENT);
      expect(err.message).toContain("parameters.eip must be boolean");
      expect(err.message).toContain("parameters.name must match");
      expect(err.message).toContain('unknown parameter "colour"');
    }
  });

  it("refuses a plan of another service and an unknown service, naming them", () => {
    expect(() => committed.resolve("other", "vm-small", {}, "create")).toThrow(/unknown service "other"/);
    expect(() => committed.resolve(VM, "db-small", {}, "create")).toThrow(/unknown plan "db-small"/);
  });

  it("reports every problem of a bad catalog at once", () => {
    const plan = { id: "p", name: "p", description: "d", cpu: 1, memory_bytes: 1, root_volume_bytes: 1 };
    expect(() => new Catalog({ services: [{ id: "s", name: "s", description: "d", plans: [plan, { ...plan, cpu: 0 }] }, { id: "s", name: "t", description: "d", plans: [] }] })).toThrow(
      /plans\[1\]: cpu must be a positive integer[\s\S]*has no plans[\s\S]*plan id p appears twice[\s\S]*service id s appears twice/,
    );
  });
});
