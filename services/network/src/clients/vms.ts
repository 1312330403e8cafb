import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { VmState, type VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";

const CALL_TIMEOUT_MS = 10_000;

/**
 * The VM states in which a VM's elastic-IP rules belong on its host: it runs there (or is being
 * rebooted, or copied to another host — until the switch it still runs on its source). Compute
 * writes its EIP-sync marks on the transitions into and out of these, with the same list.
 */
export const EIP_HOST_STATES: ReadonlySet<VmState> = new Set([VmState.RUNNING, VmState.REBOOTING, VmState.MIGRATING]);

/** Where a VM's elastic-IP rules belong: its host while it runs there, else nowhere. */
export interface VmPlacement {
  readonly vmUuid: string;
  readonly state: VmState;
  /** Set when its EIP rules belong on this host (see {@link EIP_HOST_STATES}). */
  readonly eipHostUuid: string | null;
}

/**
 * Compute, as network sees it: where VMs run. Compute owns VMs and their placement; network
 * reads it when it syncs an EIP instead of keeping a copy that compute would have to keep right.
 */
export class VmDirectory {
  constructor(private readonly vms: ServiceRouter<typeof VmService>) {}

  /** The VM's placement; a VM compute does not know (destroyed long ago) runs nowhere. */
  async placement(vmUuid: string, signal?: AbortSignal): Promise<VmPlacement> {
    try {
      const { vm } = await this.vms.call(vmUuid, (c) => c.getVm({ uuid: vmUuid }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      const state = vm?.state ?? VmState.DESTROYED;
      return { vmUuid, state, eipHostUuid: EIP_HOST_STATES.has(state) && vm?.hostUuid ? vm.hostUuid : null };
    } catch (e) {
      if (e instanceof StratumError && e.code === Code.NOT_FOUND) return { vmUuid, state: VmState.DESTROYED, eipHostUuid: null };
      throw e;
    }
  }

  /** The VMs whose EIP rules belong on the host now (running there, rebooting, or migrating away). */
  async eipVmsOn(hostUuid: string, signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    let pageToken = "";
    do {
      const page = await this.vms.call(hostUuid, (c) => c.listVms({ hostUuid, pageSize: 1000, pageToken }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
      out.push(...page.vms.filter((v) => EIP_HOST_STATES.has(v.state) && v.hostUuid === hostUuid).map((v) => v.uuid));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }
}
