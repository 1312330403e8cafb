import type { EventBus } from "@stratum/bus";
import { StratumError, type Logger } from "@stratum/core";
import type { InstanceStore } from "../store/instance-store";
import { BROKER_JOB_TYPES, type InstanceManager, type JobOutcome } from "./instance-manager";

/** Durable consumer shared by the broker replicas: each job event reaches one of them, at least once. */
export const JOB_EVENTS_DURABLE = "broker-job-outcomes";
/** How long an operation may stay recorded but not submitted before the sweep submits it (its replica died in between). */
const UNSUBMITTED_AFTER_MS = 3_000;
const SWEEP_BATCH = 100;

/** The part of longjob's `job_changed` event (its row) a settle reads. */
interface JobChanged {
  uuid: string;
  type: string;
  state: string;
  result: Record<string, unknown> | null;
  error: { reason?: string; message?: string } | null;
}

export interface OperationSettlerDeps {
  events: EventBus;
  instances: InstanceStore;
  manager: InstanceManager;
  owns: (uuid: string) => boolean;
  log: Logger;
  sweepIntervalMs: number;
}

/**
 * Keeps every instance's operation moving to its end, whatever dies on the way:
 *
 * - the end of a broker job, read from longjob's `job_changed` events through a durable
 *   JetStream consumer (acknowledged once the instance is settled, so an event outlives a broker
 *   replica dying), settles the instance — also for jobs that ended without running (cancelled
 *   while queued) or were failed by longjob;
 * - a sweep, on the owner of each instance's UUID, submits the operations a replica recorded and
 *   died before longjob accepted them.
 *
 * Reads settle lazily too (InstanceManager), so a caller polling last_operation never waits for
 * the event.
 */
export class OperationSettler {
  #sub: { stop(): Promise<void> } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;

  constructor(private readonly d: OperationSettlerDeps) {}

  async start(): Promise<void> {
    this.#sub = await this.d.events.subscribe<JobChanged>(
      "longjob.job_changed.>",
      async (e) => {
        const job = e.data;
        if (!BROKER_JOB_TYPES.has(job.type)) return;
        const outcome = outcomeOfEvent(job);
        if (outcome) await this.d.manager.settle(outcome);
      },
      { durable: JOB_EVENTS_DURABLE, from: "all" },
    );
    this.#timer = setInterval(() => void this.sweep(), this.d.sweepIntervalMs);
    this.#timer.unref();
  }

  /** Submits the operations left unsubmitted that this replica owns. */
  async sweep(): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    let submitted = 0;
    try {
      for (const row of await this.d.instances.unsubmitted(UNSUBMITTED_AFTER_MS, SWEEP_BATCH)) {
        if (!this.d.owns(row.uuid)) continue;
        this.d.log.info("submitting an operation its replica left", { instanceUuid: row.uuid, operation: row.operation, kind: row.operationKind });
        await this.d.manager.submit(row);
        submitted++;
      }
    } catch (e) {
      this.d.log.warn("operation sweep failed", { error: StratumError.from(e).message });
    } finally {
      this.#sweeping = false;
    }
    return submitted;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sub?.stop();
  }
}

function outcomeOfEvent(job: JobChanged): JobOutcome | undefined {
  if (job.state !== "Succeeded" && job.state !== "Failed" && job.state !== "Canceled") return undefined;
  return { uuid: job.uuid, state: job.state, result: job.result ?? undefined, error: job.error ?? undefined };
}
