import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { HostSchema, HostState, HostStatus } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmSchema, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { HostRow, HostStateValue, HostStatusValue, VmNicRow, VmRow, VmStateValue } from "../store/schema";

/** Database enum values ↔ proto enums: one table each way, so a new state cannot be half-mapped. */
export const VM_STATE_TO_PROTO: Record<VmStateValue, VmState> = {
  Created: VmState.CREATED,
  Starting: VmState.STARTING,
  Running: VmState.RUNNING,
  Stopping: VmState.STOPPING,
  Stopped: VmState.STOPPED,
  Rebooting: VmState.REBOOTING,
  Destroying: VmState.DESTROYING,
  Destroyed: VmState.DESTROYED,
  Error: VmState.ERROR,
  Migrating: VmState.MIGRATING,
};
export const VM_STATE_FROM_PROTO = invert(VM_STATE_TO_PROTO);

export const HOST_STATUS_TO_PROTO: Record<HostStatusValue, HostStatus> = {
  Connecting: HostStatus.CONNECTING,
  Connected: HostStatus.CONNECTED,
  Disconnected: HostStatus.DISCONNECTED,
};
export const HOST_STATUS_FROM_PROTO = invert(HOST_STATUS_TO_PROTO);

export const HOST_STATE_TO_PROTO: Record<HostStateValue, HostState> = {
  Enabled: HostState.ENABLED,
  Disabled: HostState.DISABLED,
  Maintenance: HostState.MAINTENANCE,
};
export const HOST_STATE_FROM_PROTO = invert(HOST_STATE_TO_PROTO);

/** A VM as the API shows it, with its NICs (`nics`: the VM's rows from `vm_nics`, any order; none when it has none). */
export function vmToProto(vm: VmRow, nics: readonly VmNicRow[] = []): MessageInitShape<typeof VmSchema> {
  return {
    uuid: vm.uuid,
    name: vm.name,
    state: VM_STATE_TO_PROTO[vm.state],
    hostUuid: vm.hostUuid ?? "",
    cpu: vm.cpu,
    memoryBytes: BigInt(vm.memory),
    lastError: vm.lastError,
    clientRequestId: vm.clientRequestId ?? "",
    createTime: timestampFromDate(vm.createdAt),
    updateTime: timestampFromDate(vm.updatedAt),
    revision: BigInt(vm.fence),
    rootVolumeUuid: vm.rootVolumeUuid ?? "",
    nics: [...nics].sort((a, b) => a.deviceIndex - b.deviceIndex).map((n) => ({ uuid: n.uuid, l3NetworkUuid: n.l3NetworkUuid, ip: n.ip, mac: n.mac, deviceIndex: n.deviceIndex })),
  };
}

export function hostToProto(host: HostRow): MessageInitShape<typeof HostSchema> {
  return {
    uuid: host.uuid,
    name: host.name,
    agentUrl: host.agentUrl,
    status: HOST_STATUS_TO_PROTO[host.status],
    state: HOST_STATE_TO_PROTO[host.state],
    cpuCapacity: host.cpuCapacity,
    memoryCapacityBytes: BigInt(host.memoryCapacity),
    cpuUsed: host.cpuUsed,
    memoryUsedBytes: BigInt(host.memoryUsed),
    lastError: host.lastError,
    createTime: timestampFromDate(host.createdAt),
    ...(host.lastSeenAt ? { lastSeenTime: timestampFromDate(host.lastSeenAt) } : {}),
  };
}

function invert<K extends string, V extends number>(map: Record<K, V>): Map<V, K> {
  return new Map(Object.entries(map).map(([k, v]) => [v as V, k as K]));
}
