import { randomUUID } from "node:crypto";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { FlowError, runFlow } from "@stratum/flow";
import { errorMessage, Code, StratumError, type Logger } from "@stratum/core";
import { fenceOf, type HostAgents } from "../clients/agents";
import type { HostStore } from "../store/host-store";
import type { VmRow, VmStateValue } from "../store/schema";
import type { VmStore } from "../store/vm-store";
import { isFenced } from "@stratum/agent-client";
import { leaseLost } from "@stratum/db";
import { TRANSIENT_STATES } from "../store/vm-store";
import { uuidForRequest } from "@stratum/validation";
import { crashPoint } from "@stratum/runtime";
import type { VmNetwork } from "../clients/network";
import type { VmNicRow } from "../store/schema";
import { nicSpecs } from "./vm-nics";
import { DEFAULT_ROOT_VOLUME_BYTES, type VmResourcesBatcher, type VmResourcesWish } from "./vm-resources-batcher";
import { assertCanRun, assertNicIpChangeable, stateInvalid, TRANSITIONS, vmBusy, type Transition, type VmOperation } from "./vm-state";

export interface VmSpec {
  uuid: string;
  name: string;
  cpu: number;
  memory: number;
  /** Empty: the allocator chooses. */
  hostUuid: string;
  /** Recorded with the VM for its owner's reference; the kit's idempotency answers retries. */
  clientRequestId: string;
  /** Its root volume: size (0: the default) and storage (empty: storage chooses). */
  rootVolume?: { sizeBytes: number; primaryStorageUuid: string };
  /** A NIC on each of these L3 networks, in this order (device 0 first). */
  l3NetworkUuids?: readonly string[];
}

export interface VmManagerDeps {
  vms: VmStore;
  hosts: HostStore;
  agents: HostAgents;
  queue: ChainTaskQueue;
  log: Logger;
  /** This replica's incarnation, as VMs record their actor (`vms.last_actor`). */
  incarnation: () => string;
  /** True when `actor` (see `vms.last_actor`) is a live replica incarnation. */
  isLive: (actor: string) => boolean;
  /** Repairs a VM a dead replica left mid-operation, in its queue (`VmReconciler.repair`); false if it was not abandoned. */
  repair: (vmUuid: string) => Promise<boolean>;
  /** Gives placed VMs their root volumes and NIC addresses, a batch per turn. */
  resources: VmResourcesBatcher;
  /** Network, for the NIC address changes (SetVmNicIp). */
  network: VmNetwork;
  /** Told when a destroy has marked a VM's volumes for release. */
  volumesToRelease: () => void;
}

interface CreateContext {
  vm: VmRow;
  /** The VM's state while the flow runs, so a rollback releases it from the right state. */
  state: VmStateValue;
  /**
   * False when the agent may still run the VM: its start failed and so did the cleanup. The VM
   * then keeps its host and capacity (in Error) so that a later destroy reaches the agent.
   */
  agentClean: boolean;
}

/** An operation accepted: the VM as the accept left it, and the rest of the work, if any, to queue. */
interface Accepted {
  vm: VmRow;
  work?: { name: string; run: () => Promise<void> };
}

/** How long a create's rollback waits for the agent to clean up a half-started VM. */
const ROLLBACK_AGENT_TIMEOUT_MS = 10_000;

/**
 * VM lifecycle, as Nova and Kubernetes do it: a call answers once its operation is accepted —
 * recorded in the VM's transient state by a conditional write from the state the call read —
 * and the agent work and the final transition run afterwards in the replica's chain-task queue
 * under `vm-<uuid>`. No caller holds a connection on an agent; WatchVm shows the outcome.
 *
 * The accept runs outside the queue, so it never waits behind an agent call: while an operation
 * works, the VM is in its transient state and a second one is refused at once (`VM_BUSY`). The
 * transient state is the lock and the operation's record, visible to every reader and to the
 * takeover (`VmReconciler`), which settles a VM whose replica died before its work ended. The
 * store fences every write (this replica's lease; a VM another live incarnation works on is not
 * this one's), and every agent command carries the fence its last write of the VM returned.
 */
export class VmManager {
  /** VMs with an operation of this replica between the start of its accept and the end of its work. */
  readonly #inFlight = new Map<string, number>();
  /** The last accept of each VM with one running or waiting: the next one runs after it. */
  readonly #accepting = new Map<string, Promise<void>>();

  constructor(private readonly d: VmManagerDeps) {}

