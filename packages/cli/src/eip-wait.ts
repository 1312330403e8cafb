/**
 * `eip attach|detach|delete --wait`: network answers once the change is recorded and the agent
 * work follows, so waiting for the outcome means reading the EIP until its observed status
 * settles. There is no WatchEip, so it polls GetEip (100 ms, doubling to 1 s while nothing
 * changes), showing each change with the shared progress display (progress.ts):
 *
 * - settled is Active, Down or Detached: no agent work is going on. `attach` succeeds at Active
 *   (the rule is on the VM's host) or Down (bound to a VM that is not running: it is applied
 *   when the VM starts); `detach` at Detached; any other settled status — an attach whose apply
 *   failed and was rolled back ends Detached — is exit 1 with the EIP's `status_reason`;
 * - `delete` succeeds once GetEip answers NOT_FOUND;
 * - Error is not an outcome: network retries the failed apply or release, so the wait goes on,
 *   the line showing the reason;
 * - `--wait-timeout` bounds the whole wait (exit 1; the work goes on), Ctrl-C stops it (130);
 *   a poll that finds network unreachable (UNAVAILABLE) is tried again until then.
 */
import { Code, StratumError } from "@stratum/core";
import { EipStatus, EipStatusSchema, type Eip } from "@stratum/proto/stratum/network/v1/eip_pb";
import { enumWord } from "./enums";
import { formatElapsed, ProgressRenderer, type ProgressView } from "./progress";
import { TOOL_NAME } from "./tool-name";
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, type Writer } from "./writer";

/** The EIP operations one can wait for. */
export type EipOperation = "attach" | "detach" | "delete";

/** Default of `--wait-timeout`. */
export const DEFAULT_EIP_WAIT_MS = 120_000;

/** Statuses at which no agent work is going on. */
const SETTLED: ReadonlySet<EipStatus> = new Set([EipStatus.ACTIVE, EipStatus.DOWN, EipStatus.DETACHED]);

/** The settled statuses each operation succeeds at (delete: none; it succeeds once the EIP is gone). */
const SUCCEEDS_AT: Readonly<Record<EipOperation, ReadonlySet<EipStatus>>> = {
  attach: new Set([EipStatus.ACTIVE, EipStatus.DOWN]),
  detach: new Set([EipStatus.DETACHED]),
  delete: new Set(),
};

const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1_000;

const statusWord = (status: EipStatus): string => enumWord(EipStatusSchema, status);

/** The display's view of an EIP: its status, and the reason of an Error. */
export function eipView(eip: Eip): ProgressView {
  return { state: statusWord(eip.status), stage: "", bytesDone: 0n, bytesTotal: 0n, message: eip.status === EipStatus.ERROR ? eip.statusReason : "" };
}

/** Where a settled EIP is, for its final line. */
function where(eip: Eip): string {
  if (eip.status === EipStatus.ACTIVE) return ` on host ${eip.hostUuid}, ${eip.vipIp} → ${eip.guestIp}`;
  if (eip.status === EipStatus.DOWN) return `: ${eip.vipIp} → ${eip.guestIp} of vm ${eip.vmUuid}, which is not running`;
  return "";
}

/** The final line and exit status when `eip` ends the wait for `operation`; undefined while it goes on. */
export function eipSettledLine(operation: EipOperation, eip: Eip, elapsed: string): { line: string; code: number } | undefined {
  if (operation === "delete" || !SETTLED.has(eip.status)) return undefined;
  const head = `eip ${eip.uuid} ${statusWord(eip.status)} (waited ${elapsed})`;
  if (SUCCEEDS_AT[operation].has(eip.status)) return { line: `${head}${where(eip)}`, code: EXIT_OK };
  const wanted = [...SUCCEEDS_AT[operation]].map(statusWord).join(" or ");
  return { line: `${head}: the ${operation} failed${eip.statusReason ? `: ${eip.statusReason}` : `, not ${wanted}`}`, code: EXIT_FAILED };
}

