import { Code, StratumError, type Logger } from "@stratum/core";
import { JobSupersededError, type JobContext, type JobTypeDefinition } from "@stratum/jobs";
import { VmState, type Vm } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { uuidForRequest } from "@stratum/validation";
import type { ComputeClient } from "../clients/compute";
import type { NetworkClient } from "../clients/network";
import type { BindingStore } from "../store/binding-store";
import type { InstanceStore } from "../store/instance-store";
import type { InstanceRow } from "../store/schema";
import type { Catalog } from "./catalog";

export const PROVISION_JOB = "broker.provision";
export const UPDATE_JOB = "broker.update";
export const DEPROVISION_JOB = "broker.deprovision";

/** What a provision or update produced: the job's result, which the settle copies onto the instance. */
export interface InstanceResult extends Record<string, unknown> {
  vmUuid: string;
  eipUuid: string;
  address: string;
}

export interface InstanceJobDeps {
  instances: InstanceStore;
  bindings: BindingStore;
  catalog: Catalog;
  compute: ComputeClient;
  network: NetworkClient;
  /** The networks instances get a NIC on (private) and their EIPs from (public), by name or UUID. */
  privateNetwork: string;
  publicNetwork: string;
  log: Logger;
}

/** How long a rollback (or a deprovision step) waits for compute to destroy a VM. */
const RELEASE_WAIT_MS = 120_000;
/** Transient peer failures a step retries for this long before the job fails with them. */
const TRANSIENT_BUDGET_MS = 30_000;
const TRANSIENT = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED]);

/**
 * The broker's three job types. Each runs in its instance's queue on the owner of the instance's
 * UUID, finds its instance by its own job uuid (the instance's `operation`), and makes resources
 * whose UUIDs and request ids are derived from the instance or the job: a job resumed on another
 * replica after its executor died (onInterrupt `resume`) repeats every step and gets the first
 * outcome of each, so it never makes a second VM or EIP. Before it makes one, the job records its
 * UUID on the instance, so whatever happens next, a rollback or a deprovision finds it.
 */
export function instanceJobs(d: InstanceJobDeps): JobTypeDefinition[] {
  const signature = ({ targetUuid }: { targetUuid: string }) => `instance-${targetUuid}`;
  const provision: JobTypeDefinition<Record<string, unknown>, InstanceResult> = {
    name: PROVISION_JOB,
    description: "Provisions a service instance: its VM (root volume, NIC), started, and its elastic IP if asked.",
    stages: ["starting-vm", "attaching-eip"],
    parameters: [{ name: "instanceId", kind: "string", description: "The caller's key of the instance." }],
    onInterrupt: "resume",
    targetRequired: true,
    signature,
    run: (ctx) => runProvision(ctx, d),
  };
  const update: JobTypeDefinition<Record<string, unknown>, InstanceResult> = {
    name: UPDATE_JOB,
    description: "Applies a service instance's new parameters (attaches or releases its elastic IP).",
    stages: ["attaching-eip", "releasing-eip"],
    parameters: [{ name: "instanceId", kind: "string", description: "The caller's key of the instance." }],
    onInterrupt: "resume",
    targetRequired: true,
    signature,
    run: (ctx) => runUpdate(ctx, d),
  };
  const deprovision: JobTypeDefinition<Record<string, unknown>, Record<string, unknown>> = {
    name: DEPROVISION_JOB,
    description: "Deprovisions a service instance: revokes its bindings, deletes its elastic IP, destroys its VM.",
    stages: ["revoking", "releasing-eip", "destroying-vm"],
    parameters: [{ name: "instanceId", kind: "string", description: "The caller's key of the instance." }],
    onInterrupt: "resume",
    targetRequired: true,
    signature,
    run: (ctx) => runDeprovision(ctx, d),
  };
  return [provision as JobTypeDefinition, update as JobTypeDefinition, deprovision];
}

async function instanceOf(ctx: JobContext, d: InstanceJobDeps): Promise<InstanceRow> {
  const row = await d.instances.byOperation(ctx.jobUuid);
  if (!row || row.uuid !== ctx.targetUuid) {
    throw new StratumError(Code.FAILED_PRECONDITION, `job ${ctx.jobUuid} is no longer the operation of instance ${ctx.targetUuid}`, {
      reason: "OPERATION_SUPERSEDED",
      resources: { jobUuid: ctx.jobUuid, instanceUuid: ctx.targetUuid },
    });
  }
  return row;
}

