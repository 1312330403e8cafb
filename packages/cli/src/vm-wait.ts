/**
 * `vm … --wait`: compute answers a lifecycle call once it has accepted the operation (the VM in
 * its transient state: Created/Starting, Stopping, Rebooting, Destroying) and the agent does the
 * work afterwards, so waiting for the outcome means following WatchVm until the VM settles
 * (Running, Stopped, Error, Destroyed), and the settled VM says how it went:
 *
 * - the operation's target state with `last_error` empty: it succeeded, exit 0 (compute clears
 *   `last_error` on every success, and a failed reboot ends Running too, with it set);
 * - anything else — back where it came from or Error, with `last_error`; another settled state,
 *   if someone else moved it meanwhile — exit 1, saying which and why;
 * - Ctrl-C: 130; the operation goes on on the server.
 *
 * The VM the call answered is shown first and is the revision the stream starts after, so an
 * operation that was already over (a retried request, a destroy of a destroyed VM) needs no
 * stream at all. A stream that breaks with UNAVAILABLE or CANCELLED (its compute replica stopped)
 * is re-opened on any replica (follow.ts).
 */
import { Code, StratumError } from "@stratum/core";
import { VmState, VmStateSchema, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { enumWord } from "./enums";
import { follow, type FollowOutcome, type OpenStream } from "./follow";
import type { ProgressView } from "./progress";
import { TOOL_NAME } from "./tool-name";
import { EXIT_FAILED, EXIT_OK, type Writer } from "./writer";

/** The VM operations one can wait for. */
export type VmOperation = "create" | "start" | "stop" | "reboot" | "destroy";

/** The state each operation ends in when it succeeds. */
export const VM_OPERATION_TARGET: Readonly<Record<VmOperation, VmState>> = Object.freeze({
  create: VmState.RUNNING,
  start: VmState.RUNNING,
  stop: VmState.STOPPED,
  reboot: VmState.RUNNING,
  destroy: VmState.DESTROYED,
});

/** States no operation is working on: the one an accepted operation ends in is its outcome. */
const SETTLED: ReadonlySet<VmState> = new Set([VmState.RUNNING, VmState.STOPPED, VmState.ERROR, VmState.DESTROYED]);

/** Codes of a WatchVm whose replica went away: any other replica serves it. */
const REOPEN_ON: ReadonlySet<Code> = new Set([Code.UNAVAILABLE, Code.CANCELLED]);

const stateWord = (state: VmState): string => enumWord(VmStateSchema, state);

/** The renderer's view of a VM: its state, nothing to measure. */
export function vmView(vm: Vm): ProgressView {
  return { state: stateWord(vm.state), stage: "", bytesDone: 0n, bytesTotal: 0n, message: "" };
}

/** The line a settled VM ends the display with, and the exit status it means; undefined while an operation works on it. */
export function vmSettledLine(operation: VmOperation, vm: Vm, elapsed: string): { line: string; code: number } | undefined {
  if (!SETTLED.has(vm.state)) return undefined;
  const target = VM_OPERATION_TARGET[operation];
  const head = `vm ${vm.uuid} ${stateWord(vm.state)} (waited ${elapsed})`;
  if (vm.state === target && vm.lastError === "") return { line: head, code: EXIT_OK };
  const why = vm.lastError !== "" ? `: ${vm.lastError}` : `, not ${stateWord(target)}`;
  return { line: `${head}: the ${operation} failed${why}`, code: EXIT_FAILED };
}

export interface WaitForVmOptions {
  operation: VmOperation;
  /** The VM as the accepting call answered it. */
  accepted: Vm;
  watch: OpenStream<Vm>;
  /** Where the progress and the final line go. */
  out: Writer;
  /** Ctrl-C. */
  signal?: AbortSignal | undefined;
  /** Redraw in place. Default: `out.isTTY`. */
  tty?: boolean;
  now?: () => number;
  /** See FollowOptions.maxReconnects. */
  maxReconnects?: number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** Follows the VM until the operation's outcome, Ctrl-C, or the watch fails for good (thrown). */
export function waitForVm(options: WaitForVmOptions): Promise<FollowOutcome<Vm>> {
  const { operation, accepted } = options;
  const uuid = accepted.uuid;
  const check = `see where it is with '${TOOL_NAME} vm get ${uuid}'`;
  return follow<Vm>({
    open: options.watch,
    first: accepted,
    out: options.out,
    signal: options.signal,
    tty: options.tty,
    now: options.now,
    maxReconnects: options.maxReconnects,
    sleep: options.sleep,
    followed: {
      revision: (vm) => vm.revision,
      settle: (vm, elapsed) => vmSettledLine(operation, vm, elapsed),
      view: vmView,
      interruptedLine: (vm) => `stopped waiting; the ${operation} of vm ${uuid} goes on${vm ? ` (${stateWord(vm.state)})` : ""}: ${check}`,
      keptBreakingLine: () => `stopped waiting: the watch of vm ${uuid} kept breaking; the ${operation} goes on: ${check}`,
      endedEarly: () => new StratumError(Code.UNAVAILABLE, `the watch of vm ${uuid} ended before the ${operation} did`),
      reopenOn: REOPEN_ON,
    },
  });
}
