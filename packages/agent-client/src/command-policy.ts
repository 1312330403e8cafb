/**
 * How the client treats each agent command: its default timeout and whether it may be retried
 * without a task id.
 *
 * "Idempotent" here is stricter than "the agent tolerates a repeat". A retry happens after a
 * connection failure, when the first attempt may still be running on the agent (agents do not
 * stop a command because its connection died). Without a task id the retry runs alongside it,
 * and the call can return while the first attempt is still in progress — so a late `vm/stop`
 * could land after the next operation on the VM started it again, or a late `eip/apply` after its
 * release. That is harmless only for commands that read, or whose effect cannot be undone by
 * later work. Everything else is retried only with a task id: the agent then makes the retry
 * wait for, and answer from, the first execution, so the command runs once and the call returns
 * only when it has finished.
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
 * Defaults by command kind. Timeouts follow what the agent does synchronously: probes are short
 * (a ping that takes long means the host is in trouble), lifecycle commands wait for the
 * hypervisor, migration copies memory over the network, rule and task-control commands are quick.
 */
export const DEFAULT_COMMAND_POLICIES: Readonly<Record<string, CommandPolicy>> = {
  // Reads and the handshake: repeating them changes nothing.
  "host/ping": { idempotent: true, timeoutMs: 5 * SECOND },
  "host/vms": { idempotent: true, timeoutMs: 10 * SECOND },
  "host/connect": { idempotent: true, timeoutMs: 30 * SECOND },
  "volume/task/status": { idempotent: true, timeoutMs: 10 * SECOND },
  // Cancelling a specific task is final: a late repeat finds it cancelled or finished and does nothing.
  "volume/task/cancel": { idempotent: true, timeoutMs: 30 * SECOND },
  // VM lifecycle: a late repeat can undo the next operation on the VM.
  "vm/start": { idempotent: false, timeoutMs: 2 * MINUTE },
  "vm/stop": { idempotent: false, timeoutMs: MINUTE },
  "vm/reboot": { idempotent: false, timeoutMs: 2 * MINUTE },
  "vm/destroy": { idempotent: false, timeoutMs: MINUTE },
  "vm/migrate": { idempotent: false, timeoutMs: 15 * MINUTE },
  // Network rules: a late apply can resurrect a released rule, and vice versa.
  "nic/apply": { idempotent: false, timeoutMs: 30 * SECOND },
  "nic/release": { idempotent: false, timeoutMs: 30 * SECOND },
  "eip/apply": { idempotent: false, timeoutMs: 30 * SECOND },
  "eip/release": { idempotent: false, timeoutMs: 30 * SECOND },
  // Starting a task twice runs it twice (unless the caller names the task uuid and a task id).
  "volume/task/start": { idempotent: false, timeoutMs: 30 * SECOND },
};

/** Commands not in the table: assume the worst (not idempotent) and a generous deadline. */
export const FALLBACK_COMMAND_POLICY: CommandPolicy = { idempotent: false, timeoutMs: MINUTE };
