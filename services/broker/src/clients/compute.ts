import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { VmState, type Vm, type VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";

/** Deadline of a quick call to compute (a create, a destroy, a read). */
const CALL_TIMEOUT_MS = 15_000;
/** Codes of a watch whose replica went away: open it again (on the VM's new owner). */
const REOPEN = new Set([Code.UNAVAILABLE, Code.CANCELLED]);
const SETTLED = new Set([VmState.RUNNING, VmState.STOPPED, VmState.ERROR, VmState.DESTROYED]);

export interface VmSpec {
  uuid: string;
  name: string;
  cpu: number;
  memoryBytes: bigint;
  rootVolumeBytes: bigint;
  l3NetworkUuids: string[];
}

/**
 * Compute as a provision uses it: create a VM (with its root volume and NICs), destroy it, and
 * follow it (WatchVm, event-driven) until it settles. Every mutation carries a request id derived
 * from the VM, so a job resumed on another replica repeats it harmlessly.
 */
export class ComputeClient {
  constructor(private readonly vms: ServiceRouter<typeof VmService>) {}

  async create(s: VmSpec): Promise<Vm> {
    const { vm } = await this.vms.call(s.uuid, (c) =>
      c.createVm(
        { uuid: s.uuid, name: s.name, cpu: s.cpu, memoryBytes: s.memoryBytes, rootVolumeSizeBytes: s.rootVolumeBytes, l3NetworkUuids: s.l3NetworkUuids, clientRequestId: `broker-vm-${s.uuid}` },
        { timeoutMs: CALL_TIMEOUT_MS },
      ),
    );
    return vm!;
  }

  /** Asks compute to destroy the VM; false when compute has no such VM (never created, or forgotten). */
  async destroy(uuid: string, clientRequestId: string): Promise<boolean> {
    try {
      await this.vms.call(uuid, (c) => c.destroyVm({ uuid, clientRequestId }, { timeoutMs: CALL_TIMEOUT_MS }));
      return true;
    } catch (e) {
      if (StratumError.from(e).code === Code.NOT_FOUND) return false;
      throw e;
    }
  }

  /**
   * Follows the VM until no operation works on it (Running, Stopped, Error or Destroyed) and
   * returns it; undefined when compute has no such VM. Aborted by `signal` (a cancel of the job).
   */
  async settled(uuid: string, signal: AbortSignal): Promise<Vm | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.vms.call(uuid, async (c) => {
          let last: Vm | undefined;
          for await (const { vm } of c.watchVm({ uuid }, { signal })) {
            last = vm!;
            if (SETTLED.has(last.state)) return last;
          }
          if (last?.state === VmState.DESTROYED) return last;
          throw new StratumError(Code.UNAVAILABLE, `the watch of VM ${uuid} ended before it settled`, { reason: "WATCH_ENDED", resources: { vmUuid: uuid } });
        });
      } catch (e) {
        const err = StratumError.from(e);
        if (err.code === Code.NOT_FOUND) return undefined;
        if (signal.aborted || !REOPEN.has(err.code)) throw e;
      }
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 1_000)));
    }
  }
}
