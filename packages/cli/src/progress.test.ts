import { afterEach, describe, expect, it, vi } from "vitest";
import { formatElapsed, progressBar, ProgressRenderer, type ProgressView } from "./progress";

const view = (over: Partial<ProgressView>): ProgressView => ({ state: "Running", stage: "", percent: 0, bytesDone: 0n, bytesTotal: 0n, message: "", ...over });

function capture(extra: { isTTY?: boolean; columns?: number } = {}) {
  const out = { text: "", write: (s: string) => (out.text += s), ...extra };
  return out;
}

afterEach(() => vi.useRealTimers());

describe("formatElapsed and progressBar", () => {
  it("writes minutes:seconds, and hours past an hour", () => {
    expect(formatElapsed(0)).toBe("0:00");
    expect(formatElapsed(7_999)).toBe("0:07");
    expect(formatElapsed(750_000)).toBe("12:30");
    expect(formatElapsed(3_723_000)).toBe("1:02:03");
  });

  it("fills the bar in proportion, clamped to 0–100", () => {
    expect(progressBar(0, 10)).toBe("[..........]");
    expect(progressBar(45, 10)).toBe("[#####.....]");
    expect(progressBar(100, 10)).toBe("[##########]");
    expect(progressBar(150, 4)).toBe("[####]");
  });
});

describe("ProgressRenderer off a terminal", () => {
  it("prints one line per change, not per repeat, with human byte units only when a total is known", () => {
    let t = 0;
    const out = capture();
    const r = new ProgressRenderer({ out, now: () => t });
    r.update(view({ state: "Waiting" }));
    t = 1_000;
    r.update(view({ stage: "copy", percent: 10, bytesDone: 512n * 1024n ** 2n, bytesTotal: 4n * 1024n ** 3n }));
    t = 2_000;
    r.update(view({ stage: "copy", percent: 10, bytesDone: 512n * 1024n ** 2n, bytesTotal: 4n * 1024n ** 3n }));
    t = 3_000;
    r.update(view({ stage: "verify", percent: 90, message: "checking\nsums" }));
    r.finish("job x Succeeded (waited 0:03)");
    r.update(view({ percent: 99 }));
    expect(out.text).toBe(
      "Waiting  0%  0:00\n" + "Running  copy  10%  512 MiB/4 GiB  0:01\n" + "Running  verify  90%  0:03  checking sums\n" + "job x Succeeded (waited 0:03)\n",
    );
  });
});

describe("ProgressRenderer on a terminal", () => {
  it("redraws one line in place and replaces it with the final line", () => {
    let t = 0;
    const out = capture({ isTTY: true });
    const r = new ProgressRenderer({ out, now: () => t, refreshMs: 0 });
    r.update(view({ state: "Waiting" }));
    t = 5_000;
    r.update(view({ stage: "copy", percent: 50, bytesDone: 1n << 30n, bytesTotal: 2n << 30n }));
    r.finish("job x Failed (waited 0:05): INTERNAL: boom");
    expect(out.text).toBe(
      "\rWaiting  [....................] 0%  0:00\u001b[K" +
        "\rRunning  copy  [##########..........] 50%  1 GiB/2 GiB  0:05\u001b[K" +
        "\rjob x Failed (waited 0:05): INTERNAL: boom\u001b[K\n",
    );
  });

  it("refreshes the elapsed time while nothing changes, and stops when finished", () => {
    vi.useFakeTimers({ now: 0 });
    const out = capture({ isTTY: true });
    const r = new ProgressRenderer({ out });
    r.update(view({ percent: 20 }));
    vi.advanceTimersByTime(2_000);
    expect(out.text.split("\r").filter(Boolean).map((l) => l.replace("\u001b[K", ""))).toEqual([
      "Running  [####................] 20%  0:00",
      "Running  [####................] 20%  0:01",
      "Running  [####................] 20%  0:02",
    ]);
    r.interrupt();
    const before = out.text;
    vi.advanceTimersByTime(5_000);
    expect(out.text).toBe(before);
    expect(before.endsWith("\n")).toBe(true);
  });

  it("cuts the line to the terminal's width, so a redraw never wraps", () => {
    const out = capture({ isTTY: true, columns: 30 });
    const r = new ProgressRenderer({ out, now: () => 0, refreshMs: 0 });
    r.update(view({ stage: "copy", percent: 1, message: "a long status message from the worker" }));
    expect(out.text).toBe("\rRunning  copy  [.............\u001b[K");
  });
});
