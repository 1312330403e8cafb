import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { nanos, type Bus } from "@stratum/bus";
import { errorMessage, type Logger } from "@stratum/core";
import { decodeReport, ensureReportStream } from "@stratum/jobs";
import type { JobStore } from "../store/job-store";

/** The durable consumer every longjob replica reads the reports through: each report is recorded by one. */
const RECORDER = "longjob-recorder";
/** A report not acknowledged within this long (its replica died mid-batch) is delivered again. */
const ACK_WAIT_MS = 30_000;
/** Delay before a report that could not be recorded (Postgres away) is delivered again. */
const RETRY_DELAY_MS = 1_000;

/**
 * Records the executors' reports. The reports wait in JetStream until a longjob replica has
 * committed them — acknowledged only then, redelivered otherwise — so a report sent while every
 * longjob replica was down, or restarting, is recorded when one is back. The replicas share one
 * durable consumer; the store applies each report once and in order (attempt and seq), whichever
 * replica gets it and however often it is delivered.
 */
export class JobRecorder {
  #stop: (() => Promise<void>) | undefined;
  #stream = "";

  constructor(
    private readonly bus: Bus,
    private readonly store: JobStore,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const stream = (this.#stream = await ensureReportStream(this.bus));
    await this.bus.jsm.consumers.add(stream, {
      durable_name: RECORDER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_ack_pending: 20_000,
    });
    const consumer = await this.bus.js.consumers.get(stream, RECORDER);
    const messages = await consumer.consume({ max_messages: 1_000, callback: (msg) => this.#handle(msg) });
    this.#stop = async () => void (await messages.close());
  }

  /**
   * True when every report stored so far has been recorded (none pending, none unacknowledged):
   * before it resumes the job of a dead executor, an owner makes sure that executor's last reports
   * — its job may have finished just before it died — are not still waiting in the stream.
   */
  async caughtUp(): Promise<boolean> {
    const info = await this.bus.jsm.consumers.info(this.#stream, RECORDER);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }

  #handle(msg: JsMsg): void {
    let report;
    try {
      report = decodeReport(msg);
    } catch (e) {
      // Not a report: it can never be recorded, so it must not come back for ever.
      msg.term(`undecodable job report: ${errorMessage(e)}`);
      this.log.warn("dropped an undecodable job report", { subject: msg.subject, error: errorMessage(e) });
      return;
    }
    this.store.record(report).then(
      () => msg.ack(),
      (e) => {
        this.log.warn("could not record a job report; it will be delivered again", { jobUuid: report.job, error: errorMessage(e), cause: errorMessage((e as { cause?: unknown }).cause ?? "") });
        msg.nak(RETRY_DELAY_MS);
      },
    );
  }
}
