/**
 * The scheduling of a micro-batcher, written once: items submitted during one event-loop turn
 * are handed to `flush` together on the next (`setImmediate`), one flush at a time — while one
 * runs, the next batch fills up, so a burst costs a few large statements instead of many small
 * ones. `flush` gets every pending item and returns those it leaves for a later turn (a batch
 * limit, or an item that must wait for one in flight); they go out once it has returned.
 */
export class TurnBatcher<T> {
  #pending: T[] = [];
  #scheduled = false;
  #running = false;

  /**
   * `flush` settles every item it takes. Should it throw all the same, `fail` is called for each
   * item it was given (settling a settled promise again does nothing), so no caller waits for ever.
   */
  constructor(
    private readonly flush: (pending: T[]) => Promise<T[]>,
    private readonly fail: (item: T, error: unknown) => void,
  ) {}

  submit(item: T): void {
    this.#pending.push(item);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#run();
    });
  }

  async #run(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length === 0) return;
    this.#running = true;
    try {
      const left = await this.flush(pending);
      this.#pending = left.concat(this.#pending);
    } catch (e) {
      for (const item of pending) this.fail(item, e);
    } finally {
      this.#running = false;
      if (this.#pending.length > 0) this.#schedule();
    }
  }
}
