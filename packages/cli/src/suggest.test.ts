import { describe, expect, it } from "vitest";
import { closest, didYouMean } from "./suggest";

describe("closest", () => {
  it("finds typos: a missing, extra, wrong or swapped letter", () => {
    const verbs = ["create", "list", "get", "start", "stop", "reboot", "destroy"];
    expect(closest("lsit", verbs)).toBe("list");
    expect(closest("destory", verbs)).toBe("destroy");
    expect(closest("stpo", verbs)).toBe("stop");
    expect(closest("creat", verbs)).toBe("create");
    expect(closest("--forse", ["--force", "--json"])).toBe("--force");
  });

  it("suggests nothing for a word that is not close to any", () => {
    expect(closest("migrate", ["create", "list"])).toBeUndefined();
    expect(didYouMean("migrate", ["create", "list"])).toBe("");
    expect(didYouMean("lst", ["list"])).toBe(" (did you mean list?)");
  });
});
