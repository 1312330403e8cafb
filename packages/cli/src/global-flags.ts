/**
 * Flags every command accepts, before or after the command words. Kept apart from the commands so
 * help, parsing and `main` agree on one list.
 */
import type { FlagSpecs } from "./args";

/**
 * Default per-call deadline. Creating a VM answers only once the agent has started it, so this is
 * generous; `--timeout` changes it.
 */
export const DEFAULT_TIMEOUT_MS = 60_000;

export const GLOBAL_FLAGS: FlagSpecs = {
  endpoint: {
    type: "string",
    value: "HOST:PORT",
    description: "compute API address(es), comma-separated, for the host and vm commands (default: $STRATUM_ENDPOINT, else the devstack's .data/devstack/endpoints.json, else 127.0.0.1:7101)",
  },
  "longjob-endpoint": {
    type: "string",
    value: "HOST:PORT",
    description: "longjob API address(es), for the job commands (default: $STRATUM_LONGJOB_ENDPOINT, else the devstack's endpoints.json \"longjob\" list, else 127.0.0.1:7401)",
  },
  "storage-endpoint": {
    type: "string",
    value: "HOST:PORT",
    description:
      "storage API address(es), for the primary-storage, backup-storage, volume and backup commands (default: $STRATUM_STORAGE_ENDPOINT, else the devstack's endpoints.json \"storage\" list, else 127.0.0.1:7301)",
  },
  "network-endpoint": {
    type: "string",
    value: "HOST:PORT",
    description: "network API address(es), for the network and eip commands (default: $STRATUM_NETWORK_ENDPOINT, else the devstack's endpoints.json \"network\" list, else 127.0.0.1:7601)",
  },
  "broker-endpoint": {
    type: "string",
    value: "HOST:PORT",
    description: "broker API address(es), for the broker commands (default: $STRATUM_BROKER_ENDPOINT, else the devstack's endpoints.json \"broker\" list, else 127.0.0.1:7501)",
  },
  timeout: { type: "string", value: "SECONDS", description: `deadline of each call (default ${DEFAULT_TIMEOUT_MS / 1000}); --wait follows a job or VM operation however long it runs` },
  json: { type: "boolean", description: "print protobuf JSON (for scripts) instead of a table" },
  help: { type: "boolean", short: "h", description: "show help" },
};
