import type { MembershipView } from "@stratum/bus";
import { errorMessage, type Logger } from "@stratum/core";
import type { Ownership } from "@stratum/runtime";
import type { JobStore } from "../store/job-store";
import type { JobRow } from "../store/schema";
import type { JobManager } from "./job-manager";
import { interruptPolicy, type TypeRegistry } from "./type-registry";

/** How often the owner looks at its active jobs without a membership change: the safety net. */
export const RECONCILE_INTERVAL_MS = 5_000;
/** A Canceling job whose executor has not stopped it within this long is told again. */
export const CANCEL_REPUSH_MS = 5_000;

export interface JobReconcilerDeps {
  store: JobStore;
  manager: JobManager;
  types: TypeRegistry;
  ownership: Ownership;
  view: MembershipView;
  log: Logger;
  /** Whether every stored report has been recorded (JobRecorder.caughtUp). */
  reportsCaughtUp: () => Promise<boolean>;
}

/**
 * Nothing stays Running for ever: on every membership change (of longjob or of any implementing
 * service) and every few seconds, a longjob replica looks at the active jobs it owns and
 *  - dispatches a job its dead (or this) longjob owner recorded but never dispatched, or sends
 *    again one whose insert claimed its first dispatch when that owner died before sending it;
 *  - when the executor of a dispatched job is no live replica of its service: dispatches it again
 *    to the target's new owner, which resumes it from its last progress (types that resume), or
 *    fails or suspends it naming the replica that died (types that cannot) — a job the executor
 *    never started (Waiting) is simply dispatched again;
 *  - tells the executor of a Canceling job again when it has not stopped it yet.
 * The attempt that every dispatch and interrupt increments fences the executor that was only
 * thought dead (paused): its checkpoints stop it and its reports are ignored.
 */
export class JobReconciler {
  #timer: NodeJS.Timeout | undefined;
  #offs: Array<() => void> = [];
  #running: Promise<void> | undefined;
  #again = false;

  constructor(private readonly d: JobReconcilerDeps) {}

  start(): void {
    this.#offs.push(this.d.view.onChange(() => this.kick()));
    this.#timer = setInterval(() => this.kick(), RECONCILE_INTERVAL_MS);
    this.#timer.unref();
    this.kick();
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Runs a pass now (or right after the one running). */
  kick(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.pass()
      .catch((e) => this.d.log.warn("job reconcile pass failed", { error: errorMessage(e) }))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** One pass over the active jobs this replica owns (tests await it). */
  async pass(): Promise<void> {
    const { ownership } = this.d;
    let caughtUp: boolean | undefined;
    for (const row of await this.d.store.active()) {
      if (!ownership.owns(row.uuid) || this.d.manager.retrying(row.uuid)) continue;
      // A dead executor's last reports may still wait in the stream (its job may have finished):
      // its jobs are looked at once they are recorded, on a later pass.
      if (row.attempt > 0 && !this.#executorAlive(row) && !(caughtUp ??= await this.d.reportsCaughtUp())) continue;
      await this.#reconcile(row);
    }
  }

  async #reconcile(row: JobRow): Promise<void> {
    if (row.attempt === 0) {
      // Recorded, never dispatched: by a longjob replica that died after the insert — or by this
      // one, whose dispatch is queued (the dispatch coalesces with it).
      if (row.state === "Waiting") this.d.manager.dispatchSoon(row.uuid);
      return;
    }
    if (this.#executorAlive(row)) {
      // Claimed by its insert, its longjob owner died before sending it: the executor may never
      // have got it (sending the same attempt again is a no-op where it has).
      if (row.state === "Waiting" && row.owner !== this.d.ownership.incarnation() && !this.d.ownership.isLive(row.owner)) return this.d.manager.resend(row);
      if (row.state === "Canceling" && row.cancelAskedAt && Date.now() - row.cancelAskedAt.getTime() > CANCEL_REPUSH_MS) {
        await this.d.store.touchCancel(row.uuid);
        this.d.manager.restop(row);
      }
      return;
    }
    // Its executor is dead. Waiting: it never started there (a run reports its start before it
    // does any work), so running it elsewhere does nothing twice.
    if (row.state === "Waiting") return this.d.manager.dispatchSoon(row.uuid);
    const type = await this.d.types.get(row.type).catch(() => undefined);
    const policy = type ? interruptPolicy(type) : "fail";
    if (policy === "resume") {
      this.d.log.info("resuming a job whose executor died", { jobUuid: row.uuid, executor: row.executor, percent: row.percent });
      this.d.manager.dispatchSoon(row.uuid);
    } else this.d.manager.interrupt(row, policy, row.executor);
  }

  #executorAlive(row: JobRow): boolean {
    return this.d.view.alive(row.targetService).some((m) => `${m.replicaId}@${m.startedAt}` === row.executor);
  }
}
