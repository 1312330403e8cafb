import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Code, StratumError } from "@stratum/core";
import type { BindingStore } from "../store/binding-store";
import type { BindingRow, InstanceRow } from "../store/schema";
import type { Catalog } from "./catalog";
import { canonical, type InstanceManager } from "./instance-manager";

/** The port credentials name: the VM's SSH. */
export const BINDING_PORT = 22;
const DEFAULT_USER = "stratum";

export interface BindRequest {
  instanceId: string;
  bindingId: string;
  /** When given (OSB sends them), they must be the instance's. */
  serviceId?: string;
  planId?: string;
  parameters: Record<string, unknown>;
}

/**
 * Bindings: credentials to a Ready instance — its address, the SSH port, a user and a generated
 * secret — keyed like instances by the caller's id (unique index: an identical repeat returns the
 * same credentials, the same id with other parameters is ALREADY_EXISTS). Unbinding, or the
 * instance's deprovision, deletes them: revoked credentials are not kept anywhere.
 */
export class BindingManager {
  constructor(
    private readonly bindings: BindingStore,
    private readonly instances: InstanceManager,
    private readonly catalog: Catalog,
  ) {}

  async bind(tenant: string, req: BindRequest): Promise<{ row: BindingRow; instance: InstanceRow; created: boolean }> {
    const instance = await this.instances.live(tenant, req.instanceId);
    if (req.serviceId && req.serviceId !== instance.serviceId) throw mismatch("service_id", req.serviceId, instance.serviceId);
    if (req.planId && req.planId !== instance.planId) throw mismatch("plan_id", req.planId, instance.planId);
    const parameters = this.catalog.check(this.catalog.plan(instance.planId)!, req.parameters, "bind");
    if (instance.state !== "Ready" && instance.state !== "Updating") {
      const busy = instance.state === "Provisioning" || instance.state === "Deprovisioning";
      throw new StratumError(Code.FAILED_PRECONDITION, `instance ${req.instanceId} is ${instance.state}: only a Ready instance can be bound`, {
        reason: busy ? "INSTANCE_BUSY" : "INSTANCE_NOT_READY",
        resources: { instanceId: req.instanceId, state: instance.state },
      });
    }
    const requestHash = createHash("sha256").update(canonical(parameters)).digest("hex");
    const username = typeof parameters.username === "string" ? parameters.username : DEFAULT_USER;
    const out = await this.bindings.insert({
      uuid: randomUUID(),
      tenant,
      instanceUuid: instance.uuid,
      bindingId: req.bindingId,
      parameters,
      requestHash,
      username,
      password: randomBytes(18).toString("base64url"),
    });
    if (!out) {
      throw new StratumError(Code.FAILED_PRECONDITION, `instance ${req.instanceId} stopped being Ready while it was being bound`, { reason: "INSTANCE_BUSY", resources: { instanceId: req.instanceId } });
    }
    if (!out.created && out.row.requestHash !== requestHash) {
      throw new StratumError(Code.ALREADY_EXISTS, `binding id ${JSON.stringify(req.bindingId)} of instance ${req.instanceId} is in use with other parameters`, {
        reason: "BINDING_ID_IN_USE",
        resources: { instanceId: req.instanceId, bindingId: req.bindingId },
      });
    }
    return { row: out.row, instance, created: out.created };
  }

  async get(tenant: string, instanceId: string, bindingId: string): Promise<{ row: BindingRow; instance: InstanceRow }> {
    const instance = await this.instances.live(tenant, instanceId);
    const row = await this.bindings.get(instance.uuid, bindingId);
    if (!row) throw bindingNotFound(instanceId, bindingId);
    return { row, instance };
  }

  async unbind(tenant: string, instanceId: string, bindingId: string): Promise<void> {
    const instance = await this.instances.live(tenant, instanceId);
    if (!(await this.bindings.delete(instance.uuid, bindingId))) throw bindingNotFound(instanceId, bindingId);
  }
}

export function credentialsOf(row: BindingRow, instance: InstanceRow) {
  return { address: instance.address, port: BINDING_PORT, username: row.username, password: row.password, uri: `ssh://${row.username}@${instance.address}:${BINDING_PORT}` };
}

function bindingNotFound(instanceId: string, bindingId: string): StratumError {
  return new StratumError(Code.NOT_FOUND, `instance ${instanceId} has no binding ${JSON.stringify(bindingId)}`, { reason: "BINDING_NOT_FOUND", resources: { instanceId, bindingId } });
}

function mismatch(field: string, given: string, actual: string): StratumError {
  return new StratumError(Code.INVALID_ARGUMENT, `${field} ${JSON.stringify(given)} is not the instance's (${actual})`, { reason: "BINDING_MISMATCH", violations: [{ field, description: `must be the instance's ${field} (${actual})` }] });
}