  /**
   * True while an operation of this replica is being accepted or worked on for the VM: the
   * takeover scan must not repair it as left behind (its transient state is this operation's).
   */
  busy(uuid: string): boolean {
    return this.#inFlight.has(uuid);
  }

  /**
   * Creates a VM: allocates host capacity and records it (Created), gets its root volume from
   * storage (RootVolumeBatcher), and answers with it; a capacity error — of hosts or of primary
   * storage — is answered at once, and nothing is recorded then. In the VM's queue, the
   * agent then starts it → Running. If the agent fails, the completed steps roll back: the agent
   * is told to destroy whatever it may have started, the capacity goes back to the host and the
   * VM ends in Error with the agent's error recorded. (A retry with the same client request id
   * is answered by the serving chain with the first outcome; one after the replica that ran the
   * create died gets here and finds the VM — or, when it died before the VM's root volume and NICs
   * were recorded, i.e. before any answer, finds it removed by the takeover as a failed create, and
   * places it afresh.)
   */
  create(spec: VmSpec): Promise<VmRow> {
    return this.#accept(spec.uuid, () => this.#place(spec, true));
  }

  /** The accept of a create (see {@link VmManager#create}); `rerun`: a VM this very request placed before is taken up again. */
  async #place(spec: VmSpec, rerun: boolean): Promise<Accepted> {
    let vm: VmRow | undefined;
    try {
      vm = await this.d.vms.insertPlaced(
        { uuid: spec.uuid, name: spec.name, cpu: spec.cpu, memory: spec.memory, clientRequestId: spec.clientRequestId || null, nicCount: spec.l3NetworkUuids?.length ?? 0 },
        spec.hostUuid || undefined,
      );
    } catch (e) {
      if (rerun && (await this.#isRerun(spec, e))) return this.#createAgain(spec);
      throw withResource(e, spec.uuid);
    }
    if (!vm) throw await this.#noCapacity(spec);
    // Placed (Created, capacity held), nothing asked of storage or network yet, no event.
    crashPoint("compute:create-placed");
    // Before the answer: a VM whose root volume storage cannot make, or one of whose NICs
    // network can give no address, is rolled back (removed, its capacity given back, what it
    // did get marked for release) and its create answers that error — it records nothing.
    let placed: { vm: VmRow; nics: VmNicRow[] };
    try {
      placed = await this.d.resources.attach(vm, resourcesWish(spec));
    } catch (e) {
      throw withResource(e, spec.uuid);
    }
    return { vm: placed.vm, work: { name: "create", run: () => this.#startCreated(placed.vm, placed.nics) } };
  }

  /**
   * The operations on an existing VM; each answers with the VM in the operation's transient
   * state. `requestKey` is the call's request id (AIP-155), recorded with each change of the VM:
   * a retry of the request after the replica running it died finds it there and gets the VM as
   * the operation (or the takeover) has left it, without running the operation twice.
   */
  start(uuid: string, requestKey?: string): Promise<VmRow> {
    return this.#accept(uuid, () => this.#acceptOp("start", uuid, {}, requestKey));
  }

  stop(uuid: string, force: boolean, requestKey?: string): Promise<VmRow> {
    return this.#accept(uuid, () => this.#acceptOp("stop", uuid, { force }, requestKey));
  }

  reboot(uuid: string, requestKey?: string): Promise<VmRow> {
    return this.#accept(uuid, () => this.#acceptOp("reboot", uuid, {}, requestKey));
  }

  destroy(uuid: string, requestKey?: string): Promise<VmRow> {
    return this.#accept(uuid, () => this.#acceptOp("destroy", uuid, {}, requestKey));
  }

  /**
   * Moves one of the VM's NICs to another address of its network (`ip`, or the next free one
   * when empty), in the VM's queue, so no operation on the VM runs meanwhile: the VM must be
   * Running or Stopped (FAILED_PRECONDITION naming its state otherwise; `VM_BUSY` while an
   * operation holds it, at once, without waiting in the queue) and the NIC its own (NOT_FOUND
   * naming both). Network moves the address
   * (ChangeNicIp, idempotent by a request id derived from the call's; the elastic IPs bound to the
   * NIC follow it), then the NIC records it with the VM's next revision. The VM, with the change.
   */
  async setNicIp(uuid: string, nicUuid: string, ip: string, clientRequestId: string): Promise<VmRow> {
    // Refused at once while an operation holds the VM, as every accept is: never queued blind
    // behind its agent work. Checked again in the queue, where it counts.
    assertNicIpChangeable(uuid, (await this.get(uuid)).state);
    return this.d.queue.submit({
      signature: `vm-${uuid}`,
      name: "set-nic-ip-vm",
      run: async () => {
        // In the queue: a VM a dead replica left transient is refused as busy until the takeover
        // (which queues here too) has settled it, within its scan period.
        const vm = await this.get(uuid);
        assertNicIpChangeable(uuid, vm.state);
        const nics = (await this.d.vms.nicsOf([vm])).get(uuid) ?? [];
        if (!nics.some((n) => n.uuid === nicUuid)) {
          throw new StratumError(Code.NOT_FOUND, `vm ${uuid} has no NIC ${nicUuid}`, { reason: "NIC_NOT_FOUND", resources: { vmUuid: uuid, nicUuid } });
        }
        const requestId = clientRequestId ? uuidForRequest("vm-nic-ip", clientRequestId) : "";
        const newIp = await this.d.network.changeNicIp(nicUuid, ip, requestId);
        const changed = await this.d.vms.setNicIp(uuid, nicUuid, newIp);
        if (!changed) throw await this.#lost(uuid, vm.state);
        return changed;
      },
    });
  }

  async get(uuid: string): Promise<VmRow> {
    const vm = await this.d.vms.get(uuid);
    if (!vm) throw StratumError.notFound("vm", uuid);
    return vm;
  }

  /**
   * Runs an accept and queues the work it leaves, marking the VM busy on this replica from
   * before the accept's first read until the work's end, so the takeover scan never mistakes
   * the operation's transient state for one left behind. The accepts of one VM run one after the
   * other (each a read and a write, never an agent call), so of two concurrent calls the second
   * reads what the first wrote and is refused for that state, or runs after it. The work runs to
   * its end under the agent commands' own timeouts, whatever the caller does: reverting the
   * database because a caller left would leave it disagreeing with the host.
   */
  #accept(uuid: string, accept: () => Promise<Accepted>): Promise<VmRow> {
    this.#inFlight.set(uuid, (this.#inFlight.get(uuid) ?? 0) + 1);
    const run = async (): Promise<VmRow> => {
      let queued = false;
      try {
        const { vm, work } = await accept();
        if (work) {
          this.#queue(uuid, work);
          queued = true;
        }
        return vm;
      } finally {
        if (!queued) this.#release(uuid);
      }
    };
    const before = this.#accepting.get(uuid);
    const mine = before ? before.then(run) : run();
    const tail = mine.then(
      () => {},
      () => {},
    );
    this.#accepting.set(uuid, tail);
    void tail.then(() => {
      if (this.#accepting.get(uuid) === tail) this.#accepting.delete(uuid);
    });
    return mine;
  }

  #queue(uuid: string, work: NonNullable<Accepted["work"]>): void {
    this.d.queue
      .submit({ signature: `vm-${uuid}`, name: `${work.name}-vm`, run: work.run })
      .catch((e: unknown) => {
        // Its VM stays transient; the takeover scan settles it once this replica is done with it.
        this.d.log.warn("vm operation failed after it was accepted", { vmUuid: uuid, operation: work.name, error: errorMessage(e) });
      })
      .finally(() => this.#release(uuid));
  }

  #release(uuid: string): void {
    const n = (this.#inFlight.get(uuid) ?? 1) - 1;
    if (n > 0) this.#inFlight.set(uuid, n);
    else this.#inFlight.delete(uuid);
  }

  /** The rest of a create, in the VM's queue: Starting → the agent starts it (with its NICs) → Running, or rolled back to Error. */
  async #startCreated(placed: VmRow, nics: readonly VmNicRow[]): Promise<void> {
    const { agents, hosts } = this.d;
    const taskId = `create-${placed.uuid}`;
    const ctx: CreateContext = { vm: placed, state: "Created", agentClean: true };
    try {
      await runFlow<CreateContext>(
        "create-vm",
        [
          {
            // Done by the accept (VmManager.create); what its rollback undoes.
            name: "allocate-host",
            run: () => {},
            rollback: async (c, error) => {
              const failed = c.agentClean
                ? await this.d.vms.transitionReleasing(placed.uuid, c.state, "Error", errorMessage(error))
                : await this.d.vms.transition(placed.uuid, c.state, "Error", `${errorMessage(error)}; the agent may still run it: destroy the VM to clean up`);
              if (!failed) this.d.log.warn("create rollback matched no row", { vmUuid: placed.uuid, expectedState: c.state });
            },
          },
          {
            name: "start-on-agent",
            run: async (c) => {
              const vm = await this.#move(c.vm, "Starting");
              c.vm = vm;
              c.state = "Starting";
              const host = await hosts.agentOf(vm.hostUuid!);
              if (!host) throw StratumError.notFound("host", vm.hostUuid!);
              try {
                await agents.vm(host, "vm/start", startBody(vm, nics), taskId, fenceOf(vm));
              } catch (e) {
                // The agent may have started the VM although the call failed (a reset or a
                // timeout after it acted): nothing may run there that the database calls Error.
                c.agentClean = await this.#undoStart(host, vm, taskId);
                throw e;
              }
            },
            rollback: async (c) => {
              const host = await hosts.agentOf(c.vm.hostUuid!);
              if (host) c.agentClean = await this.#undoStart(host, c.vm, taskId);
            },
          },
          {
            name: "record-running",
            run: async (c) => {
              c.vm = await this.#move(c.vm, "Running", "");
              c.state = "Running";
            },
          },
        ],
        ctx,
      );
    } catch (e) {
      if (!(e instanceof FlowError)) throw e;
      for (const f of e.rollbackFailures) this.d.log.warn("create rollback step failed", { vmUuid: placed.uuid, step: f.step, error: errorMessage(f.error) });
      this.d.log.info("vm create failed", { vmUuid: placed.uuid, step: e.step, error: errorMessage(e.cause) });
    }
  }

  /** True when the create failed only because this very request's VM exists: a retry of it. */
  async #isRerun(spec: VmSpec, e: unknown): Promise<boolean> {
    if (!spec.clientRequestId || !(e instanceof StratumError) || (e.reason !== "VM_ALREADY_EXISTS" && e.reason !== "REQUEST_ID_IN_USE")) return false;
    const existing = await this.d.vms.get(spec.uuid);
    return existing?.clientRequestId === spec.clientRequestId;
  }

  /**
   * A create retried after the replica that ran it died (or lost it): the VM exists, and is the
   * answer, once any takeover has settled it. A VM the takeover found not running is started, as
   * the create asked; one in Error says why in `last_error`.
   */
  async #createAgain(spec: VmSpec): Promise<Accepted> {
    let vm: VmRow;
    try {
      vm = await this.#settled(spec.uuid);
    } catch (e) {
      // Its first attempt had placed it and died before recording it: the repair removed it as a
      // failed create (VmReconciler), and this retry places it afresh, as if it were the first.
      if (e instanceof StratumError && e.code === Code.NOT_FOUND) return this.#place(spec, false);
      throw e;
    }
    // Its first attempt may have ended between placement and recording the root volume and NICs
    // (and is still this replica's or a live one's, so not removed): storage answers the one it
    // made then (one per VM), or makes it now; network the addresses it gave the same NICs (their
    // uuids derive from the VM's), or gives them now.
    const nicsRecorded = vm.nicCount === 0 || ((await this.d.vms.nicsOf([vm])).get(vm.uuid)?.length ?? 0) > 0;
    if ((!vm.rootVolumeUuid || !nicsRecorded) && vm.hostUuid && vm.state !== "Destroyed") {
      const placed = await this.d.resources.attach(vm, { ...resourcesWish(spec), nicsRecorded });
      // Recorded only now, with its first event: the rest of the create runs, as it would have.
      if (placed.vm.state === "Created") return { vm: placed.vm, work: { name: "create", run: () => this.#startCreated(placed.vm, placed.nics) } };
      vm = placed.vm;
    }
    // The key is the create's own (on the VM since its insert): not a start already accepted.
    if (vm.state === "Stopped") return this.#acceptOp("start", spec.uuid, {}, spec.clientRequestId, false);
    return { vm };
  }

  /**
   * The VM, after its repair if a dead replica left it mid-operation: an accept must not refuse
   * as busy a VM nobody works on. The repair (in the VM's queue) asks the agent, which answers
   * once the dead replica's command has ended. A VM this replica left transient without working
   * on it (its operation could not record its end) is the takeover scan's.
   */
  async #settled(uuid: string): Promise<VmRow> {
    const vm = await this.get(uuid);
    if (!TRANSIENT_STATES.includes(vm.state) || vm.lastActor === this.d.incarnation() || this.d.isLive(vm.lastActor)) return vm;
    return (await this.d.repair(uuid)) ? this.get(uuid) : vm;
  }

  /**
   * Accepts one operation on an existing VM: source state → transient state, a conditional write
   * from the state read, so of two concurrent calls (on any replicas) one wins and the other is
   * refused naming the state it lost to. The work left: the agent → target state; when the agent
   * fails, the VM goes back to the state it came from with the agent's error (naming the host
   * and command) in `last_error`.
   */
  async #acceptOp(op: VmOperation, uuid: string, extra: Record<string, unknown>, requestKey?: string, retryCheck = true): Promise<Accepted> {
    const vm = await this.#settled(uuid);
    // This request's operation was accepted before (its replica died before answering): the VM
    // shows how far it got, and it runs once.
    if (retryCheck && requestKey && vm.opRequest === requestKey) return { vm };
    if (op === "destroy" && vm.state === "Destroyed") return { vm };
    if (TRANSIENT_STATES.includes(vm.state)) throw vmBusy(op, uuid, vm.state);
    const t = assertCanRun(op, uuid, vm.state);
    const key = requestKey ?? vm.opRequest ?? undefined;
    const moving = await this.d.vms.transition(uuid, vm.state, t.via, undefined, key);
    if (!moving) throw await this.#refused(op, uuid, vm.state);
    return { vm: moving, work: { name: op === "stop" && extra.force ? "force-stop" : op, run: () => this.#operate(op, vm, moving, t, extra, key) } };
  }

  /** The work of an accepted operation, in the VM's queue (see {@link VmManager#acceptOp}). */
  async #operate(op: VmOperation, before: VmRow, moving: VmRow, t: Transition, extra: Record<string, unknown>, key: string | undefined): Promise<void> {
    const uuid = before.uuid;
    try {
      const host = before.hostUuid ? await this.d.hosts.agentOf(before.hostUuid) : undefined;
      // A VM without a host (a create that failed) has nothing on any agent to act on.
      const body = op === "start" ? startBody(before, (await this.d.vms.nicsOf([before])).get(uuid) ?? []) : { vmUuid: uuid, ...extra };
      if (host) await this.d.agents.vm(host, `vm/${op}`, body, `${op}-${uuid}-${randomUUID()}`, fenceOf(moving));
    } catch (e) {
      if (isFenced(e)) throw await this.#lost(uuid, t.via);
      const back = await this.d.vms.transition(uuid, t.via, before.state, errorMessage(e), key);
      if (!back) throw await this.#lost(uuid, t.via);
      this.d.log.info("vm operation failed on the agent; the vm is back where it was", { vmUuid: uuid, operation: op, state: before.state, error: errorMessage(e) });
      return;
    }
    const done = op === "destroy" ? await this.d.vms.transitionReleasing(uuid, t.via, t.to, "", key) : await this.d.vms.transition(uuid, t.via, t.to, "", key);
    if (!done) throw await this.#lost(uuid, t.via);
    // The destroy marked its volumes for release in the same statement; storage is told now.
    if (op === "destroy") this.d.volumesToRelease();
  }

  /**
   * Why an accept's write matched nothing: the VM moved since it was read (busy with another
   * operation now, or in a state the operation cannot start from), or see {@link VmManager#lost}.
   */
  async #refused(op: VmOperation, uuid: string, expected: VmStateValue): Promise<StratumError> {
    const now = await this.d.vms.get(uuid).catch(() => undefined);
    if (now && now.state !== expected) {
      if (TRANSIENT_STATES.includes(now.state)) return vmBusy(op, uuid, now.state);
      if (!TRANSITIONS[op].from.includes(now.state)) return stateInvalid(op, uuid, now.state);
    }
    return this.#lost(uuid, expected);
  }

