import { envInt } from "@stratum/runtime";

/** How often each replica scans for EIP syncs due (failed ones waiting for their retry, kicks lost with a replica). */
export const DEFAULT_EIP_COLLECT_INTERVAL_MS = 1_000;

/** The network service's own variables, read and checked with the runtime's. */
export const NETWORK_ENV = {
  STRATUM_EIP_COLLECT_INTERVAL_MS: envInt(`period of each replica's scan for elastic-IP syncs due (default ${DEFAULT_EIP_COLLECT_INTERVAL_MS})`, DEFAULT_EIP_COLLECT_INTERVAL_MS, 50, 600_000),
};
