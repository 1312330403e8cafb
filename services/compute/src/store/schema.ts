import { sql } from "drizzle-orm";
import { bigint, bigserial, check, index, integer, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The compute service's own schema: no other service reads these tables. */
export const compute = pgSchema("compute");

export const hostStatus = compute.enum("host_status", ["Connecting", "Connected", "Disconnected"]);
export const hostState = compute.enum("host_state", ["Enabled", "Disabled", "Maintenance"]);
export const vmState = compute.enum("vm_state", ["Created", "Starting", "Running", "Stopping", "Stopped", "Rebooting", "Destroying", "Destroyed", "Error", "Migrating"]);

/**
 * Hosts and their capacity accounting. `cpu_used` / `memory_used` are the sums reserved by the VMs
 * placed on the host; the checks make over-commit impossible whatever the interleaving of
 * concurrent creates, because a reservation is one conditional UPDATE that the check guards.
 */
export const hosts = compute.table(
  "hosts",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    agentUrl: text("agent_url").notNull(),
    status: hostStatus().notNull().default("Connecting"),
    state: hostState().notNull().default("Enabled"),
    cpuCapacity: integer("cpu_capacity").notNull(),
    memoryCapacity: bigint("memory_capacity", { mode: "number" }).notNull(),
    cpuUsed: integer("cpu_used").notNull().default(0),
    memoryUsed: bigint("memory_used", { mode: "number" }).notNull().default(0),
    lastError: text("last_error").notNull().default(""),
    clientRequestId: text("client_request_id"),
    /** The agent's boot id from the last handshake: a change means the agent restarted. */
    agentBootId: text("agent_boot_id").notNull().default(""),
    /**
     * The host's fencing token: incremented by every status write, which must name the value it
     * read (compare-and-set); every command to the host's agent about the host carries it. A
     * replica that read the host before another wrote it can then neither write it nor command its
     * agent as its owner.
     */
    fence: bigint({ mode: "number" }).notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("hosts_agent_url_uq").on(t.agentUrl),
    uniqueIndex("hosts_client_request_id_uq").on(t.clientRequestId),
    uniqueIndex("hosts_seq_uq").on(t.seq),
    check("hosts_cpu_within_capacity", sql`${t.cpuUsed} >= 0 AND ${t.cpuUsed} <= ${t.cpuCapacity}`),
    check("hosts_memory_within_capacity", sql`${t.memoryUsed} >= 0 AND ${t.memoryUsed} <= ${t.memoryCapacity}`),
  ],
);

/**
 * VM instances. `host_uuid` is set while the VM holds capacity on that host (from placement until
 * destroy, or until a failed create is rolled back), so capacity accounting can always be
 * recomputed from this table.
 */
export const vms = compute.table(
  "vms",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    state: vmState().notNull().default("Created"),
    hostUuid: uuid("host_uuid").references(() => hosts.uuid, { onDelete: "restrict" }),
    cpu: integer().notNull(),
    memory: bigint({ mode: "number" }).notNull(),
    lastError: text("last_error").notNull().default(""),
    clientRequestId: text("client_request_id"),
    /**
     * The replica incarnation (`<replicaId>@<startedAt>`) that moved the VM last. A VM in a
     * transient state whose actor is no live replica was left mid-operation: its owner reconciles it.
     */
    lastActor: text("last_actor").notNull().default(""),
    /**
     * The VM's fencing token: incremented by every change of the VM, sent with every agent command
     * about it. An agent refuses a command with an older token than the newest it has seen, so a
     * replica whose VM was taken over cannot act on it through the agent either.
     */
    fence: bigint({ mode: "number" }).notNull().default(0),
    /**
     * The request id of the operation that moved the VM last (null for changes no request made).
     * A retry of that request after its replica died finds its outcome here (see `VmManager`).
     */
    opRequest: text("op_request"),
    /**
     * While Migrating: the host whose capacity the migration has reserved for the VM (it holds
     * capacity on both hosts until the switch or the rollback clears this), so capacity can be
     * recomputed from this table at any instant, and a migration resumed by another replica knows
     * what its predecessor reserved.
     */
    migrateTargetUuid: uuid("migrate_target_uuid").references(() => hosts.uuid, { onDelete: "restrict" }),
    /** Its root volume (storage's), recorded once storage created it, before the create answers. */
    rootVolumeUuid: uuid("root_volume_uuid"),
    /**
     * How many NICs it has (`vm_nics`; recorded with its root volume before its create answers),
     * 0 once Destroyed. Kept on the row so that the work NICs cause — loading them, the EIP sync
     * mark of a transition (the `vms_eip_sync` trigger), their release — costs a VM without any
     * nothing: no query, no mark.
     */
    nicCount: integer("nic_count").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("vms_client_request_id_uq").on(t.clientRequestId),
    uniqueIndex("vms_seq_uq").on(t.seq),
    index("vms_host_uuid_idx").on(t.hostUuid),
    index("vms_state_idx").on(t.state),
  ],
);

