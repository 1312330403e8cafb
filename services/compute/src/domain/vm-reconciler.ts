import type { ChainTaskQueue } from "@stratum/chain-task";
import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";
import { isFinalJobState } from "@stratum/jobs";
import { fenceOf, type HostAgents } from "../clients/agents";
import type { MigrationPeers } from "../clients/peers";
import { migrationJobOf, stopOrphanCopy } from "./migrate-job";
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
  /** This replica's incarnation. */
  incarnation(): string;
  /**
   * True while an operation of this replica is between its accept and the end of its work on the
   * VM (`VmManager.busy`): its transient state is that operation's, not one left behind. The
   * accept writes the state before the work is queued, so the queue alone cannot tell.
   */
  busy(vmUuid: string): boolean;
  /** Longjob, asked whether the job of a VM left Migrating still runs (then its resume settles the VM). */
  peers: Pick<MigrationPeers, "job">;
  /** Told when a removed create has marked its volumes (and NICs) for release, so they go out now. */
  releasesMarked?: () => void;
}


/** Default period of the scan for VMs left mid-operation, besides the scan on every ring change. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 2_000;

/**
 * Takeover: a VM left in a transient state by a replica that died mid-operation is finished or
 * rolled back by its owner, after asking the agent what actually happened, so nothing stays
 * Starting/Stopping/Destroying for ever with its capacity held and every later call refused.
 *
 * A VM is abandoned when its `last_actor` — the replica incarnation that moved it last — has lost
 * its lease (the fencing authority, in Postgres) and is gone from the membership too: a VM an
 * incarnation with a lease is working on (its own operation, or the old owner's while a joining
 * replica takes over, or a paused replica's that has not yet timed out) is left alone. The repair
 * runs in the VM's chain-task queue, so it never interleaves with an operation of this replica:
 *
 *   claim  → the VM's `last_actor` becomes this replica and its fence moves on, in one fenced
 *            update that matches only if the old actor's lease is still gone; from here on the
 *            old actor's writes match nothing and the agent refuses its commands;
 *   ask    → the agent, with the new fence: it answers once any command the old owner had
 *            already set going on the VM has ended, so what it reports is final;
 *   settle → running → Running, otherwise Stopped (capacity kept, the VM can be started or
 *            destroyed); a destroy is completed (re-sent to the agent) and its capacity released.
 *            `last_error` says what happened. A create that never recorded its root volume and
 *            NICs is removed instead, as a failed create is (see {@link VmReconciler#repairHere}).
 *
 * The same repair serves this replica's own VMs left transient with no operation of its working
 * on them: an operation that failed before it could record its end (Postgres went away under it).
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
      const me = this.d.incarnation();
      candidates = (await this.d.vms.abandoned()).filter((vm) => (vm.lastActor === me ? !this.#busy(vm.uuid) : this.d.owns(vm.uuid) && !this.d.isLive(vm.lastActor)));
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

  /** True while an operation of this replica on the VM is being accepted, queued or running. */
  #busy(uuid: string): boolean {
    return this.d.busy(uuid) || this.d.queue.runningCount(`vm-${uuid}`) + this.d.queue.pendingCount(`vm-${uuid}`) > 0;
  }

  #reconcile(uuid: string): Promise<boolean> {
    return this.d.queue.submit({ signature: `vm-${uuid}`, name: "reconcile-vm", dedupKey: "reconcile", run: () => this.repairHere(uuid) });
  }

  /**
   * Repairs the VM in its queue if it is abandoned (see {@link VmReconciler#repairHere}): for an
   * accept that found a VM a dead replica left mid-operation, which must not refuse it as busy.
   */
  repair(uuid: string): Promise<boolean> {
    return this.#reconcile(uuid);
  }

  /**
   * Repairs the VM now if it is abandoned (see the class); false if it is not. For a caller that
   * already runs in the VM's chain-task queue (an operation that found it so), which must not
   * queue behind itself.
   */
  async repairHere(uuid: string): Promise<boolean> {
    const found = await this.d.vms.get(uuid);
    // Re-read in the VM's queue: an operation may have finished it, or a live replica taken it.
    const own = found?.lastActor === this.d.incarnation();
    if (!found || !TRANSIENT_STATES.includes(found.state) || (!own && this.d.isLive(found.lastActor))) return false;
    if (found.state === "Migrating" && !(await this.#migrationOver(found))) return false;
    const vm = await this.d.vms.claim(uuid, found.state);
    if (!vm) return false; // moved meanwhile, or its actor renewed its lease: not abandoned after all
    if (vm.state === "Migrating") return this.#settleMigration(found, vm, own);
    if (vm.state === "Created" && !vm.rootVolumeUuid) return this.#removeUnfinishedCreate(found, vm);
    const host = vm.hostUuid ? await this.d.hosts.agentOf(vm.hostUuid) : undefined;
    const onAgent = host ? (await this.d.agents.vms(host, undefined, fenceOf(vm))).vms.find((v) => v.vmUuid === uuid)?.state : undefined;
    const left = own
      ? `an operation on this replica ended without recording its outcome while the VM was ${vm.state}`
      : `replica ${found.lastActor.split("@")[0] || "(unknown)"} stopped while the VM was ${vm.state}`;
    if (vm.state === "Destroying") {
      if (host && onAgent !== undefined) await this.d.agents.vm(host, "vm/destroy", { vmUuid: uuid }, `reconcile-destroy-${uuid}`, fenceOf(vm));
      // The operation's request key stays on the VM: a retry of it finds its outcome (see VmManager).
      const done = await this.d.vms.transitionReleasing(uuid, vm.state, "Destroyed", `${left}; the destroy was completed by its new owner`, vm.opRequest ?? undefined);
      return this.#changed(found, done, onAgent);
    }
    const to: VmStateValue = onAgent === "running" ? "Running" : "Stopped";
    const why = `${left}; the agent reports it ${onAgent ?? "absent"}, so it is ${to}`;
    return this.#changed(found, await this.d.vms.transition(uuid, vm.state, to, why, vm.opRequest ?? undefined), onAgent);
  }

  /**
   * A create accepted but not recorded: placed (Created, capacity held) and then left before its
   * root volume and NICs were recorded with its first event (∅ → Created). It is removed exactly
   * as a failed create is (VmStore.finishCreates), not completed nor settled Stopped, because:
   * CreateVm answers only once that record is made, so nobody was told of this VM — its caller saw
   * the call fail and retries it (same request id: placed again from scratch, adopting what storage
   * and network kept), or gives up and leaves nothing behind; a VM kept Stopped would have no root
   * volume or NICs, could be started without them, would leak what storage and network made for it
   * and would start its events at Created → Stopped. Nor can its owner complete it: what the create
   * asked for (root volume size and storage, L3 networks) is in the request, not on the row. No
   * agent knows it either: the agent hears of a VM first from the vm/start after that record.
   */
  async #removeUnfinishedCreate(found: VmRow, vm: VmRow): Promise<boolean> {
    const gone = await this.d.vms.removeUnfinishedCreate(vm.uuid, vm.fence);
    if (!gone) {
      this.d.log.warn("vm takeover matched no row", { vmUuid: vm.uuid, expectedState: vm.state });
      return false;
    }
    this.d.releasesMarked?.();
    this.d.log.warn("vm create removed: it was left before its root volume and nics were recorded", { vmUuid: vm.uuid, lastActor: found.lastActor, hostUuid: gone.hostUuid });
    return true;
  }

  /**
   * Whether a Migrating VM's job is over: a job still Waiting, Running or Canceling is resumed by
   * longjob on the VM's owner and settles the VM itself (it knows its reservation and its agent
   * task); only a VM whose job ended without settling it (cancelled before its resumed attempt
   * ran, or failed not knowing where the VM runs) is the takeover's.
   */
  async #migrationOver(vm: VmRow): Promise<boolean> {
    const jobUuid = migrationJobOf(vm.opRequest);
    if (!jobUuid) return true;
    const job = await this.d.peers.job(jobUuid);
    return !job || isFinalJobState(job.state);
  }

  /**
   * A Migrating VM whose job is over: the agents say where it runs. On the reserved target → the
   * migration is recorded (host, capacity); otherwise it stays on its source and the target's
   * reservation is released.
   */
  async #settleMigration(found: VmRow, vm: VmRow, own: boolean): Promise<boolean> {
    const key = vm.opRequest ?? "";
    // A copy its dead attempt started may still run: it is aborted and over before the target is asked.
    if (vm.migrateTargetUuid) await stopOrphanCopy(this.d, vm);
    const target = vm.migrateTargetUuid ? await this.d.hosts.agentOf(vm.migrateTargetUuid) : undefined;
    const onTarget = target ? (await this.d.agents.vms(target)).vms.some((v) => v.vmUuid === vm.uuid && v.state === "running") : false;
    const left = own ? "its migration ended without recording where the VM runs" : `replica ${found.lastActor.split("@")[0] || "(unknown)"} stopped while the VM was Migrating`;
    const done = onTarget
      ? await this.d.vms.endMigration(vm.uuid, key, "switch", "")
      : await this.d.vms.endMigration(vm.uuid, key, "revert", `${left}; the VM does not run on the migration's target, so it stays on its source`);
    return this.#changed(found, done, onTarget ? "running on the target" : undefined);
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

