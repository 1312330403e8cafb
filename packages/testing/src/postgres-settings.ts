/**
 * Server settings for a cluster whose data must survive a crash or a power cut: the devstack's,
 * and so the settings `bench:vm` measures. A control plane acts on agents after a commit (starts
 * a VM, plugs a NIC); a commit the database loses after it was acknowledged is a running VM the
 * database forgot. So every commit waits for its WAL on disk, and throughput comes from sharing
 * one WAL flush among many commits (group commit) instead of from skipping the flush.
 *
 * Given as `-c` flags they override postgresql.conf and `ALTER SYSTEM`, so nothing left in a data
 * directory can quietly turn them off.
 */
export const DURABLE_SETTINGS = {
  // Never lie to the kernel about what is on disk: off can corrupt the cluster on a crash.
  fsync: "on",
  // A commit returns only once its WAL is flushed: off loses acknowledged commits on a crash.
  synchronous_commit: "on",
  // Torn 8 kB pages after a power cut are repaired from WAL; off risks unrecoverable pages.
  full_page_writes: "on",
  // Group commit: when at least `commit_siblings` other transactions are open, a committing
  // backend waits `commit_delay` µs before flushing, so the commits that arrive meanwhile ride on
  // the same fdatasync; a lone commit (fewer siblings, e.g. compute's one-batch-at-a-time
  // writers) does not wait at all. The Postgres docs suggest half the time of one 8 kB flush:
  // fdatasync takes 0.7–2 ms on this class of VM disk, so 500 µs. Measured with 200 concurrent
  // single-row insert+commit clients on a loaded 2-core machine: ~3,000/s without, ~3,800/s at
  // 200 µs, ~4,150/s at 1,000 µs.
  commit_delay: 500,
  commit_siblings: 5,
} as const satisfies Record<string, string | number>;

/**
 * Settings for a throwaway test cluster: no WAL flush, no fsync, no full-page images. A crash may
 * lose or corrupt data, which is fine only because the cluster is deleted afterwards.
 */
export const FAST_SETTINGS = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
} as const satisfies Record<string, string | number>;
