/**
 * `broker instance create|delete --wait`: the broker answers once the instance and its operation
 * (a long job) are recorded, so waiting means reading the operation until it is no longer in
 * progress. It polls GetInstanceOperation — OSB's last_operation, which also settles the instance
 * from its job when the job has ended, so what it says is what GetInstance will say — 100 ms,
 * doubling to 1 s while nothing changes, showing the operation's percent and description with the
 * shared progress display (progress.ts):
 *
 * - Succeeded: exit 0 (a provision is Ready, a deprovision Deleted);
 * - Failed: exit 1 with the instance's error;
 * - `--wait-timeout` bounds the whole wait (exit 1; the operation goes on), Ctrl-C stops it (130);
 *   a poll that finds the broker unreachable (UNAVAILABLE) is tried again until then.
 */
import { Code, StratumError } from "@stratum/core";
import { InstanceStateSchema, OperationKind, OperationState, type GetInstanceOperationResponse, type Instance } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { enumWord } from "./enums";
import { formatElapsed, ProgressRenderer, type ProgressView } from "./progress";
import { TOOL_NAME } from "./tool-name";
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, type Writer } from "./writer";

/** Default of `--wait-timeout`: a provision creates a VM and its root volume, and maybe an EIP. */
export const DEFAULT_INSTANCE_WAIT_MS = 600_000;

const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1_000;

const STATE_WORDS: Readonly<Record<OperationState, string>> = {
  [OperationState.UNSPECIFIED]: "-",
  [OperationState.IN_PROGRESS]: "In progress",
  [OperationState.SUCCEEDED]: "Succeeded",
  [OperationState.FAILED]: "Failed",
};

const KIND_WORDS: Readonly<Record<OperationKind, string>> = {
  [OperationKind.UNSPECIFIED]: "operation",
  [OperationKind.PROVISION]: "provision",
  [OperationKind.UPDATE]: "update",
  [OperationKind.DEPROVISION]: "deprovision",
};

/** The display's view of an operation: its state, percent and what it is doing. */
export function operationView(op: GetInstanceOperationResponse): ProgressView {
  return { state: STATE_WORDS[op.state] ?? String(op.state), stage: KIND_WORDS[op.kind] ?? "", percent: op.percent, bytesDone: 0n, bytesTotal: 0n, message: op.description };
}

/** Where a Ready instance is reached, for the final line. */
function reached(i: Instance | undefined): string {
  if (!i) return "";
  const parts = [i.vmUuid && `vm ${i.vmUuid}`, i.address && `address ${i.address}`, i.eipUuid && `eip ${i.eipUuid}`].filter(Boolean);
  return parts.length ? `: ${parts.join(", ")}` : "";
}

/** The final line and exit status once the operation is no longer in progress; undefined while it is. */
export function operationSettledLine(instanceId: string, op: GetInstanceOperationResponse, elapsed: string): { line: string; code: number } | undefined {
  if (op.state === OperationState.IN_PROGRESS || op.state === OperationState.UNSPECIFIED) return undefined;
  const state = op.instance ? enumWord(InstanceStateSchema, op.instance.state) : STATE_WORDS[op.state];
  const head = `instance ${instanceId} ${state} (waited ${elapsed})`;
  if (op.state === OperationState.SUCCEEDED) return { line: `${head}${op.kind === OperationKind.DEPROVISION ? "" : reached(op.instance)}`, code: EXIT_OK };
  const e = op.instance?.error;
  const why = e && (e.reason || e.message) ? `${e.reason}${e.reason && e.message ? ": " : ""}${e.message}` : op.description;
  return { line: `${head}: the ${KIND_WORDS[op.kind]} failed${why ? `: ${why}` : ""}`, code: EXIT_FAILED };
}

export interface WaitForOperationOptions {
  instanceId: string;
  operation: string;
  /** GetInstanceOperation of that operation. */
  get: (signal: AbortSignal) => Promise<GetInstanceOperationResponse>;
  timeoutMs: number;
  out: Writer;
  signal?: AbortSignal | undefined;
  tty?: boolean;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export interface OperationWaitOutcome {
  code: number;
  /** The operation as last seen (undefined if no poll answered). */
  last: GetInstanceOperationResponse | undefined;
}

function defaultSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Polls the operation until it ends, the timeout, or Ctrl-C; a failed poll other than UNAVAILABLE is thrown. */
export async function waitForOperation(options: WaitForOperationOptions): Promise<OperationWaitOutcome> {
  const { instanceId, signal } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const startedAt = now();
  const renderer = new ProgressRenderer({ out: options.out, ...(options.tty !== undefined ? { tty: options.tty } : {}), now });
  const check = `see where it is with '${TOOL_NAME} broker instance get ${instanceId}'`;
  let last: GetInstanceOperationResponse | undefined;
  let shown = "";
  let pollMs = 0;

  const leave = (line: string, code: number): OperationWaitOutcome => {
    renderer.interrupt();
    options.out.write(`${line}\n`);
    return { code, last };
  };
  for (;;) {
    if (signal?.aborted) return leave(`stopped waiting; the operation ${options.operation} of instance ${instanceId} goes on: ${check}`, EXIT_INTERRUPTED);
    const waited = now() - startedAt;
    if (waited >= options.timeoutMs) {
      const doing = last ? ` (${last.description || STATE_WORDS[last.state]})` : "";
      return leave(`gave up waiting after ${formatElapsed(waited)} (--wait-timeout): the operation ${options.operation} of instance ${instanceId} is still in progress${doing}; it goes on: ${check}`, EXIT_FAILED);
    }
    if (pollMs > 0) {
      await sleep(Math.min(pollMs, options.timeoutMs - waited), signal);
      if (signal?.aborted) continue;
    }
    pollMs = Math.min(MAX_POLL_MS, Math.max(FIRST_POLL_MS, pollMs * 2));
    try {
      last = await options.get(signal ?? new AbortController().signal);
    } catch (e) {
      if (signal?.aborted) continue;
      // The broker unreachable for now (a replica restarting): try again until the timeout.
      if (e instanceof StratumError && e.code === Code.UNAVAILABLE) continue;
      renderer.interrupt();
      throw e;
    }
    const settled = operationSettledLine(instanceId, last, renderer.elapsed());
    if (settled) {
      renderer.finish(settled.line);
      return { code: settled.code, last };
    }
    const view = operationView(last);
    const key = `${view.percent}|${view.message}`;
    if (key !== shown) {
      shown = key;
      pollMs = FIRST_POLL_MS;
      renderer.update(view);
    }
  }
}
