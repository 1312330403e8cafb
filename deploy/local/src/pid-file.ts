import { renameSync, writeFileSync } from "node:fs";

/**
 * `<data-dir>/pids.json`: the pid of every child the devstack runs, by name (`nats`, `postgres`,
 * `agent-sim`, `compute-0`, …), rewritten on every (re)start so a test or a chaos script can
 * `kill -9` a named replica and find the new pid after the devstack restarted it.
 */
export class PidFile {
  readonly #pids: Record<string, number> = {};

  constructor(readonly path: string) {
    this.#write();
  }

  set(name: string, pid: number): void {
    this.#pids[name] = pid;
    this.#write();
  }

  /** Written to a temp file and renamed, so a reader never sees half a file. */
  #write(): void {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.#pids, null, 2)}\n`);
    renameSync(tmp, this.path);
  }
}