async function runProvision(ctx: JobContext, d: InstanceJobDeps): Promise<InstanceResult> {
  const inst = await instanceOf(ctx, d);
  const plan = d.catalog.plan(inst.planId);
  if (!plan) throw new StratumError(Code.FAILED_PRECONDITION, `plan ${inst.planId} of instance ${inst.instanceId} is no longer in the catalog`, { reason: "UNKNOWN_PLAN", resources: { planId: inst.planId } });
  const vmUuid = uuidForRequest("broker-vm", inst.uuid);
  let eipUuid = inst.eipUuid;
  try {
    await d.instances.recordResources(ctx.jobUuid, { vmUuid });
    const l3 = await transient(ctx, () => d.network.network(d.privateNetwork, false));
    await ctx.checkpoint();
    await transient(ctx, () =>
      d.compute.create({ uuid: vmUuid, name: vmName(inst), cpu: plan.cpu, memoryBytes: plan.memoryBytes, rootVolumeBytes: plan.rootVolumeBytes, l3NetworkUuids: [l3] }),
    );
    // One progress report per step that waits: each is a JetStream message and a write in longjob.
    ctx.progress({ stage: "starting-vm", percent: 40, message: `starting VM ${vmUuid}` });
    const vm = await transient(ctx, () => d.compute.settled(vmUuid, ctx.signal));
    if (vm?.state !== VmState.RUNNING) throw vmFailed(vmUuid, vm, "start");
    let address = vm.nics[0]?.ip ?? "";
    if (inst.parameters.eip === true) {
      await ctx.checkpoint();
      eipUuid ||= uuidForRequest("broker-eip", ctx.jobUuid);
      ctx.progress({ stage: "attaching-eip", percent: 70, message: `attaching elastic IP ${eipUuid}` });
      address = (await attachEip(ctx, d, inst, vm, eipUuid)).vipIp;
    }
    return { vmUuid, eipUuid, address };
  } catch (e) {
    // A superseded attempt (paused, or its replica stopping) must leave the work to the attempt
    // that resumes it; everything else — a cancel, a failure — releases what this one made.
    if (!superseded(ctx, e)) {
      await release(d, ctx, { vmUuid, eipUuid }, "rollback");
    }
    throw e;
  }
}

async function runUpdate(ctx: JobContext, d: InstanceJobDeps): Promise<InstanceResult> {
  const inst = await instanceOf(ctx, d);
  const wanted = { ...inst.parameters, ...(inst.pendingParameters ?? {}) };
  const base = { vmUuid: inst.vmUuid, eipUuid: inst.eipUuid, address: inst.address };
  await ctx.checkpoint();
  if (wanted.eip === true && inst.eipUuid === "") {
    const eipUuid = uuidForRequest("broker-eip", ctx.jobUuid);
    try {
      const vm = await transient(ctx, () => d.compute.settled(inst.vmUuid, ctx.signal));
      if (vm?.state !== VmState.RUNNING) throw vmFailed(inst.vmUuid, vm, "attach an elastic IP to");
      ctx.progress({ stage: "attaching-eip", percent: 30, message: `attaching elastic IP ${eipUuid}` });
      const eip = await attachEip(ctx, d, inst, vm, eipUuid);
      return { ...base, eipUuid, address: eip.vipIp };
    } catch (e) {
      if (!superseded(ctx, e)) await release(d, ctx, { eipUuid }, "rollback");
      throw e;
    }
  }
  if (wanted.eip !== true && inst.eipUuid !== "") {
    ctx.progress({ stage: "releasing-eip", percent: 30, message: `releasing elastic IP ${inst.eipUuid}` });
    await transient(ctx, () => d.network.deleteEip(inst.eipUuid));
    await d.instances.recordResources(ctx.jobUuid, { eipUuid: "" });
    const vm = await transient(ctx, () => d.compute.settled(inst.vmUuid, ctx.signal));
    return { ...base, eipUuid: "", address: vm?.nics[0]?.ip ?? "" };
  }
  return base;
}

async function runDeprovision(ctx: JobContext, d: InstanceJobDeps): Promise<Record<string, unknown>> {
  const inst = await instanceOf(ctx, d);
  ctx.progress({ stage: "revoking", percent: 5, message: "revoking bindings" });
  await d.bindings.deleteAll(inst.uuid);
  await release(d, ctx, { vmUuid: inst.vmUuid, eipUuid: inst.eipUuid }, "deprovision", true);
  return { vmUuid: inst.vmUuid, eipUuid: inst.eipUuid };
}