export interface WaitForEipOptions {
  operation: EipOperation;
  uuid: string;
  /** The EIP as the call answered it; undefined when the call said it is gone (a delete). */
  accepted: Eip | undefined;
  /** GetEip: the EIP, or undefined when it is NOT_FOUND. */
  get: (signal: AbortSignal) => Promise<Eip | undefined>;
  /** The whole wait's bound. */
  timeoutMs: number;
  /** Where the progress and the final line go. */
  out: Writer;
  /** Ctrl-C. */
  signal?: AbortSignal | undefined;
  /** Redraw in place. Default: `out.isTTY`. */
  tty?: boolean;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export interface EipWaitOutcome {
  code: number;
  /** The EIP as last seen; undefined once it is gone. */
  last: Eip | undefined;
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

/** Polls the EIP until the operation's outcome, the timeout, or Ctrl-C; a failed poll other than UNAVAILABLE is thrown. */
export async function waitForEip(options: WaitForEipOptions): Promise<EipWaitOutcome> {
  const { operation, uuid, signal } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const startedAt = now();
  const renderer = new ProgressRenderer({ out: options.out, ...(options.tty !== undefined ? { tty: options.tty } : {}), now });
  const check = `see where it is with '${TOOL_NAME} eip get ${uuid}'`;
  let last = options.accepted;
  let seen: bigint | undefined;
  let pollMs = FIRST_POLL_MS;

  const end = (line: string, code: number): EipWaitOutcome => {
    renderer.finish(line);
    return { code, last };
  };
  const leave = (line: string, code: number): EipWaitOutcome => {
    renderer.interrupt();
    options.out.write(`${line}\n`);
    return { code, last };
  };
  /** The outcome when `eip` (undefined: gone) ends the wait. */
  const show = (eip: Eip | undefined): EipWaitOutcome | undefined => {
    last = eip;
    if (eip === undefined) {
      return operation === "delete" ? end(`eip ${uuid} deleted (waited ${renderer.elapsed()})`, EXIT_OK) : end(`eip ${uuid} is gone (waited ${renderer.elapsed()}): deleted meanwhile`, EXIT_FAILED);
    }
    const settled = eipSettledLine(operation, eip, renderer.elapsed());
    if (settled) return end(settled.line, settled.code);
    if (seen === undefined || eip.revision > seen) {
      seen = eip.revision;
      pollMs = FIRST_POLL_MS;
      renderer.update(eipView(eip));
    }
    return undefined;
  };

  const first = show(options.accepted);
  if (first) return first;
  for (;;) {
    if (signal?.aborted) return leave(`stopped waiting; the ${operation} of eip ${uuid} goes on${last ? ` (${statusWord(last.status)})` : ""}: ${check}`, EXIT_INTERRUPTED);
    const waited = now() - startedAt;
    if (waited >= options.timeoutMs) {
      const reason = last?.statusReason ? `: ${last.statusReason}` : "";
      return leave(`gave up waiting after ${formatElapsed(waited)} (--wait-timeout): eip ${uuid} is still ${last ? statusWord(last.status) : "there"}${reason}; the ${operation} goes on: ${check}`, EXIT_FAILED);
    }
    await sleep(Math.min(pollMs, options.timeoutMs - waited), signal);
    pollMs = Math.min(MAX_POLL_MS, pollMs * 2);
    if (signal?.aborted) continue;
    let eip: Eip | undefined;
    try {
      eip = await options.get(signal ?? new AbortController().signal);
    } catch (e) {
      if (signal?.aborted) continue;
      // Network unreachable for now (a replica restarting): try again until the timeout.
      if (e instanceof StratumError && e.code === Code.UNAVAILABLE) continue;
      renderer.interrupt();
      throw e;
    }
    const outcome = show(eip);
    if (outcome) return outcome;
  }
}
