import type { ChainTaskQueue } from "@stratum/chain-task";
import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";
import type { HostAgents } from "../clients/agents";
import type { HostStore } from "../store/host-store";
import type { VmRow, VmStateValue } from "../store/schema";
import { TRANSIENT_STATES, type VmStore } from "../store/vm-store";

export interface VmReconcilerDeps {
  vms: VmStore;
  hosts: HostStore;
  agents: HostAgents;
  queue: ChainTaskQueue;
  log: Logger;
  /** True when this replica owns the VM on the ring. */
  owns(vmUuid: string): boolean;
  /** True when `actor` (`<replicaId>@<startedAt>`, see `vms.last_actor`) is a live replica incarnation. */
  isLive(actor: string): boolean;
}

/** Default period of the scan for VMs left mid-operation, besides the scan on every ring change. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 2_000;

/**
 * Takeover: a VM left in a transient state by a replica that died mid-operation is finished or
 * rolled back by its owner, after asking the agent what actually happened, so nothing stays
 * Starting/Stopping/Destroying for ever with its capacity held and every later call refused.
 *
 * A VM is abandoned when its `last_actor` — the replica incarnation that moved it last — is no
 * live replica: a VM a live replica is working on (its own operation, or the old owner's while
 * a joining replica takes over) is left alone. The repair runs in the VM's chain-task queue, so
 * it never interleaves with an operation of this replica, and re-reads the VM there. What the
 * agent reports decides the stable state: running → Running, otherwise Stopped (capacity kept,
 * the VM can be started or destroyed); a destroy is completed (re-sent to the agent, which
 * deduplicates it) and its capacity released. `last_error` says what happened.
 *
 * What this does not do yet (fencing): a replica that was only paused, not dead, may wake up and
 * write after its VM was repaired; the conditional updates keep it from moving a VM from a state
 * it did not see, but nothing stops its agent command.
 */
export class VmReconciler {
  #timer: NodeJS.Timeout | undefined;
  #offRing: (() => void) | undefined;
  #scanning: Promise<number> | undefined;

  constructor(private readonly d: VmReconcilerDeps) {}

  /** Scans now, on every ring change (`onRingChange` subscribes) and every `intervalMs`. */
  start(onRingChange: (fn: () => void) => () => void, intervalMs = DEFAULT_RECONCILE_INTERVAL_MS): void {
    void this.scan();
    this.#offRing = onRingChange(() => void this.scan());
    this.#timer = setInterval(() => void this.scan(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#offRing?.();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One pass over the transient VMs: repairs those this replica owns that no live replica works
   * on; resolves with how many it repaired. A pass already running is joined, not doubled.
   */
  scan(): Promise<number> {
    return (this.#scanning ??= this.#scan().finally(() => (this.#scanning = undefined)));
  }

  async #scan(): Promise<number> {
    let candidates: VmRow[];
    try {
      candidates = (await this.d.vms.transient()).filter((vm) => this.d.owns(vm.uuid) && !this.d.isLive(vm.lastActor));
    } catch (e) {
      this.d.log.warn("takeover scan failed", { error: errorMessage(e) });
      return 0;
    }
    const repaired = await Promise.all(
      candidates.map((vm) =>
        this.#reconcile(vm.uuid).catch((e) => {
          // The next pass tries again (an agent that is down now may answer then).
          this.d.log.warn("vm takeover failed, will retry", { vmUuid: vm.uuid, state: vm.state, lastActor: vm.lastActor, error: errorMessage(e) });
          return false;
        }),
      ),
    );
    return repaired.filter(Boolean).length;
  }

  #reconcile(uuid: string): Promise<boolean> {
    return this.d.queue.submit({ signature: `vm-${uuid}`, name: "reconcile-vm", dedupKey: "reconcile", run: () => this.#repair(uuid) });
  }

  async #repair(uuid: string): Promise<boolean> {
    const vm = await this.d.vms.get(uuid);
    // Re-read in the VM's queue: an operation may have finished it, or a live replica taken it.
    if (!vm || !TRANSIENT_STATES.includes(vm.state) || this.d.isLive(vm.lastActor)) return false;
    const host = vm.hostUuid ? await this.d.hosts.agentOf(vm.hostUuid) : undefined;
    const onAgent = host ? (await this.d.agents.vms(host)).vms.find((v) => v.vmUuid === uuid)?.state : undefined;
    const left = `replica ${vm.lastActor.split("@")[0] || "(unknown)"} stopped while the VM was ${vm.state}`;
    if (vm.state === "Destroying") {
      if (host && onAgent !== undefined) await this.d.agents.vm(host, "vm/destroy", { vmUuid: uuid }, `reconcile-destroy-${uuid}`);
      const done = await this.d.vms.transitionReleasing(uuid, vm.state, "Destroyed", `${left}; the destroy was completed by its new owner`);
      return this.#changed(vm, done, onAgent);
    }
    const to: VmStateValue = onAgent === "running" ? "Running" : "Stopped";
    const why = `${left}; the agent reports it ${onAgent ?? "absent"}, so it is ${to}`;
    return this.#changed(vm, await this.d.vms.transition(uuid, vm.state, to, why), onAgent);
  }

  #changed(before: VmRow, after: VmRow | undefined, onAgent: string | undefined): boolean {
    if (!after) {
      this.d.log.warn("vm takeover matched no row", { vmUuid: before.uuid, expectedState: before.state });
      return false;
    }
    this.d.log.warn("vm taken over after its replica stopped mid-operation", { vmUuid: before.uuid, from: before.state, to: after.state, lastActor: before.lastActor, agentState: onAgent ?? "absent" });
    return true;
  }
}

