import type { JsMsg } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { AckedBatchPublisher, ensureStream, nanos, streamName, subject, type Bus } from "@stratum/bus";
import { TurnBatcher } from "@stratum/db";

/**
 * The report protocol between executors and longjob: an executor publishes what its job does to
 * JetStream, and longjob records it. JetStream rather than a gRPC call so that a report outlives
 * the longjob replica that would have received it (it is recorded when any replica is back), and
 * so that a retried publish is stored once (`Nats-Msg-Id` = job, attempt and sequence).
 */

/** How far a job is; never backwards (the executor and the recorder both hold to that). */
export interface ReportedProgress {
  percent: number;
  stage: string;
  bytesDone: number;
  bytesTotal: number;
  message: string;
}

/** A job's error as reported: the executor's StratumError, flattened. */
export interface ReportedError {
  code: string;
  reason: string;
  message: string;
  resources: Record<string, string>;
}

export type FinalState = "Succeeded" | "Failed" | "Canceled";

/** One report. `seq` orders the reports of one attempt; a report of an older attempt is ignored. */
export interface JobReport {
  job: string;
  attempt: number;
  seq: number;
  /** The executor's incarnation. */
  executor: string;
  kind: "started" | "progress" | "finished";
  progress?: ReportedProgress;
  outcome?: { state: FinalState; result?: Record<string, unknown>; error?: ReportedError };
  /** When the executor sent it (ISO 8601). */
  at: string;
}

const REPORTS = "STRATUM_JOB_REPORTS";

/** Defaults of the report stream, documented because they bound how long a report may wait. */
export const REPORT_DEFAULTS = {
  /** A report not recorded within this long is dropped: a job's executor is resumed long before. */
  maxAgeMs: 7 * 24 * 3_600_000,
  /** Window in which a re-published report is stored once. */
  duplicateWindowMs: 10 * 60_000,
} as const;

/** The subject of a job's reports. */
export function reportSubject(bus: Bus, jobUuid: string): string {
  return subject(bus.prefix, "longjob", "report", jobUuid);
}

/** The stream and the subjects it holds: every replica of every implementing service calls this. */
export async function ensureReportStream(bus: Bus): Promise<string> {
  const name = streamName(bus.prefix, REPORTS);
  await ensureStream(bus, {
    name,
    subjects: [subject(bus.prefix, "longjob", "report", "*")],
    max_age: nanos(REPORT_DEFAULTS.maxAgeMs),
    duplicate_window: nanos(REPORT_DEFAULTS.duplicateWindowMs),
  });
  return name;
}

/** Publishes a report and resolves once JetStream stored it (or had it already). */
export async function publishReport(bus: Bus, report: JobReport): Promise<void> {
  await bus.js.publish(reportSubject(bus, report.job), JSON.stringify(report), { msgID: reportId(report) });
}

function reportId(r: JobReport): string {
  return `${r.job}:${r.attempt}:${r.seq}`;
}

interface PendingReport {
  report: JobReport;
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * The reports of every job running on a replica, sent together: those of one event-loop turn go
 * out as one pipelined batch (one reply subscription, one timer) and each caller learns when its
 * own was stored — a replica running many jobs pays one round trip per turn, not one per report.
 */
export class ReportPublisher {
  readonly #batches: AckedBatchPublisher;
  readonly #turns: TurnBatcher<PendingReport>;

  constructor(private readonly bus: Bus) {
    this.#batches = new AckedBatchPublisher(bus.nc);
    this.#turns = new TurnBatcher<PendingReport>(
      async (pending) => {
        const batch = pending.slice(0, 1_000);
        try {
          await this.#batches.publish(
            batch.map(({ report }) => {
              const h = headers();
              h.set("Nats-Msg-Id", reportId(report));
              return { subject: reportSubject(this.bus, report.job), payload: JSON.stringify(report), headers: h };
            }),
          );
          for (const p of batch) p.resolve();
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
        return pending.slice(1_000);
      },
      (p, e) => p.reject(e),
    );
  }

  /** Resolves once JetStream stored the report (a re-sent one is stored once: `Nats-Msg-Id`). */
  publish(report: JobReport): Promise<void> {
    return new Promise((resolve, reject) => this.#turns.submit({ report, resolve, reject }));
  }
}

/** The report a message carries; throws on one that is not a report (it is then terminated). */
export function decodeReport(msg: JsMsg): JobReport {
  const r = msg.json<JobReport>();
  if (typeof r?.job !== "string" || typeof r.attempt !== "number" || typeof r.seq !== "number" || !["started", "progress", "finished"].includes(r.kind)) {
    throw new TypeError("not a job report");
  }
  return r;
}
