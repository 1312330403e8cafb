import { JetStreamApiCodes, JetStreamApiError, type StreamConfig } from "@nats-io/jetstream";
import type { Bus } from "./connect";

/**
 * Creates a stream, or brings an existing one to this config: every replica calls this at start,
 * so it must be idempotent and tolerate a racing replica creating the stream first.
 */
export async function ensureStream(bus: Bus, stream: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
  // An existing stream is updated to the replica count asked for, too (JetStream moves it).
  const config = { num_replicas: bus.replicas, ...stream };
  try {
    await bus.jsm.streams.info(config.name);
    await bus.jsm.streams.update(config.name, config);
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound)) throw e;
    try {
      await bus.jsm.streams.add(config);
    } catch (addError) {
      // Another replica won the race: the stream exists now, which is all we need.
      await bus.jsm.streams.info(config.name).catch(() => Promise.reject(addError));
    }
  }
}

/** Milliseconds to the nanoseconds JetStream configs use. */
export function nanos(ms: number): number {
  return ms * 1_000_000;
}
