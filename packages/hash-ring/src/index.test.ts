import { describe, expect, it } from "vitest";
import * as api from "./index";

describe("package entry point", () => {
  // Other packages (the bus, the services) import only from here; this pins the public surface.
  it("exports exactly the public API", () => {
    expect(Object.keys(api).sort()).toEqual(
      ["DEFAULT_VNODES", "HashRing", "MAX_NODES", "MAX_NODE_VNODES", "RING_ALGORITHM", "murmur3", "murmur3Bytes", "murmur3Series"].sort(),
    );
    const ring = new api.HashRing({ nodes: ["a", "b"] });
    expect(["a", "b"]).toContain(ring.ownerOf("vm-1"));
  });
});
