import { optionalString } from "../fields";
import type { ProtocolHandlers } from "./types";

/** Handshake and liveness: what the management plane uses to add and track a host. */
export const hostCommands: ProtocolHandlers<"host/connect" | "host/ping" | "host/vms"> = {
  /** Returns the host's facts; records who connected (the management plane's host uuid, if sent). */
  "host/connect": ({ host, body }) => {
    const hostUuid = optionalString(body, "hostUuid");
    const previous = host.state.connection;
    host.state.connection = {
      ...(hostUuid === undefined ? {} : { hostUuid }),
      connectedAt: new Date().toISOString(),
      count: (previous?.count ?? 0) + 1,
    };
    return { ...host.state.facts };
  },

  /** Liveness; the boot id lets the caller notice an agent restart. */
  "host/ping": ({ host }) => ({
    hostUuid: host.uuid,
    bootId: host.state.facts.bootId,
    connected: host.state.connection !== undefined,
  }),

  /**
   * The VMs this hypervisor knows and their power state: what the management plane compares with
   * its database after an agent restart (ZStack's VM state sync).
   */
  "host/vms": ({ host }) => ({
    hostUuid: host.uuid,
    vms: [...host.state.vms.values()].map((vm) => ({ vmUuid: vm.vmUuid, state: vm.state })),
  }),
};