/**
 * VMs whose volumes storage has still to release (ReleaseVmVolumes): written with the destroy
 * that ends the VM, or with the rollback of a create whose root volume storage may have made
 * without compute learning it; deleted once storage answered. Nothing leaks while storage is
 * down: every replica drains this table (VolumeReleaser), with backoff, until it is empty.
 */
export const volumeReleases = compute.table("volume_releases", {
  vmUuid: uuid("vm_uuid").primaryKey(),
  attempts: integer().notNull().default(0),
  lastError: text("last_error").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * A VM's network interfaces: compute's (it owns them, `../shared/DESIGN.md`), their addresses
 * network's (AllocateNicIps, ChangeNicIp). A NIC's uuid is derived from its VM's and its device
 * index (`domain/vm-nics.ts`), so a retried create asks network for the same NICs and gets the
 * same addresses; its MAC from its uuid, unique here so a collision is refused, never shared.
 * Deleted with the destroy that ends the VM (network gives the addresses back, `nic_releases`).
 */
export const vmNics = compute.table(
  "vm_nics",
  {
    uuid: uuid().primaryKey(),
    vmUuid: uuid("vm_uuid").notNull().references(() => vms.uuid, { onDelete: "cascade" }),
    l3NetworkUuid: uuid("l3_network_uuid").notNull(),
    ip: text().notNull(),
    mac: text().notNull(),
    deviceIndex: integer("device_index").notNull(),
  },
  (t) => [uniqueIndex("vm_nics_mac_uq").on(t.mac), uniqueIndex("vm_nics_vm_device_uq").on(t.vmUuid, t.deviceIndex)],
);

/**
 * VMs whose NIC addresses network has still to give back (ReleaseVmNics): written with the destroy
 * that ends a VM with NICs, or with the rollback of a create some of whose NICs network may have
 * given an address; deleted once network answered (MarkDrainer, like `volume_releases`).
 */
export const nicReleases = compute.table("nic_releases", {
  vmUuid: uuid("vm_uuid").primaryKey(),
  attempts: integer().notNull().default(0),
  lastError: text("last_error").notNull().default(""),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The columns of a mark drained without holding it locked through its call (see
 * `store/mark-store.ts`): `generation` moves on when the mark is written again meanwhile, so the
 * drain that called deletes it only if nothing new happened since; `claimed_until` shares the
 * work between replicas and lets another take a mark whose drainer died.
 */
function claimedMark() {
  return {
    generation: bigint({ mode: "number" }).notNull().default(0),
    attempts: integer().notNull().default(0),
    lastError: text("last_error").notNull().default(""),
    claimedUntil: timestamp("claimed_until", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  };
}

/**
 * VMs whose EIP host (where their elastic IPs' rules must be: `host_uuid` while Running,
 * Rebooting or Migrating, none otherwise) changed, to tell network (SyncVmEips). Written by the
 * `vms_eip_sync` trigger (migration `0012`) in the very statement of the change, for VMs with NICs
 * only, so a crash after the commit loses nothing and no code path can forget it.
 */
export const eipSyncs = compute.table("eip_syncs", { vmUuid: uuid("vm_uuid").primaryKey(), ...claimedMark() });

/** Hosts whose agent (re)connected, to tell network (ReconcileHostEips: the agent may have lost or kept stale rules). */
export const hostEipReconciles = compute.table("host_eip_reconciles", { hostUuid: uuid("host_uuid").primaryKey(), ...claimedMark() });

/** Request-id idempotency of every mutating RPC (the kit's table, in compute's schema). */
export const requests = requestsTable(compute);

/** Domain events written with the changes they report (the kit's outbox, relayed to JetStream). */
export const outbox = outboxTable(compute);

/** Replica leases: the fencing authority of owner writes (the kit's table, in compute's schema). */
export const leases = leasesTable(compute);

export type HostRow = typeof hosts.$inferSelect;
export type VmRow = typeof vms.$inferSelect;
export type HostStatusValue = (typeof hostStatus.enumValues)[number];
export type HostStateValue = (typeof hostState.enumValues)[number];
export type VmStateValue = (typeof vmState.enumValues)[number];
export type VmNicRow = typeof vmNics.$inferSelect;
export const tables = { hosts, vms, volumeReleases, vmNics, nicReleases, eipSyncs, hostEipReconciles, requests, outbox, leases };
