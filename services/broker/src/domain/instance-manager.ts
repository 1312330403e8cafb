import { createHash, randomUUID } from "node:crypto";
import { Code, StratumError, type Logger } from "@stratum/core";
import { crashPoint } from "@stratum/runtime";
import type { LongJobClient } from "@stratum/jobs";
import { JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { InstanceStore } from "../store/instance-store";
import type { BindingStore } from "../store/binding-store";
import type { InstanceRow, InstanceStateName, OperationKindName } from "../store/schema";
import type { Catalog } from "./catalog";
import { DEPROVISION_JOB, PROVISION_JOB, UPDATE_JOB, type InstanceResult } from "./instance-jobs";
import { isTransient, settledState, STARTS_FROM, TRANSIENT_OF } from "./instance-state";

const JOB_TYPE: Readonly<Record<OperationKindName, string>> = { provision: PROVISION_JOB, update: UPDATE_JOB, deprovision: DEPROVISION_JOB };
export const BROKER_JOB_TYPES = new Set(Object.values(JOB_TYPE));
/** How long a transient instance goes unchanged before a read asks longjob whether its job ended. */
const SETTLE_LOOKUP_AFTER_MS = 3_000;

type Json = Record<string, unknown>;

export interface ProvisionRequest {
  instanceId: string;
  serviceId: string;
  planId: string;
  parameters: Json;
}

/** A job's end, as a settle needs it: from longjob's GetJob or from its `job_changed` event. */
export interface JobOutcome {
  uuid: string;
  state: "Succeeded" | "Failed" | "Canceled";
  result: Json | undefined;
  error: { reason?: string; message?: string } | undefined;
}

/** An operation as OSB's last_operation reports it. */
export interface OperationView {
  operation: string;
  kind: OperationKindName;
  state: "in progress" | "succeeded" | "failed";
  description: string;
  percent: number;
  instance: InstanceRow;
}

export interface InstanceManagerDeps {
  instances: InstanceStore;
  bindings: BindingStore;
  catalog: Catalog;
  jobs: LongJobClient;
  log: Logger;
}

/**
 * Provision, update and deprovision, the seed-003 way: the instance row is the idempotency
 * record (the unique index on the tenant's key decides between concurrent requests on any
 * replica, with no lock and no waiting), the call answers as soon as the row and its operation
 * are recorded, and the operation is a long job whose end — and only that — moves the instance
 * out of its transient state ({@link settle}). None of these calls needs to run on a particular
 * replica: every write is conditional on the row it read.
 */
export class InstanceManager {
  constructor(private readonly d: InstanceManagerDeps) {}

  async provision(tenant: string, req: ProvisionRequest): Promise<{ row: InstanceRow; created: boolean }> {
    const { parameters } = this.d.catalog.resolve(req.serviceId, req.planId, req.parameters, "create");
    req = { ...req, parameters };
    const hash = requestHash(req);
    const existing = await this.d.instances.live(tenant, req.instanceId);
    const { row, created } = existing
      ? { row: existing, created: false }
      : await this.d.instances.insert({ uuid: randomUUID(), tenant, instanceId: req.instanceId, serviceId: req.serviceId, planId: req.planId, parameters: req.parameters, requestHash: hash, operation: randomUUID() });
    if (!created) {
      if (row.requestHash !== hash) {
        throw new StratumError(Code.ALREADY_EXISTS, `instance id ${JSON.stringify(req.instanceId)} is in use by an instance with other attributes`, {
          reason: "INSTANCE_ID_IN_USE",
          resources: { instanceId: req.instanceId, instanceUuid: row.uuid },
        });
      }
      if (row.state === "Deprovisioning") throw busy(row);
    }
    // Recorded, not yet handed to longjob: a replica dying here leaves the sweep a row to submit.
    // Only the request that created the row submits its job: a duplicate arriving meanwhile would
    // only send longjob the same submit again (ten of them, under bench:broker's load), and one
    // whose creator died is the sweep's.
    if (created) {
      crashPoint("broker:provision-recorded");
      await this.submit(row);
    }
    return { row, created };
  }

  async update(tenant: string, instanceId: string, planId: string, parameters: Json): Promise<{ row: InstanceRow; started: boolean }> {
    const row = await this.live(tenant, instanceId);
    if (planId !== "" && planId !== row.planId) {
      throw new StratumError(Code.INVALID_ARGUMENT, `instance ${instanceId} cannot change plan (${row.planId} → ${planId}): no plan of service ${row.serviceId} is updateable`, {
        reason: "PLAN_NOT_UPDATEABLE",
        violations: [{ field: "plan_id", description: `plan changes are not supported (the instance's plan is ${row.planId})` }],
      });
    }
    const plan = this.d.catalog.plan(row.planId)!;
    const wanted = { ...row.parameters, ...this.d.catalog.check(plan, parameters, "update") };
    if (row.state === "Updating" && canonical(row.pendingParameters ?? {}) === canonical(wanted)) return { row, started: false };
    if (isTransient(row.state)) throw busy(row);
    if (canonical(wanted) === canonical(row.parameters)) return { row, started: false };
    if (row.state !== "Ready") throw notReady(row, "updated");
    const begun = await this.d.instances.begin(row.uuid, STARTS_FROM.update, "Updating", "update", randomUUID(), wanted);
    if (!begun) return this.update(tenant, instanceId, planId, parameters); // another operation won: answer from its state
    await this.submit(begun);
    return { row: begun, started: true };
  }

  async deprovision(tenant: string, instanceId: string): Promise<InstanceRow> {
    const row = await this.live(tenant, instanceId);
    if (row.state === "Deprovisioning") return row; // its own request submits it, or the sweep
    if (isTransient(row.state)) throw busy(row);
    const begun = await this.d.instances.begin(row.uuid, STARTS_FROM.deprovision, "Deprovisioning", "deprovision", randomUUID());
    if (!begun) return this.deprovision(tenant, instanceId);
    await this.d.bindings.deleteAll(begun.uuid);
    await this.submit(begun);
    return begun;
  }

  /** The tenant's live instance of the key, or its last Deleted one (settled first if its job ended). */
  async get(tenant: string, instanceId: string): Promise<InstanceRow> {
    const row = await this.d.instances.latest(tenant, instanceId);
    if (!row) throw notFound(instanceId);
    return this.#fresh(row);
  }

  /** OSB's last_operation: the instance's last operation, or the one named. */
  async operation(tenant: string, instanceId: string, operation: string): Promise<OperationView> {
    let row = await this.d.instances.latest(tenant, instanceId);
    if (!row) throw notFound(instanceId);
    if (operation !== "" && operation !== row.operation) {
      // An earlier operation of this key: its job says how it ended.
      const older = await this.d.instances.byOperation(operation).catch(() => undefined);
      const job = older && older.tenant === tenant && older.instanceId === instanceId ? await this.d.jobs.get(operation) : undefined;
      if (!job) {
        throw new StratumError(Code.NOT_FOUND, `instance ${instanceId} has no operation ${operation}`, { reason: "OPERATION_NOT_FOUND", resources: { instanceId, operation } });
      }
      return { operation, kind: kindOf(job.type), state: jobView(job.state), description: job.error?.message || job.progress?.message || "", percent: job.progress?.percent ?? 0, instance: row };
    }
    row = await this.#fresh(row);
    if (isTransient(row.state)) {
      return { operation: row.operation, kind: row.operationKind, state: "in progress", description: `${row.operationKind} ${row.operationSubmitted ? "running" : "accepted"}`, percent: 0, instance: row };
    }
    const failed = row.errorReason !== "";
    return { operation: row.operation, kind: row.operationKind, state: failed ? "failed" : "succeeded", description: failed ? row.errorMessage : `${row.operationKind} succeeded`, percent: 100, instance: row };
  }

  /**
   * Moves the instance of a job that ended out of its transient state, with what the job made or
   * why it failed. Idempotent and conditional (the instance's operation must still be this job,
   * in its transient state): the job-event consumer, a last_operation poll and a Get may all try.
   */
  async settle(outcome: JobOutcome): Promise<InstanceRow | undefined> {
    const row = await this.d.instances.byOperation(outcome.uuid);
    if (!row || row.state !== TRANSIENT_OF[row.operationKind]) return row;
    const ok = outcome.state === "Succeeded";
    const to = settledState(row.operationKind, ok);
    const r = (outcome.result ?? {}) as Partial<InstanceResult>;
    const patch = ok
      ? row.operationKind === "deprovision"
        ? { vmUuid: "", eipUuid: "", address: "" }
        : { address: String(r.address ?? row.address), vmUuid: String(r.vmUuid ?? row.vmUuid), eipUuid: String(r.eipUuid ?? row.eipUuid), adoptPending: true }
      : {
          errorReason: outcome.error?.reason || (outcome.state === "Canceled" ? "JOB_CANCELED" : "OPERATION_FAILED"),
          errorMessage: outcome.error?.message || `the ${row.operationKind} was ${outcome.state === "Canceled" ? "cancelled" : "failed"} (job ${outcome.uuid})`,
        };
    const settled = await this.d.instances.settle(outcome.uuid, row.state, to, patch);
    if (settled && to === "Deleted") await this.d.bindings.deleteAll(settled.uuid);
    if (settled) this.d.log.info("instance settled", { instanceUuid: settled.uuid, instanceId: settled.instanceId, operation: outcome.uuid, kind: row.operationKind, state: to, ...(ok ? {} : { reason: patch.errorReason }) });
    return settled ?? (await this.d.instances.byOperation(outcome.uuid));
  }

  /** Hands the instance's operation to longjob (idempotent: its uuid and request id are fixed). */
  async submit(row: InstanceRow): Promise<void> {
    try {
      await this.d.jobs.submit({
        uuid: row.operation,
        type: JOB_TYPE[row.operationKind],
        targetUuid: row.uuid,
        parameters: { instanceId: row.instanceId },
        clientRequestId: `broker-${row.operationKind}-${row.operation}`,
      });
      await this.d.instances.submitted(row.operation);
    } catch (e) {
      // Recorded already: the sweep submits it once longjob answers; the caller has its operation.
      this.d.log.warn("broker operation not submitted yet", { instanceUuid: row.uuid, operation: row.operation, error: StratumError.from(e).message });
    }
  }

  /**
   * The row as it is once a job that ended is settled: a job-end event that never came (or is
   * late) must not leave it transient. Asked of longjob only once the row has not moved for
   * {@link SETTLE_LOOKUP_AFTER_MS}: the event settles it well before that, and a platform polling
   * last_operation every second for each of a thousand instances must not cost a GetJob each.
   */
  async #fresh(row: InstanceRow): Promise<InstanceRow> {
    if (!isTransient(row.state) || !row.operationSubmitted) return row;
    if (Date.now() - row.updatedAt.getTime() < SETTLE_LOOKUP_AFTER_MS) return row;
    const job = await this.d.jobs.get(row.operation);
    const outcome = job ? outcomeOfJob(job) : undefined;
    return outcome ? ((await this.settle(outcome)) ?? row) : row;
  }

  async live(tenant: string, instanceId: string): Promise<InstanceRow> {
    const row = await this.d.instances.live(tenant, instanceId);
    if (!row) throw notFound(instanceId);
    return this.#fresh(row);
  }
}

