import { performance } from "node:perf_hooks";
import type { VmMigrationState, VolumeTaskState } from "@stratum/agent-protocol";

/** What happened, without where and when (the {@link Timeline} adds those). */
export type TimelineEvent =
  /** A command arrived (framing valid), before fencing, dedup, holds and faults. */
  | { event: "command"; command: string; taskId?: string }
  | { event: "migrate-copy-start"; vmUuid: string; volumeUuids: string[] }
  | { event: "migrate-copy-end"; vmUuid: string; outcome: Exclude<VmMigrationState, "copying"> }
  | { event: "volume-task-start"; taskUuid: string; volumeUuid: string; kind: string }
  | { event: "volume-task-exit"; taskUuid: string; volumeUuid: string; kind: string; state: VolumeTaskState };

/**
 * One entry: `seq` counts from 1 across the sim and never restarts (not even on clear), so a
 * reader's `since` cursor stays valid; `atMs` is monotonic (performance.now) ms since the sim
 * started, fractional, so two entries' order and distance are exact even within a millisecond.
 */
export type TimelineEntry = { seq: number; atMs: number; hostUuid: string } & TimelineEvent;

/** Entries a timeline keeps by default: the newest 100,000. */
export const TIMELINE_LIMIT = 100_000;

/**
 * The sim's append-only log of what happened on every host, in one order, for property tests
 * ("no backup ran on a disk while its VM's memory copy ran") and benchmarks. Bounded: the oldest
 * entries go once there are more than `limit`.
 */
export class Timeline {
  private entries: TimelineEntry[] = [];
  private seq = 0;
  private readonly origin = performance.now();

  constructor(private readonly limit = TIMELINE_LIMIT) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`timeline limit must be a positive integer, got ${limit}`);
  }

  append(hostUuid: string, event: TimelineEvent): void {
    this.entries.push({ seq: ++this.seq, atMs: performance.now() - this.origin, hostUuid, ...event });
    // Trimmed in batches so appending stays O(1) amortized; reads never see more than `limit`.
    if (this.entries.length > this.limit + Math.ceil(this.limit / 10)) this.entries.splice(0, this.entries.length - this.limit);
  }

  /** A copy of the entries kept (at most `limit`), oldest first; with `since`, only those with a greater seq. */
  list(since = 0): TimelineEntry[] {
    const kept = this.entries.length > this.limit ? this.entries.length - this.limit : 0;
    const first = this.entries[kept]?.seq ?? this.seq + 1;
    // Seqs are contiguous, so the first entry after `since` is found by arithmetic.
    const from = Math.max(kept, kept + Math.floor(since) - first + 1);
    return this.entries.slice(from).map((e) => ({ ...e, ...("volumeUuids" in e ? { volumeUuids: [...e.volumeUuids] } : {}) }));
  }

  /** Forgets every entry; seq keeps counting. */
  clear(): void {
    this.entries = [];
  }
}
