import { randomUUID } from "node:crypto";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { FlowError, runFlow } from "@stratum/flow";
import { errorMessage, Code, StratumError, type Logger } from "@stratum/core";
import { fenceOf, type HostAgents } from "../clients/agents";
import type { HostStore } from "../store/host-store";
import type { VmRow, VmStateValue } from "../store/schema";
import type { VmStore } from "../store/vm-store";
import { assertCanRun, type VmOperation } from "./vm-state";

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

  start(uuid: string, signal?: AbortSignal): Promise<VmRow> {
    return this.#serialized(uuid, "start", signal, () => this.#operate("start", uuid, {}));
  }

  stop(uuid: string, force: boolean, signal?: AbortSignal): Promise<VmRow> {
    return this.#serialized(uuid, force ? "force-stop" : "stop", signal, () => this.#operate("stop", uuid, { force }));
  }

  reboot(uuid: string, signal?: AbortSignal): Promise<VmRow> {
    return this.#serialized(uuid, "reboot", signal, () => this.#operate("reboot", uuid, {}));
  }

  destroy(uuid: string, signal?: AbortSignal): Promise<VmRow> {
    return this.#serialized(uuid, "destroy", signal, () => this.#operate("destroy", uuid, {}));
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
              const vm = await vms.insertPlaced(
                { uuid: spec.uuid, name: spec.name, cpu: spec.cpu, memory: spec.memory, clientRequestId: spec.clientRequestId || null },
                spec.hostUuid || undefined,
              );
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
      if (!(e instanceof FlowError)) throw e;
      for (const f of e.rollbackFailures) this.d.log.warn("create rollback step failed", { vmUuid: spec.uuid, step: f.step, error: errorMessage(f.error) });
      throw withResource(e.cause, spec.uuid);
    }
    return ctx.vm!;
  }

  /**
   * One operation on an existing VM: source state → transient state → the agent → target state.
   * When the agent fails, the VM goes back to the state it came from with the error recorded, and
   * the caller gets the agent's error (naming the host and command).
   */
  async #operate(op: VmOperation, uuid: string, extra: Record<string, unknown>): Promise<VmRow> {
    const vm = await this.get(uuid);
    if (op === "destroy" && vm.state === "Destroyed") return vm;
    const t = assertCanRun(op, uuid, vm.state);
    const moving = await this.#move(vm, t.via);
    try {
      const host = vm.hostUuid ? await this.d.hosts.agentOf(vm.hostUuid) : undefined;
      // A VM without a host (a create that failed) has nothing on any agent to act on.
      const body = op === "start" ? startBody(vm) : { vmUuid: uuid, ...extra };
      if (host) await this.d.agents.vm(host, `vm/${op}`, body, `${op}-${uuid}-${randomUUID()}`, fenceOf(moving));
    } catch (e) {
      const back = await this.d.vms.transition(uuid, t.via, vm.state, errorMessage(e));
      if (!back) this.d.log.warn("revert after agent failure matched no row", { vmUuid: uuid, expectedState: t.via });
      throw withResource(e, uuid);
    }
    if (op === "destroy") {
      const done = await this.d.vms.transitionReleasing(uuid, t.via, t.to, "");
      if (!done) throw this.#lost(uuid, t.via);
      return done;
    }
    return this.#move(moving, t.to, "");
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

  /** Conditional update from the state `vm` was read in; ABORTED `VM_CONCURRENT_UPDATE` if it moved meanwhile. */
  async #move(vm: VmRow, to: VmStateValue, lastError?: string): Promise<VmRow> {
    const moved = await this.d.vms.transition(vm.uuid, vm.state, to, lastError);
    if (!moved) throw this.#lost(vm.uuid, vm.state);
    return moved;
  }

  #lost(uuid: string, expected: VmStateValue): StratumError {
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
