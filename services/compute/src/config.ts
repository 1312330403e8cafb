import { envInt } from "@stratum/runtime";
import { DEFAULT_HOST_SYNC_LEVEL } from "./clients/agents";
import { DEFAULT_PING_INTERVAL_MS } from "./domain/host-manager";
import { DEFAULT_MIGRATE_BACKUP_WAIT_MS } from "./domain/migrate-job";

/** Compute's own environment variables, read and checked with the runtime's. */
export const COMPUTE_ENV = {
  STRATUM_PING_INTERVAL_MS: envInt(`period of the owner's pings to each host (default ${DEFAULT_PING_INTERVAL_MS})`, DEFAULT_PING_INTERVAL_MS, 100, 3_600_000),
  STRATUM_HOST_SYNC_LEVEL: envInt(`agent commands one replica sends one host at once (default ${DEFAULT_HOST_SYNC_LEVEL})`, DEFAULT_HOST_SYNC_LEVEL, 1, 10_000),
  STRATUM_MIGRATE_BACKUP_WAIT_MS: envInt(`how long a migration waits for the backup tasks on its VM's volumes to exit when the request names no bound (default ${DEFAULT_MIGRATE_BACKUP_WAIT_MS})`, DEFAULT_MIGRATE_BACKUP_WAIT_MS, 1_000, 600_000),
};

/**
 * A VM operation's longest run: its longest agent command (vm/start, vm/reboot: 2 min, retries
 * included) plus the cleanup of a failed start (10 s) and its database steps, so the agent's own,
 * precise error reaches the caller first. Also what a graceful stop waits for (shutdownBudget).
 */
export const COMPUTE_TASK_TIMEOUT_MS = 150_000;
