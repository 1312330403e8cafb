import { describe, expect, it } from "vitest";
import { Backoff } from "../src/backoff";
import { Supervisor, type ExitStatus, type Run } from "../src/supervisor";

/** A run whose death the test decides. */
function fakeRun(pid: number): Run & { die(status: ExitStatus): void; stops: number } {
  let die!: (s: ExitStatus) => void;
  const exited = new Promise<ExitStatus>((r) => (die = r));
  const run = {
    pid,
    exited,
    stops: 0,
    die: (s: ExitStatus) => die(s),
    stop: async () => {
      run.stops++;
      die({ code: 0, signal: null });
    },
  };
  return run;
}

/** Collects log lines and resolves the first one matching a pattern: waits are bound to lines. */
function logSink() {
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  return {
    lines,
    log: (line: string) => {
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
    },
    next: (re: RegExp) => new Promise<string>((resolve) => waiters.push({ re, resolve })),
  };
}

describe("Backoff", () => {
  it("doubles from 0.5 s to 10 s and starts over after 30 s up", () => {
    const b = new Backoff();
    expect([0, 0, 0, 0, 0, 0, 0].map(() => b.next(1_000))).toEqual([500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(b.next(30_000)).toBe(500);
    expect(b.next(0)).toBe(1_000);
  });
});

describe("Supervisor", () => {
  it("launches a dead child again, logging its exit, the backoff and the new pid", async () => {
    const sink = logSink();
    const runs = [fakeRun(101), fakeRun(102)];
    const pids: number[] = [];
    let launches = 0;
    const sup = new Supervisor("compute-1", async () => runs[launches++]!, { log: sink.log, onPid: (p) => pids.push(p), backoff: { initialMs: 1, maxMs: 4, resetAfterMs: 60_000 } });
    await sup.start();
    const restarted = sink.next(/^compute-1 restarted/);
    runs[0]!.die({ code: null, signal: "SIGKILL" });
    expect(await restarted).toBe("compute-1 restarted (pid 102)");
    expect(sink.lines[0]).toMatch(/^compute-1 \(pid 101\) exited \(signal SIGKILL\) after .*; restarting in 0\.0 s \(backoff 0\.001 s doubling to 0\.004 s, reset after 60 s up\)$/);
    expect(pids).toEqual([101, 102]);
    await sup.stop();
    expect(runs[1]!.stops).toBe(1);
  });

  it("stopped during the backoff, it launches nothing more", async () => {
    const sink = logSink();
    const run = fakeRun(201);
    let launches = 0;
    const sup = new Supervisor("nats", async () => (launches++, run), { log: sink.log, backoff: { initialMs: 600_000, maxMs: 600_000, resetAfterMs: 600_000 } });
    await sup.start();
    const waiting = sink.next(/restarting in 600\.0 s/);
    run.die({ code: 1, signal: null });
    await waiting;
    // A 10-minute backoff: only stop() waking it lets this return within the test's timeout.
    await sup.stop();
    expect(launches).toBe(1);
    expect(sink.lines.some((l) => l.includes("restarted"))).toBe(false);
  });

  it("stopped while a restart is launching, it stops what that launch started", async () => {
    const sink = logSink();
    const first = fakeRun(301);
    const second = fakeRun(302);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let launches = 0;
    let entered!: () => void;
    const inSecondLaunch = new Promise<void>((r) => (entered = r));
    const sup = new Supervisor("postgres", async () => {
      if (launches++ === 0) return first;
      entered();
      await held;
      return second;
    }, { log: sink.log, backoff: { initialMs: 1, maxMs: 1, resetAfterMs: 60_000 } });
    await sup.start();
    first.die({ code: 1, signal: null });
    await inSecondLaunch;
    const stopped = sup.stop();
    release();
    await stopped;
    expect(second.stops).toBe(1);
    expect(launches).toBe(2);
    expect(sink.lines.some((l) => l.includes("restarted"))).toBe(false);
  });

  it("a child that must not be restarted is only logged, with the reason", async () => {
    const sink = logSink();
    const run = fakeRun(401);
    let launches = 0;
    const sup = new Supervisor("agent-sim", async () => (launches++, run), { log: sink.log, noRestart: "its ports were free ones" });
    await sup.start();
    const logged = sink.next(/not restarted/);
    run.die({ code: 3, signal: null });
    expect(await logged).toMatch(/^agent-sim \(pid 401\) exited \(code 3\) after .*; not restarted: its ports were free ones$/);
    await sup.stop();
    expect(launches).toBe(1);
  });
});
