import { AGENT_COMMANDS, AGENT_COMMAND_NAMES, VOLUME_TASK_WAIT_MAX_MS, type AgentCommand } from "@stratum/agent-protocol";

/**
 * How the client treats each agent command: its default timeout and whether it may be retried
 * without a task id. Whether a command is idempotent is the protocol's word
 * (`AGENT_COMMANDS` in `@stratum/agent-protocol`, which says why "idempotent" there is stricter
 * than "the agent tolerates a repeat"); the deadlines are the client's own choice.
 */
export interface CommandPolicy {
  /** Safe to send again without a task id, even if the first attempt is still running. */
  readonly idempotent: boolean;
  /** Default deadline of a call (all attempts and backoff included), in ms. */
  readonly timeoutMs: number;
}

const SECOND = 1_000;
const MINUTE = 60 * SECOND;

/**
 * Deadlines follow what the agent does synchronously: probes are short (a ping that takes long
 * means the host is in trouble), lifecycle commands wait for the hypervisor, migration copies
 * memory over the network, rule and task-control commands are quick. A `Record` over every
 * protocol command, so a command added to the protocol cannot be left without one.
 */
const DEFAULT_TIMEOUTS_MS: Readonly<Record<AgentCommand, number>> = {
  "host/ping": 5 * SECOND,
  "host/vms": 10 * SECOND,
  "host/connect": 30 * SECOND,
  "volume/task/status": 10 * SECOND,
  "volume/task/cancel": 30 * SECOND,
  // A long-poll: the agent answers by its own deadline (at most VOLUME_TASK_WAIT_MAX_MS), so the
  // client's must be longer, or a wait still legitimately pending would look like a hung agent.
  "volume/task/wait": VOLUME_TASK_WAIT_MAX_MS + 30 * SECOND,
  "vm/start": 2 * MINUTE,
  "vm/stop": MINUTE,
  "vm/reboot": 2 * MINUTE,
  "vm/destroy": MINUTE,
  // Answers when the memory copy ends: long enough for a copy; a caller that knows the VM's size
  // passes its own deadline per call (`timeoutMs`).
  "vm/migrate": 10 * MINUTE,
  // Probes and control of a running copy: quick, or the host is in trouble.
  "vm/migrate/status": 10 * SECOND,
  "vm/migrate/abort": 10 * SECOND,
  "nic/apply": 30 * SECOND,
  "nic/release": 30 * SECOND,
  "eip/apply": 30 * SECOND,
  "eip/release": 30 * SECOND,
  // A read of the host's NAT table, like host/vms: slow means the host is in trouble.
  "eip/list": 10 * SECOND,
  "volume/task/start": 30 * SECOND,
};

/** The policy of every protocol command: the protocol's idempotency, the client's deadline. */
export const DEFAULT_COMMAND_POLICIES: Readonly<Record<string, CommandPolicy>> = Object.fromEntries(
  AGENT_COMMAND_NAMES.map((command) => [command, { idempotent: AGENT_COMMANDS[command].idempotent, timeoutMs: DEFAULT_TIMEOUTS_MS[command] }]),
);

/** Commands not in the protocol: assume the worst (not idempotent) and a generous deadline. */
export const FALLBACK_COMMAND_POLICY: CommandPolicy = { idempotent: false, timeoutMs: MINUTE };
