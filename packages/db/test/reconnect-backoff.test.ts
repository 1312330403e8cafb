import { describe, expect, it } from "vitest";
import { clientOptions } from "../src/connect";
import { MAX_RECONNECT_DELAY_S, reconnectBackoff } from "../src/index";

describe("reconnectBackoff", () => {
  it("is what every pool is opened with, instead of the driver's 20 s", () => {
    expect(clientOptions("svc", "app", 10, 30_000).backoff).toBe(reconnectBackoff);
  });

  it("starts at tens of milliseconds, doubles, and never exceeds a second however many retries", () => {
    const top = (n: number) => reconnectBackoff(n, () => 1);
    const bottom = (n: number) => reconnectBackoff(n, () => 0);
    expect([1, 2, 3, 4, 5].map(top)).toEqual([0.1, 0.2, 0.4, 0.8, 1]);
    expect(top(0)).toBe(0.05);
    for (const n of [5, 6, 7, 10, 30, 100, 1_000, Number.MAX_SAFE_INTEGER]) {
      expect(top(n)).toBe(MAX_RECONNECT_DELAY_S);
      expect(bottom(n)).toBe(MAX_RECONNECT_DELAY_S / 2);
    }
    expect(MAX_RECONNECT_DELAY_S).toBe(1);
  });

  it("spreads replicas over half to all of the delay", () => {
    for (let n = 0; n < 20; n++) {
      for (const r of [0, 0.25, 0.5, 0.99]) {
        const v = reconnectBackoff(n, () => r);
        expect(v).toBeGreaterThanOrEqual(reconnectBackoff(n, () => 0));
        expect(v).toBeLessThanOrEqual(reconnectBackoff(n, () => 1));
      }
    }
    expect(reconnectBackoff(3, () => 0)).toBe(0.2);
  });
});