/** Creates the EIP (recorded on the instance first), attaches it to the VM's NIC, and waits until its rule is on the agent. */
async function attachEip(ctx: JobContext, d: InstanceJobDeps, inst: InstanceRow, vm: Vm, eipUuid: string) {
  const nic = vm.nics[0];
  if (!nic) throw new StratumError(Code.FAILED_PRECONDITION, `VM ${vm.uuid} has no NIC to attach an elastic IP to`, { reason: "VM_HAS_NO_NIC", resources: { vmUuid: vm.uuid } });
  await d.instances.recordResources(ctx.jobUuid, { eipUuid });
  const publicL3 = await transient(ctx, () => d.network.network(d.publicNetwork, true));
  await transient(ctx, () => d.network.createEip(eipUuid, `${vmName(inst)}-eip`, publicL3));
  await transient(ctx, () => d.network.attach(eipUuid, nic.uuid));
  return d.network.untilActive(eipUuid, ctx.signal);
}

/**
 * Releases an instance's resources: its EIP (deleted, which detaches it), then its VM
 * (destroyed, followed until Destroyed). In a deprovision a failure fails the job (the instance
 * stays, to be deprovisioned again); in a rollback it is logged with the ids and left to the
 * deprovision the platform sends for a failed instance — the error the caller sees is the one
 * that made the job fail.
 */
async function release(d: InstanceJobDeps, ctx: JobContext, r: { vmUuid?: string; eipUuid?: string }, why: "rollback" | "deprovision", strict = false): Promise<void> {
  // A cancel has aborted the job's signal; the release must still run to its end.
  const signal = AbortSignal.timeout(RELEASE_WAIT_MS);
  try {
    if (r.eipUuid) {
      if (why === "deprovision") ctx.progress({ stage: "releasing-eip", percent: 20, message: `deleting elastic IP ${r.eipUuid}` });
      await transient(ctx, () => d.network.deleteEip(r.eipUuid!), signal);
      await d.instances.recordResources(ctx.jobUuid, { eipUuid: "" });
    }
    if (r.vmUuid) {
      if (why === "deprovision") ctx.progress({ stage: "destroying-vm", percent: 50, message: `destroying VM ${r.vmUuid}` });
      // A VM still starting refuses a destroy (VM_BUSY): let its start end first.
      const before = await transient(ctx, () => d.compute.settled(r.vmUuid!, signal), signal);
      if (before && before.state !== VmState.DESTROYED) {
        await transient(ctx, () => d.compute.destroy(r.vmUuid!, `broker-destroy-${ctx.jobUuid}`), signal);
        const vm = await transient(ctx, () => d.compute.settled(r.vmUuid!, signal), signal);
        if (vm && vm.state !== VmState.DESTROYED) throw vmFailed(r.vmUuid, vm, "destroy");
      }
      await d.instances.recordResources(ctx.jobUuid, { vmUuid: "" });
    }
  } catch (e) {
    if (strict) throw e;
    d.log.warn("broker rollback left resources for the deprovision", { jobUuid: ctx.jobUuid, instanceUuid: ctx.targetUuid, vmUuid: r.vmUuid ?? "", eipUuid: r.eipUuid ?? "", error: StratumError.from(e).message });
  }
}

/** Retries a peer step through transient failures (a replica moving, a peer restarting), within a budget. */
async function transient<T>(ctx: JobContext, step: () => Promise<T>, signal: AbortSignal = ctx.signal): Promise<T> {
  const deadline = Date.now() + TRANSIENT_BUDGET_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await step();
    } catch (e) {
      const err = StratumError.from(e);
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : e;
      if (!TRANSIENT.has(err.code) || err.reason === "JOB_SUPERSEDED" || Date.now() > deadline) throw e;
      ctx.log.info("broker job step retried", { jobUuid: ctx.jobUuid, attempt: attempt + 1, error: err.message });
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2_000)));
    }
  }
}

function superseded(ctx: JobContext, e: unknown): boolean {
  return e instanceof JobSupersededError || ctx.signal.reason instanceof JobSupersededError;
}

function vmFailed(vmUuid: string, vm: Vm | undefined, what: string): StratumError {
  const state = vm ? VmState[vm.state] : "gone";
  return new StratumError(Code.FAILED_PRECONDITION, `could not ${what} VM ${vmUuid}: it is ${state}${vm?.lastError ? ` (${vm.lastError})` : ""}`, {
    reason: "VM_FAILED",
    resources: { vmUuid, state },
  });
}

/** The VM's name: the one asked for, or one from the instance id (VM names are 1–128 visible characters). */
function vmName(inst: InstanceRow): string {
  const asked = inst.parameters.name;
  if (typeof asked === "string" && asked !== "") return asked;
  return `svc-${inst.instanceId.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 60)}`;
}