/** A final job as a settle takes it; undefined while it runs. */
export function outcomeOfJob(job: Job): JobOutcome | undefined {
  const state = job.state === JobState.SUCCEEDED ? "Succeeded" : job.state === JobState.FAILED ? "Failed" : job.state === JobState.CANCELED ? "Canceled" : undefined;
  if (!state) return undefined;
  return { uuid: job.uuid, state, result: job.result as Json | undefined, error: job.error ? { reason: job.error.reason, message: job.error.message } : undefined };
}

/** sha256 of the canonical (service, plan, parameters): what makes two provisions identical. */
export function requestHash(req: Omit<ProvisionRequest, "instanceId">): string {
  return createHash("sha256").update(canonical({ serviceId: req.serviceId, planId: req.planId, parameters: req.parameters })).digest("hex");
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v as Json).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Json)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

function kindOf(type: string): OperationKindName {
  return type === PROVISION_JOB ? "provision" : type === UPDATE_JOB ? "update" : "deprovision";
}

function jobView(state: JobState): OperationView["state"] {
  return state === JobState.SUCCEEDED ? "succeeded" : state === JobState.FAILED || state === JobState.CANCELED ? "failed" : "in progress";
}

export function notFound(instanceId: string): StratumError {
  return new StratumError(Code.NOT_FOUND, `no instance ${JSON.stringify(instanceId)}`, { reason: "INSTANCE_NOT_FOUND", resources: { instanceId } });
}

function busy(row: InstanceRow): StratumError {
  return new StratumError(Code.FAILED_PRECONDITION, `instance ${row.instanceId} is ${row.state}: its ${row.operationKind} (operation ${row.operation}) must end first`, {
    reason: "INSTANCE_BUSY",
    resources: { instanceId: row.instanceId, state: row.state, operation: row.operation },
  });
}

function notReady(row: InstanceRow, what: string): StratumError {
  return new StratumError(Code.FAILED_PRECONDITION, `instance ${row.instanceId} is ${row.state}, so it cannot be ${what}`, {
    reason: "INSTANCE_NOT_READY",
    resources: { instanceId: row.instanceId, state: row.state },
  });
}

export type { InstanceStateName };
