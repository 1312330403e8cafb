import { expect, it } from "vitest";
import { TurnBatcher } from "../src/index";

interface Item {
  n: number;
  resolve(batch: number): void;
  reject(e: unknown): void;
}

it("hands one turn's items to one flush, and what comes during a flush to the next one", async () => {
  const flushes: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const batcher = new TurnBatcher<Item>(
    async (pending) => {
      flushes.push(pending.map((p) => p.n));
      if (flushes.length === 1) await gate;
      for (const p of pending) p.resolve(flushes.length);
      return [];
    },
    (p, e) => p.reject(e),
  );
  const submit = (n: number) => new Promise<number>((resolve, reject) => batcher.submit({ n, resolve, reject }));
  const first = [submit(1), submit(2), submit(3)];
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const second = [submit(4), submit(5)];
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  expect(flushes).toEqual([[1, 2, 3]]); // one flush at a time: 4 and 5 wait for the first
  release();
  expect(await Promise.all(first)).toEqual([1, 1, 1]);
  expect(await Promise.all(second)).toEqual([2, 2]);
  expect(flushes).toEqual([[1, 2, 3], [4, 5]]);
});

it("items a flush leaves go out next, and a flush that throws fails every item it was given", async () => {
  const flushes: number[][] = [];
  const batcher = new TurnBatcher<Item>(
    async (pending) => {
      flushes.push(pending.map((p) => p.n));
      if (pending.some((p) => p.n === 99)) throw new Error("flush bug");
      pending[0]!.resolve(flushes.length);
      return pending.slice(1); // one at a time
    },
    (p, e) => p.reject(e),
  );
  const submit = (n: number) => new Promise<number>((resolve, reject) => batcher.submit({ n, resolve, reject }));
  expect(await Promise.all([submit(1), submit(2)])).toEqual([1, 2]);
  expect(flushes).toEqual([[1, 2], [2]]);
  await expect(submit(99)).rejects.toThrow("flush bug");
});
