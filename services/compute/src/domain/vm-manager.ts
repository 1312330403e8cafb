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
import { assertCanRun, TRANSITIONS, type VmOperation } from "./vm-state";

export interface VmSpec {
  uuid: string;
  name: string;
  cpu: number;
  memory: number;
  /** Empty: the allocator chooses. */
  hostUuid: string;
  /** Recorded with the VM for its owner's reference; the kit's idempotency answers retries. */
  clientRequestId: string;
}

export interface VmManagerDeps {
  vms: VmStore;
  hosts: HostStore;
  agents: HostAgents;
  queue: ChainTaskQueue;
  log: Logger;
  /** This replica's incarnation, as VMs record their actor (`vms.last_actor`). */
  incarnation: () => string;
  /** Repairs a VM left mid-operation by a dead replica, from inside its queue (`VmReconciler.repairHere`). */
  repairHere: (vmUuid: string) => Promise<boolean>;
}

interface CreateContext {
  vm?: VmRow;
  /** The VM's state while the flow runs, so a rollback releases it from the right state. */
  state: VmStateValue;
  /**
   * False when the agent may still run the VM: its start failed and so did the cleanup. The VM
   * then keeps its host and capacity (in Error) so that a later destroy reaches the agent.
   */
  agentClean: boolean;
}

/** How long a create's rollback waits for the agent to clean up a half-started VM. */
const ROLLBACK_AGENT_TIMEOUT_MS = 10_000;

/**
 * VM lifecycle. Every mutation runs in the replica's chain-task queue under `vm-<uuid>`, so two
 * operations on one VM never interleave on its owner; and every state change is a conditional
 * update from the state the operation saw, so even a second replica that briefly thinks it owns
 * the VM (during a membership change) cannot move it from a state it did not see. The store fences
 * every write (this replica's lease; a VM another live incarnation works on is not this one's),
 * and every agent command carries the fence its last write of the VM returned.
 */
export class VmManager {
  constructor(private readonly d: VmManagerDeps) {}

  /**
   * Creates and starts a VM: allocate host capacity (recording the VM) → the agent starts it →
   * Running. If the agent fails, the completed steps roll back: the agent is told to destroy
   * whatever it may have started, the capacity goes back to the host and the VM ends in Error
   * with the agent's error recorded. (A retry with the same client request id never reaches
   * here: the serving chain answers it with the first outcome.)
   */
  create(spec: VmSpec, signal?: AbortSignal): Promise<VmRow> {
    return this.#serialized(spec.uuid, "create", signal, () => this.#create(spec));
  }

  /**
   * The operations on an existing VM. `requestKey` is the call's request id (AIP-155), recorded
   * with each change of the VM: a retry of the request after the replica running it died finds
   * the VM already where the operation leads (the takeover finished it) and gets it back, once.
   */
  start(uuid: string, signal?: AbortSignal, requestKey?: string): Promise<VmRow> {
    return this.#serialized(uuid, "start", signal, () => this.#operate("start", uuid, {}, requestKey));
  }

  stop(uuid: string, force: boolean, signal?: AbortSignal, requestKey?: string): Promise<VmRow> {
    return this.#serialized(uuid, force ? "force-stop" : "stop", signal, () => this.#operate("stop", uuid, { force }, requestKey));
  }

  reboot(uuid: string, signal?: AbortSignal, requestKey?: string): Promise<VmRow> {
    return this.#serialized(uuid, "reboot", signal, () => this.#operate("reboot", uuid, {}, requestKey));
  }

  destroy(uuid: string, signal?: AbortSignal, requestKey?: string): Promise<VmRow> {
    return this.#serialized(uuid, "destroy", signal, () => this.#operate("destroy", uuid, {}, requestKey));
  }

  async get(uuid: string): Promise<VmRow> {
    const vm = await this.d.vms.get(uuid);
    if (!vm) throw StratumError.notFound("vm", uuid);
    return vm;
  }

