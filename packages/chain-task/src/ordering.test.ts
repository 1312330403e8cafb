import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred, flushMicrotasks, track, type Deferred } from "./test-support";

describe("FIFO and concurrency per signature", () => {
  it("runs tasks of one signature one at a time, in submission order", async () => {
    const q = new ChainTaskQueue();
    const started: number[] = [];
    const gates: Deferred<number>[] = [];
    let running = 0;
    let maxRunning = 0;
    const results: Promise<number>[] = [];
    for (let i = 0; i < 5; i++) {
      const gate = deferred<number>();
      gates.push(gate);
      results.push(
        q.submit({
          signature: "vm-1",
          name: `op-${i}`,
          run: async () => {
            started.push(i);
            running++;
            maxRunning = Math.max(maxRunning, running);
            try {
              return await gate.promise;
            } finally {
              running--;
            }
          },
        }),
      );
    }
    await flushMicrotasks();
    expect(started).toEqual([0]);
    // Finish them out of order: nothing may start before its predecessor finished.
    gates[2]!.resolve(2);
    gates[1]!.resolve(1);
    await flushMicrotasks();
    expect(started).toEqual([0]);
    gates[0]!.resolve(0);
    await flushMicrotasks();
    expect(started).toEqual([0, 1, 2, 3]);
    gates[3]!.resolve(3);
    gates[4]!.resolve(4);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(maxRunning).toBe(1);
  });

  it("keeps FIFO order over many tasks", async () => {
    const q = new ChainTaskQueue();
    const order: number[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 2000; i++) {
      all.push(q.submit({ signature: "vm-1", name: "t", run: async () => void order.push(i) }));
    }
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  it("never makes one signature wait for another", async () => {
    const q = new ChainTaskQueue();
    const blockA = deferred();
    const a = track(q.submit({ signature: "vm-a", name: "slow", run: () => blockA.promise }));
    const a2 = track(q.submit({ signature: "vm-a", name: "after-slow", run: async () => "a2" }));
    const b = q.submit({ signature: "vm-b", name: "fast", run: async () => "b" });
    expect(await b).toBe("b");
    await flushMicrotasks();
    expect(a.state).toBe("pending");
    expect(a2.state).toBe("pending");
    blockA.resolve();
    await flushMicrotasks();
    expect(a2).toMatchObject({ state: "fulfilled", value: "a2" });
  });

  it("runs exactly syncLevel tasks at once and starts the next when one finishes", async () => {
    const q = new ChainTaskQueue();
    const k = 3;
    const gates = Array.from({ length: 7 }, () => deferred());
    const started: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const results = gates.map((gate, i) =>
      q.submit({
        signature: "host-1",
        name: `ping-${i}`,
        syncLevel: k,
        run: async () => {
          started.push(i);
          running++;
          maxRunning = Math.max(maxRunning, running);
          await gate.promise;
          running--;
        },
      }),
    );
    await flushMicrotasks();
    expect(started).toEqual([0, 1, 2]);
    expect(q.runningCount("host-1")).toBe(3);
    expect(q.pendingCount("host-1")).toBe(4);
    gates[1]!.resolve();
    await flushMicrotasks();
    expect(started).toEqual([0, 1, 2, 3]);
    expect(running).toBe(3);
    for (const gate of gates) gate.resolve();
    await Promise.all(results);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(maxRunning).toBe(k);
  });

  it("runs a syncLevel 1 task alone even between syncLevel 3 tasks", async () => {
    const q = new ChainTaskQueue();
    const gates = Array.from({ length: 5 }, () => deferred());
    const started: string[] = [];
    const levels = [3, 3, 1, 3, 3];
    const results = levels.map((syncLevel, i) =>
      q.submit({
        signature: "host-1",
        name: `t${i}`,
        syncLevel,
        run: async () => {
          started.push(`t${i}`);
          await gates[i]!.promise;
        },
      }),
    );
    await flushMicrotasks();
    // t2 (level 1) must wait for t0 and t1 to finish; t3 and t4 wait behind it (FIFO).
    expect(started).toEqual(["t0", "t1"]);
    gates[0]!.resolve();
    await flushMicrotasks();
    expect(started).toEqual(["t0", "t1"]);
    gates[1]!.resolve();
    await flushMicrotasks();
    expect(started).toEqual(["t0", "t1", "t2"]);
    // While t2 (level 1) runs, nothing else may start although t3/t4 allow 3 slots.
    expect(q.runningCount("host-1")).toBe(1);
    gates[2]!.resolve();
    await flushMicrotasks();
    expect(started).toEqual(["t0", "t1", "t2", "t3", "t4"]);
    gates[3]!.resolve();
    gates[4]!.resolve();
    await Promise.all(results);
  });

  it("starts waiting tasks in FIFO order when several slots free at once", async () => {
    const q = new ChainTaskQueue();
    const exclusive = deferred();
    const started: string[] = [];
    const first = q.submit({ signature: "host-1", name: "exclusive", run: () => exclusive.promise });
    const gates = Array.from({ length: 4 }, () => deferred());
    const rest = gates.map((gate, i) =>
      q.submit({
        signature: "host-1",
        name: `p${i}`,
        syncLevel: 3,
        run: async () => {
          started.push(`p${i}`);
          await gate.promise;
        },
      }),
    );
    exclusive.resolve();
    await first;
    await flushMicrotasks();
    expect(started).toEqual(["p0", "p1", "p2"]);
    for (const gate of gates) gate.resolve();
    await Promise.all(rest);
    expect(started).toEqual(["p0", "p1", "p2", "p3"]);
  });

  it("calls run synchronously inside submit when a slot is free, and passes name and signature", async () => {
    const q = new ChainTaskQueue();
    const seen: string[] = [];
    const p = q.submit({
      signature: "vm-9",
      name: "start-vm",
      run(ctx) {
        seen.push(`${ctx.name}@${ctx.signature}`);
        return Promise.resolve(this.name);
      },
    });
    expect(seen).toEqual(["start-vm@vm-9"]);
    expect(await p).toBe("start-vm");
  });

  it("accepts run functions returning plain values", async () => {
    const q = new ChainTaskQueue();
    expect(await q.submit({ signature: "s", name: "sync", run: () => 42 })).toBe(42);
  });
});
