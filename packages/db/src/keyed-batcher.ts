import { TurnBatcher } from "./turn-batcher";

interface Item<I, O> {
  input: I;
  resolve(out: O | undefined): void;
  reject(e: unknown): void;
}

/**
 * One statement per event-loop turn for all the calls made in it (a {@link TurnBatcher}), each
 * caller getting its own result back — undefined when its row's condition matched nothing. Calls
 * about the same key never share a statement: a join with two matches applies one, and an
 * `INSERT … ON CONFLICT DO NOTHING` does not say which of two won; the later waits for the next
 * statement, so they apply in submission order. A failed statement rejects each of its callers
 * with its error, as their own statement would have.
 */
export class KeyedBatcher<I, O> {
  readonly #batcher: TurnBatcher<Item<I, O>>;

  constructor(
    keyOf: (input: I) => string,
    run: (inputs: I[]) => Promise<Map<string, O>>,
    /** Largest batch: keeps one statement's arrays and its lock set small. */
    maxBatch = 512,
  ) {
    this.#batcher = new TurnBatcher<Item<I, O>>(
      async (pending) => {
        const batch: Item<I, O>[] = [];
        const later: Item<I, O>[] = [];
        const seen = new Set<string>();
        for (const p of pending) {
          const key = keyOf(p.input);
          if (batch.length < maxBatch && !seen.has(key)) {
            seen.add(key);
            batch.push(p);
          } else later.push(p);
        }
        try {
          const out = await run(batch.map((p) => p.input));
          for (const p of batch) p.resolve(out.get(keyOf(p.input)));
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
        return later;
      },
      (p, e) => p.reject(e),
    );
  }

  submit(input: I): Promise<O | undefined> {
    return new Promise((resolve, reject) => this.#batcher.submit({ input, resolve, reject }));
  }
}
