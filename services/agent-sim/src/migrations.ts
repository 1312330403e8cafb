import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { AgentErrorCode, type VmMigrateStatusReply, type VmMigrationState } from "@stratum/agent-protocol";
import { CommandError } from "./command-error";

/** A migration's memory copy as the source host tracks it. */
export interface Migration {
  readonly vmUuid: string;
  readonly targetHostUuid: string;
  readonly volumeUuids: readonly string[];
  readonly durationMs: number;
  readonly memoryBytesTotal: number;
  state: VmMigrationState;
  /** performance.now() when the copy started / ended. */
  readonly startedAtMs: number;
  endedAtMs?: number;
}

export interface MigrationEvents {
  "copy-start": [migration: Migration];
  "copy-end": [migration: Migration];
}

interface Copy {
  readonly migration: Migration;
  timer: NodeJS.Timeout | undefined;
  /** Ends the copy as its timer would: `complete` runs, then the request answers. */
  readonly done: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * The memory copies of the migrations leaving one host. A copy runs `durationMs` and then calls
 * its `complete` (which moves the VM, or throws to fail it); `abort` ends it early, the agent's
 * death fails it. Only the last migration of each VM is remembered, which is what
 * `vm/migrate/status` reports.
 */
export class MigrationRunner {
  readonly events = new EventEmitter<MigrationEvents>();
  private readonly last = new Map<string, Migration>();
  private readonly copies = new Map<string, Copy>();

  /** The copy of `vmUuid` running now, if any. */
  copying(vmUuid: string): Migration | undefined {
    return this.copies.get(vmUuid)?.migration;
  }

  /** The copies running now whose VM has `volumeUuid` among its disks. */
  copyingOn(volumeUuid: string): Migration[] {
    return [...this.copies.values()].map((c) => c.migration).filter((m) => m.volumeUuids.includes(volumeUuid));
  }

  /**
   * Runs a copy and resolves when it has ended and `complete` has moved the VM; rejects with 409
   * `MIGRATION_ABORTED` when aborted, with what `complete` threw, or with an Error when the agent
   * stops. A zero duration completes before returning, as an instant migration always did.
   */
  run(spec: Omit<Migration, "state" | "startedAtMs" | "endedAtMs">, complete: () => void): Promise<void> {
    if (this.copies.has(spec.vmUuid)) throw new Error(`a copy of vm ${spec.vmUuid} is already running`);
    const migration: Migration = { ...spec, volumeUuids: [...spec.volumeUuids], state: "copying", startedAtMs: performance.now() };
    this.last.set(spec.vmUuid, migration);
    this.events.emit("copy-start", { ...migration });
    const finish = (): void => {
      this.copies.delete(spec.vmUuid);
      try {
        complete();
      } catch (err) {
        this.end(migration, "failed");
        throw err;
      }
      this.end(migration, "succeeded");
    };
    if (spec.durationMs <= 0) {
      try {
        finish();
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        try {
          finish();
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      };
      const copy: Copy = { migration, timer: undefined, done, reject };
      copy.timer = setTimeout(done, spec.durationMs);
      copy.timer.unref();
      this.copies.set(spec.vmUuid, copy);
    });
  }

  /** Ends the running copy of `vmUuid` now, as if its time had come (tests use it to force orders). */
  complete(vmUuid: string): boolean {
    const copy = this.copies.get(vmUuid);
    if (!copy) return false;
    if (copy.timer) clearTimeout(copy.timer);
    copy.done();
    return true;
  }

  /** Aborts the running copy of `vmUuid`: true when there was one (its `vm/migrate` answers MIGRATION_ABORTED). */
  abort(vmUuid: string): boolean {
    const copy = this.copies.get(vmUuid);
    if (!copy) return false;
    this.stopCopy(copy, "aborted", CommandError.conflict(AgentErrorCode.MIGRATION_ABORTED, `migration of vm ${vmUuid} to host ${copy.migration.targetHostUuid} was aborted; the vm still runs on its source`));
    return true;
  }

  /** The last migration of `vmUuid` from this host, as `vm/migrate/status` answers it. */
  status(vmUuid: string): VmMigrateStatusReply | undefined {
    const m = this.last.get(vmUuid);
    if (!m) return undefined;
    const fraction = m.state === "succeeded" ? 1 : m.durationMs <= 0 ? 0 : Math.min(1, ((m.endedAtMs ?? performance.now()) - m.startedAtMs) / m.durationMs);
    return {
      vmUuid,
      state: m.state,
      percent: Math.floor(fraction * 100),
      memoryBytesDone: Math.floor(fraction * m.memoryBytesTotal),
      memoryBytesTotal: m.memoryBytesTotal,
    };
  }

  /** Every remembered migration's status (inspection). */
  list(): VmMigrateStatusReply[] {
    return [...this.last.keys()].map((vmUuid) => this.status(vmUuid)!);
  }

  /** The agent died: every running copy fails, and its `vm/migrate` never answers. */
  stop(): void {
    for (const copy of [...this.copies.values()]) this.stopCopy(copy, "failed", new Error(`agent stopped during the migration of vm ${copy.migration.vmUuid}`));
  }

  private stopCopy(copy: Copy, state: "aborted" | "failed", err: Error): void {
    if (copy.timer) clearTimeout(copy.timer);
    this.copies.delete(copy.migration.vmUuid);
    this.end(copy.migration, state);
    copy.reject(err);
  }

  private end(migration: Migration, state: Exclude<VmMigrationState, "copying">): void {
    migration.state = state;
    migration.endedAtMs = performance.now();
    this.events.emit("copy-end", { ...migration });
  }
}