  /**
   * Runs an operation in the VM's queue. The caller's signal (its deadline or cancel) withdraws
   * the operation only while it waits: once it runs, it runs to its end under the agent commands'
   * own timeouts. Aborting an agent call does not stop the agent, so reverting the database on a
   * caller's timeout would leave it disagreeing with the host; the caller gets its timeout, and a
   * retry (with the same client request id, for a create) finds the finished result.
   */
  #serialized(uuid: string, name: string, signal: AbortSignal | undefined, run: () => Promise<VmRow>): Promise<VmRow> {
    return this.d.queue.submit({ signature: `vm-${uuid}`, name: `${name}-vm`, run }, signal ? { signal } : undefined);
  }

  async #create(spec: VmSpec): Promise<VmRow> {
    const { vms, agents, hosts } = this.d;
    const taskId = `create-${spec.uuid}`;
    const ctx: CreateContext = { state: "Created", agentClean: true };
    try {
      await runFlow<CreateContext>(
        "create-vm",
        [
          {
            name: "allocate-host",
            run: async (c) => {
              let vm: VmRow | undefined;
              try {
                vm = await vms.insertPlaced(
                  { uuid: spec.uuid, name: spec.name, cpu: spec.cpu, memory: spec.memory, clientRequestId: spec.clientRequestId || null },
                  spec.hostUuid || undefined,
                );
              } catch (e) {
                if (await this.#isRerun(spec, e)) throw new RerunOfCreate();
                throw e;
              }
              if (!vm) throw await this.#noCapacity(spec);
              c.vm = vm;
            },
            rollback: async (c, error) => {
              const failed = c.agentClean
                ? await vms.transitionReleasing(spec.uuid, c.state, "Error", errorMessage(error))
                : await vms.transition(spec.uuid, c.state, "Error", `${errorMessage(error)}; the agent may still run it: destroy the VM to clean up`);
              if (!failed) this.d.log.warn("create rollback matched no row", { vmUuid: spec.uuid, expectedState: c.state });
            },
          },
          {
            name: "start-on-agent",
            run: async (c) => {
              const vm = await this.#move(c.vm!, "Starting");
              c.vm = vm;
              c.state = "Starting";
              const host = await hosts.agentOf(vm.hostUuid!);
              if (!host) throw StratumError.notFound("host", vm.hostUuid!);
              try {
                await agents.vm(host, "vm/start", startBody(vm), taskId, fenceOf(vm));
              } catch (e) {
                // The agent may have started the VM although the call failed (a reset or a
                // timeout after it acted): nothing may run there that the database calls Error.
                c.agentClean = await this.#undoStart(host, vm, taskId);
                throw e;
              }
            },
            rollback: async (c) => {
              const host = await hosts.agentOf(c.vm!.hostUuid!);
              if (host) c.agentClean = await this.#undoStart(host, c.vm!, taskId);
            },
          },
          {
            name: "record-running",
            run: async (c) => {
              c.vm = await this.#move(c.vm!, "Running", "");
              c.state = "Running";
            },
          },
        ],
        ctx,
      );
    } catch (e) {
      if (e instanceof FlowError && e.cause instanceof RerunOfCreate) return this.#createAgain(spec);
      if (!(e instanceof FlowError)) throw e;
      for (const f of e.rollbackFailures) this.d.log.warn("create rollback step failed", { vmUuid: spec.uuid, step: f.step, error: errorMessage(f.error) });
      throw withResource(e.cause, spec.uuid);
    }
    return ctx.vm!;
  }

  /** True when the create failed only because this very request's VM exists: a retry of it. */
  async #isRerun(spec: VmSpec, e: unknown): Promise<boolean> {
    if (!spec.clientRequestId || !(e instanceof StratumError) || (e.reason !== "VM_ALREADY_EXISTS" && e.reason !== "REQUEST_ID_IN_USE")) return false;
    const existing = await this.d.vms.get(spec.uuid);
    return existing?.clientRequestId === spec.clientRequestId;
  }

  /**
   * A create retried after the replica that ran it died (or lost it): the VM exists. Its state,
   * once any takeover has settled it, is the create's outcome: Running is returned as it is; a VM
   * the takeover found not running is started, as the create asked; anything else fails.
   */
  async #createAgain(spec: VmSpec): Promise<VmRow> {
    const vm = await this.#settled(spec.uuid);
    if (vm.state === "Running") return vm;
    if (vm.state === "Stopped") return this.#operate("start", spec.uuid, {}, spec.clientRequestId);
    throw new StratumError(Code.FAILED_PRECONDITION, `vm ${spec.uuid} of this request is ${vm.state}${vm.lastError ? `: ${vm.lastError}` : ""}`, {
      reason: "VM_CREATE_FAILED",
      resources: { vmUuid: spec.uuid, state: vm.state },
    });
  }

  /**
   * The VM, after repairing it first if it was left mid-operation: by a dead replica, or by this
   * one (an operation that could not record its end — none of this replica's runs on it now,
   * since this runs in the VM's queue).
   */
  async #settled(uuid: string): Promise<VmRow> {
    const vm = await this.get(uuid);
    if (!TRANSIENT_STATES.includes(vm.state)) return vm;
    return (await this.d.repairHere(uuid)) ? this.get(uuid) : vm;
  }

  /**
   * One operation on an existing VM: source state → transient state → the agent → target state.
   * When the agent fails, the VM goes back to the state it came from with the error recorded, and
   * the caller gets the agent's error (naming the host and command).
   */
  async #operate(op: VmOperation, uuid: string, extra: Record<string, unknown>, requestKey?: string): Promise<VmRow> {
    const vm = await this.#settled(uuid);
    if (op === "destroy" && vm.state === "Destroyed") return vm;
    // This request already moved the VM where it leads (its replica died before answering).
    if (requestKey && vm.opRequest === requestKey && vm.state === TRANSITIONS[op].to) return vm;
    const t = assertCanRun(op, uuid, vm.state);
    const moving = await this.#move(vm, t.via, undefined, requestKey);
    try {
      const host = vm.hostUuid ? await this.d.hosts.agentOf(vm.hostUuid) : undefined;
      // A VM without a host (a create that failed) has nothing on any agent to act on.
      const body = op === "start" ? startBody(vm) : { vmUuid: uuid, ...extra };
      if (host) await this.d.agents.vm(host, `vm/${op}`, body, `${op}-${uuid}-${randomUUID()}`, fenceOf(moving));
    } catch (e) {
      if (isFenced(e)) throw await this.#lost(uuid, t.via);
      const back = await this.d.vms.transition(uuid, t.via, vm.state, errorMessage(e), requestKey);
      if (!back) this.d.log.warn("revert after agent failure matched no row", { vmUuid: uuid, expectedState: t.via });
      throw withResource(e, uuid);
    }
    if (op === "destroy") {
      const done = await this.d.vms.transitionReleasing(uuid, t.via, t.to, "", requestKey);
      if (!done) throw await this.#lost(uuid, t.via);
      return done;
    }
    return this.#move(moving, t.to, "", requestKey);
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

  /** Conditional update from the state `vm` was read in; see {@link VmManager#lost} when it matched nothing. */
  async #move(vm: VmRow, to: VmStateValue, lastError?: string, requestKey?: string): Promise<VmRow> {
    const moved = await this.d.vms.transition(vm.uuid, vm.state, to, lastError, requestKey ?? vm.opRequest ?? undefined);
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
    return new StratumError(Code.ABORTED, `vm ${uuid} changed concurrently (expected ${expected})`, { reason: "VM_CONCURRENT_UPDATE", resources: { vmUuid: uuid } });
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


/** Raised inside the create flow when the VM of this very request already exists (a retry). */
class RerunOfCreate extends Error {}

/** A start command carries the whole VM spec: the agent may have never seen the VM (or forgot it). */
function startBody(vm: VmRow): Record<string, unknown> {
  return { vmUuid: vm.uuid, name: vm.name, cpuNum: vm.cpu, memoryBytes: vm.memory };
}


/** Adds the VM's id to an error's resources, keeping its code, reason and message. */
function withResource(e: unknown, vmUuid: string): StratumError {
  const err = StratumError.from(e);
  if (err.resources.vmUuid) return err;
  return new StratumError(err.code, err.message, { reason: err.reason, resources: { ...err.resources, vmUuid }, violations: err.violations, cause: e });
}
