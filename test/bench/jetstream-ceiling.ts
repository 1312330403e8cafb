import { connectBus, nanos, type Bus } from "@stratum/bus";
import { drive, type PhaseFigures } from "./latencies";

type ConsumerConfig = Parameters<Bus["jsm"]["consumers"]["add"]>[1];

/**
 * The ceiling a job's report path cannot beat on this nats-server: C publishers each doing
 * publish (awaiting JetStream's ack, as an executor's report does) → delivery to a durable
 * explicit-ack consumer → ack, one message in flight per publisher. It is the same shape as the
 * recorder (`consume()` with a callback, the ack sent without waiting for its confirmation), on a
 * stream and consumer of its own (file storage, as the report stream), deleted afterwards.
 */
export async function jetstreamCeiling(natsUrl: string, roundTrips: number, warmup: number, concurrency: number): Promise<PhaseFigures> {
  const tag = `${process.pid}_${Date.now().toString(36)}`;
  const stream = `BENCH_JOBS_CEILING_${tag}`;
  const durable = `bench-jobs-ceiling-${tag}`;
  const prefix = `benchjobs.${tag}`;
  // Publishers and consumer on connections of their own, as an executor and a recorder are.
  const publisher = await connectBus({ servers: natsUrl, name: "bench-jobs/ceiling-publisher" });
  const consumerBus = await connectBus({ servers: natsUrl, name: "bench-jobs/ceiling-consumer" });
  let stop: (() => Promise<void>) | undefined;
  try {
    await consumerBus.jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    await consumerBus.jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: "explicit" as ConsumerConfig["ack_policy"],
      deliver_policy: "all" as ConsumerConfig["deliver_policy"],
      ack_wait: nanos(30_000),
      max_ack_pending: 20_000,
    });
    // One waiter per publisher: its subject names it, and it has one message in flight.
    const waiting = new Map<number, () => void>();
    const consumer = await consumerBus.js.consumers.get(stream, durable);
    const messages = await consumer.consume({
      max_messages: 1_000,
      callback: (msg) => {
        msg.ack();
        const worker = Number(msg.subject.slice(prefix.length + 1));
        const resolve = waiting.get(worker);
        waiting.delete(worker);
        resolve?.();
      },
    });
    stop = async () => void (await messages.close());
    const payload = JSON.stringify({ job: "00000000-0000-4000-8000-000000000000", attempt: 1, seq: 1, kind: "finished", outcome: { state: "Succeeded" } });
    const roundTrip = async (worker: number) => {
      // Registered before the publish: the delivery may beat the publish's own ack back.
      const delivered = new Promise<void>((resolve) => waiting.set(worker, resolve));
      await publisher.js.publish(`${prefix}.${worker}`, payload);
      await delivered;
    };
    await drive(warmup, concurrency, roundTrip);
    return await drive(roundTrips, concurrency, roundTrip);
  } finally {
    await stop?.().catch(() => {});
    await consumerBus.jsm.streams.delete(stream).catch(() => {});
    await publisher.close();
    await consumerBus.close();
  }
}