  /** Destroys on the agent whatever a failed start may have left running; false if that failed too. */
  async #undoStart(host: { uuid: string; agentUrl: string }, vm: VmRow, taskId: string): Promise<boolean> {
    const vmUuid = vm.uuid;
    try {
      await this.d.agents.vm(host, "vm/destroy", { vmUuid }, `${taskId}-undo`, fenceOf(vm), AbortSignal.timeout(ROLLBACK_AGENT_TIMEOUT_MS));
      return true;
    } catch (e) {
      this.d.log.warn("could not clean up a failed start on the agent", { vmUuid, hostUuid: host.uuid, error: errorMessage(e) });
      return false;
    }
  }

  /** Conditional update from the state `vm` was read in, keeping its request key; see {@link VmManager#lost} when it matched nothing. */
  async #move(vm: VmRow, to: VmStateValue, lastError?: string): Promise<VmRow> {
    const moved = await this.d.vms.transition(vm.uuid, vm.state, to, lastError, vm.opRequest ?? undefined);
    if (!moved) throw await this.#lost(vm.uuid, vm.state);
    return moved;
  }

  /**
   * Why a write of the VM matched nothing. Another replica took it over (this one was paused or cut
   * off past its lease, and was fenced): UNAVAILABLE `VM_TAKEN_OVER`, so the caller's retry — with
   * the same request id — reaches the new owner, which answers with the operation's outcome.
   * Otherwise the VM moved under this operation: ABORTED `VM_CONCURRENT_UPDATE`.
   */
  async #lost(uuid: string, expected: VmStateValue): Promise<StratumError> {
    const now = await this.d.vms.get(uuid).catch(() => undefined);
    if (now && now.lastActor !== this.d.incarnation()) {
      this.d.log.warn("vm taken over by another replica: this replica's write was fenced", { vmUuid: uuid, expectedState: expected, actor: now.lastActor });
      return new StratumError(Code.UNAVAILABLE, `vm ${uuid} was taken over by replica ${now.lastActor.split("@")[0]} while this one was unresponsive; retry`, {
        reason: "VM_TAKEN_OVER",
        resources: { vmUuid: uuid },
      });
    }
    // Woken from a pause past its lease, before renewing it: not this replica's to write yet.
    if (!(await this.d.vms.leaseHeld().catch(() => true))) return leaseLost(this.d.incarnation());
    this.d.log.warn("vm state update matched no row", { vmUuid: uuid, expectedState: expected });
    return new StratumError(Code.ABORTED, `vm ${uuid} changed concurrently (expected ${expected}${now ? `, it is ${now.state}` : ""}); retry`, {
      reason: "VM_CONCURRENT_UPDATE",
      resources: { vmUuid: uuid, ...(now ? { state: now.state } : {}) },
    });
  }


  async #noCapacity(spec: VmSpec): Promise<StratumError> {
    const resources: Record<string, string> = { vmUuid: spec.uuid };
    if (spec.hostUuid) {
      resources.hostUuid = spec.hostUuid;
      const host = await this.d.hosts.get(spec.hostUuid);
      if (!host) return StratumError.notFound("host", spec.hostUuid);
      const why =
        host.status !== "Connected" ? `it is ${host.status}` : host.state !== "Enabled" ? `it is ${host.state}` : `it has ${host.cpuCapacity - host.cpuUsed} CPU and ${host.memoryCapacity - host.memoryUsed} bytes free`;
      return new StratumError(Code.FAILED_PRECONDITION, `host ${spec.hostUuid} cannot take a VM of ${spec.cpu} CPU and ${spec.memory} bytes: ${why}`, { reason: "HOST_UNAVAILABLE", resources });
    }
    return new StratumError(Code.RESOURCE_EXHAUSTED, `no connected, enabled host has ${spec.cpu} CPU and ${spec.memory} bytes of memory free`, { reason: "NO_HOST_CAPACITY", resources });
  }
}


function resourcesWish(spec: VmSpec): VmResourcesWish {
  return {
    rootVolume: { sizeBytes: spec.rootVolume?.sizeBytes || DEFAULT_ROOT_VOLUME_BYTES, primaryStorageUuid: spec.rootVolume?.primaryStorageUuid ?? "" },
    l3NetworkUuids: spec.l3NetworkUuids ?? [],
  };
}

/** A start command carries the whole VM spec, its NICs included: the agent may have never seen the VM (or forgot it). */
function startBody(vm: VmRow, nics: readonly VmNicRow[]): Record<string, unknown> {
  const body: Record<string, unknown> = { vmUuid: vm.uuid, name: vm.name, cpuNum: vm.cpu, memoryBytes: vm.memory };
  if (nics.length > 0) body.nics = nicSpecs(nics);
  return body;
}


/** Adds the VM's id to an error's resources, keeping its code, reason and message. */
function withResource(e: unknown, vmUuid: string): StratumError {
  const err = StratumError.from(e);
  if (err.resources.vmUuid) return err;
  return new StratumError(err.code, err.message, { reason: err.reason, resources: { ...err.resources, vmUuid }, violations: err.violations, cause: e });
}
