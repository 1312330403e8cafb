import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  InstanceState,
  OperationKind,
  OperationState,
  type BindingSchema,
  type CatalogServiceSchema,
  type GetInstanceOperationResponseSchema,
  type InstanceSchema,
} from "@stratum/proto/stratum/broker/v1/broker_pb";
import { credentialsOf } from "../domain/binding-manager";
import type { CatalogEntry } from "../domain/catalog";
import type { OperationView } from "../domain/instance-manager";
import type { BindingRow, InstanceRow, InstanceStateName, OperationKindName } from "../store/schema";

/** Database enum ↔ proto enum: one table each way, so a new state cannot be half-mapped. */
export const STATE_TO_PROTO: Record<InstanceStateName, InstanceState> = {
  Provisioning: InstanceState.PROVISIONING,
  Ready: InstanceState.READY,
  Failed: InstanceState.FAILED,
  Updating: InstanceState.UPDATING,
  Deprovisioning: InstanceState.DEPROVISIONING,
  Deleted: InstanceState.DELETED,
};
export const STATE_FROM_PROTO = new Map(Object.entries(STATE_TO_PROTO).map(([k, v]) => [v, k as InstanceStateName]));

const KIND_TO_PROTO: Record<OperationKindName, OperationKind> = {
  provision: OperationKind.PROVISION,
  update: OperationKind.UPDATE,
  deprovision: OperationKind.DEPROVISION,
};

const OPERATION_STATE: Record<OperationView["state"], OperationState> = {
  "in progress": OperationState.IN_PROGRESS,
  succeeded: OperationState.SUCCEEDED,
  failed: OperationState.FAILED,
};

export function instanceToProto(r: InstanceRow): MessageInitShape<typeof InstanceSchema> {
  return {
    instanceId: r.instanceId,
    uuid: r.uuid,
    serviceId: r.serviceId,
    planId: r.planId,
    parameters: r.parameters as JsonObject,
    state: STATE_TO_PROTO[r.state],
    operation: r.operation,
    operationKind: KIND_TO_PROTO[r.operationKind],
    vmUuid: r.vmUuid,
    eipUuid: r.eipUuid,
    address: r.address,
    ...(r.errorReason ? { error: { reason: r.errorReason, message: r.errorMessage } } : {}),
    createTime: timestampFromDate(r.createdAt),
    updateTime: timestampFromDate(r.updatedAt),
    revision: BigInt(r.revision),
  };
}

export function operationToProto(o: OperationView): MessageInitShape<typeof GetInstanceOperationResponseSchema> {
  return { operation: o.operation, kind: KIND_TO_PROTO[o.kind], state: OPERATION_STATE[o.state], description: o.description, percent: o.percent, instance: instanceToProto(o.instance) };
}

export function bindingToProto(b: BindingRow, instance: InstanceRow): MessageInitShape<typeof BindingSchema> {
  return { bindingId: b.bindingId, instanceId: instance.instanceId, parameters: b.parameters as JsonObject, credentials: credentialsOf(b, instance), createTime: timestampFromDate(b.createdAt) };
}

export function catalogToProto(s: CatalogEntry): MessageInitShape<typeof CatalogServiceSchema> {
  return {
    id: s.id,
    name: s.name,
    description: s.description,
    bindable: s.bindable,
    planUpdateable: s.planUpdateable,
    tags: s.tags,
    plans: s.plans.map((p) => ({
      id: p.id,
      name: p.name,
      description: p.description,
      free: p.free,
      cpu: p.cpu,
      memoryBytes: p.memoryBytes,
      rootVolumeBytes: p.rootVolumeBytes,
      createParametersSchema: JSON.stringify(p.schemas.create),
      updateParametersSchema: JSON.stringify(p.schemas.update),
    })),
  };
}
