import { afterEach, describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { isChainTaskError } from "./errors";
import { deferred, flushMicrotasks, type Deferred } from "./test-support";

/** Small deterministic PRNG, so a failure is reproducible from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("random interleavings", () => {
  it.each(Array.from({ length: 25 }, (_, i) => i + 1))(
    "seed %i: FIFO starts, sync levels respected, every submitter answered, nothing left behind",
    async (seed) => {
      vi.useFakeTimers();
      const rnd = mulberry32(seed);
      const pick = (n: number) => Math.floor(rnd() * n);
      const q = new ChainTaskQueue({ maxPending: 10 });
      const runningLevels = new Map<string, number[]>();
      const starts = new Map<string, number[]>();
      const violations: string[] = [];
      const gates: Deferred<string>[] = [];
      const controllers: AbortController[] = [];
      let submitted = 0;
      let settled = 0;

      for (let step = 0; step < 400; step++) {
        const r = rnd();
        if (r < 0.5) {
          const signature = `vm-${pick(4)}`;
          const syncLevel = 1 + pick(3);
          const behaviour = Math.max(0, pick(6) - 2); // half of the tasks wait for a gate
          const index = step;
          const controller = rnd() < 0.3 ? new AbortController() : undefined;
          if (controller) controllers.push(controller);
          const gate = deferred<string>();
          if (behaviour === 0) gates.push(gate);
          const run = () => {
            const levels = runningLevels.get(signature) ?? [];
            runningLevels.set(signature, levels);
            const count = levels.length + 1;
            if (count > syncLevel || levels.some((l) => count > l)) {
              violations.push(`${signature}: ${count} running with levels ${[...levels, syncLevel].join(",")}`);
            }
            const order = starts.get(signature) ?? [];
            starts.set(signature, order);
            order.push(index);
            levels.push(syncLevel);
            const done = () => levels.splice(levels.indexOf(syncLevel), 1);
            switch (behaviour) {
              case 0:
                return gate.promise.finally(done);
              case 1:
                done();
                throw new Error("sync");
              case 2:
                return Promise.resolve().then(() => {
                  done();
                  throw new Error("async");
                });
              default:
                done();
                return "value";
            }
          };
          try {
            const p = q.submit(
              {
                signature,
                name: `t${index}`,
                syncLevel,
                run,
                ...(rnd() < 0.2 ? { dedupKey: `k${pick(2)}` } : {}),
                ...(rnd() < 0.15 ? { pendingTimeoutMs: 1 + pick(20) } : {}),
              },
              controller ? { signal: controller.signal } : undefined,
            );
            submitted++;
            p.then(
              () => settled++,
              (e: unknown) => {
                settled++;
                if (!(e instanceof Error)) violations.push(`non-error rejection ${String(e)}`);
                else if (!isChainTaskError(e) && e.message !== "sync" && e.message !== "async") {
                  violations.push(`unexpected error ${e.message}`);
                }
              },
            );
          } catch (e) {
            violations.push(`submit threw ${String(e)}`);
          }
        } else if (r < 0.68) {
          if (gates.length > 0) gates.splice(pick(gates.length), 1)[0]!.resolve("gate");
        } else if (r < 0.8) {
          if (controllers.length > 0) controllers.splice(pick(controllers.length), 1)[0]!.abort("cancel");
        } else if (r < 0.95) {
          await vi.advanceTimersByTimeAsync(pick(6));
        } else {
          await flushMicrotasks();
        }
      }
      // Drain: release every remaining gate until everything settled.
      for (let round = 0; round < 100 && settled < submitted; round++) {
        for (const gate of gates.splice(0)) gate.resolve("gate");
        await vi.advanceTimersByTimeAsync(25);
      }

      expect(violations).toEqual([]);
      expect(settled).toBe(submitted);
      for (const [signature, order] of starts) {
        const sorted = [...order].sort((a, b) => a - b);
        expect(order, `start order on ${signature}`).toEqual(sorted);
      }
      expect(q.size).toBe(0);
      expect(q.signatureCount).toBe(0);
      expect(q.inspect()).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
    },
  );
});
