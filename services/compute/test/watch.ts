import type { Vm, VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { Client } from "@stratum/rpc";
import { Code, StratumError } from "@stratum/core";

/** States no operation leaves a VM in for long: a watch waiting for another one has its answer. */
const SETTLED = new Set([VmState.RUNNING, VmState.STOPPED, VmState.ERROR, VmState.DESTROYED]);

/**
 * Follows a VM through WatchVm until it is in `state`, and returns it. Fails, naming the state
 * and `last_error`, when the VM settles in another stable state instead (an operation that
 * failed): a test waiting for Running learns why it never came. A stream that breaks or ends
 * before Destroyed (its replica stopping) is opened again, as any watching client does.
 */
export async function untilVmState(client: Client<typeof VmService>, uuid: string, state: VmState, timeoutMs = 30_000): Promise<Vm> {
  const deadline = Date.now() + timeoutMs;
  let last: Vm | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { vm } of client.watchVm({ uuid }, { timeoutMs: Math.max(1, deadline - Date.now()) })) {
        last = vm!;
        if (last.state === state) return last;
        // Called after an operation was accepted, the VM is transient or already at its outcome.
        if (SETTLED.has(last.state)) throw new Error(`vm ${uuid} settled ${VmState[last.state]} instead of ${VmState[state]}${last.lastError ? `: ${last.lastError}` : ""}`);
      }
    } catch (e) {
      if (!(e instanceof StratumError) || !REOPEN.has(e.code) || Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`WatchVm of ${uuid}: the VM was ${last ? VmState[last.state] : "unseen"} after ${timeoutMs} ms, not ${VmState[state]}`);
    await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 500)));
  }
}

/** Codes of a watch whose replica went away: open it again (on another replica). */
const REOPEN = new Set([Code.UNAVAILABLE, Code.CANCELLED]);

/** Every VM WatchVm streams for `uuid` until it ends (after Destroyed) or `stop` says so. */
export async function watchAll(client: Client<typeof VmService>, uuid: string, stop: (vm: Vm) => boolean = () => false, timeoutMs = 30_000): Promise<Vm[]> {
  const seen: Vm[] = [];
  for await (const { vm } of client.watchVm({ uuid }, { timeoutMs })) {
    seen.push(vm!);
    if (stop(vm!)) break;
  }
  return seen;
}

/**
 * An accepted operation followed to its end: awaits the call (CreateVm, StopVm…), then watches
 * its VM until `state` (see {@link untilVmState}).
 */
export async function settle(client: Client<typeof VmService>, call: Promise<{ vm?: Vm }>, state: VmState): Promise<Vm> {
  const { vm } = await call;
  return untilVmState(client, vm!.uuid, state);
}

/**
 * Follows a VM through WatchVm until no operation works on it (Running, Stopped, Error or
 * Destroyed), and returns it: after concurrent calls, where which of them ran is the question.
 * Re-opens a broken stream like {@link untilVmState}.
 */
export async function untilSettled(client: Client<typeof VmService>, uuid: string, timeoutMs = 30_000): Promise<Vm> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { vm } of client.watchVm({ uuid }, { timeoutMs: Math.max(1, deadline - Date.now()) })) if (SETTLED.has(vm!.state)) return vm!;
    } catch (e) {
      if (!(e instanceof StratumError) || !REOPEN.has(e.code) || Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`WatchVm of ${uuid}: the VM did not settle within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 500)));
  }
}
