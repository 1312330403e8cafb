import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";

describe("backoffDelay", () => {
  it("doubles from the base, capped, with equal jitter", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, {}, () => 1))).toEqual([100, 200, 400, 800, 1600, 2000]);
    expect([1, 2, 3].map((n) => backoffDelay(n, {}, () => 0))).toEqual([50, 100, 200]);
    expect(backoffDelay(10, { baseDelayMs: 10, maxDelayMs: 30 }, () => 0.5)).toBe(23);
  });
});
