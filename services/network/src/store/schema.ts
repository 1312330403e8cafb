import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, check, index, integer, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The network service's own schema: no other service reads these tables. */
export const network = pgSchema("network");

/** IPv4 networks. Addresses are kept as integers (`*_int`) so ranges and allocation are arithmetic. */
export const l3Networks = network.table(
  "l3_networks",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    cidr: text().notNull(),
    networkInt: bigint("network_int", { mode: "number" }).notNull(),
    prefixLength: integer("prefix_length").notNull(),
    gateway: text().notNull(),
    dns: text().array().notNull().default(sql`'{}'::text[]`),
    public: boolean().notNull().default(false),
    clientRequestId: text("client_request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("l3_networks_seq_uq").on(t.seq),
    uniqueIndex("l3_networks_client_request_id_uq").on(t.clientRequestId),
    check("l3_networks_prefix", sql`${t.prefixLength} BETWEEN 8 AND 30`),
  ],
);

/**
 * Allocatable ranges of a network, both ends included. `cursor_int` is where the next allocation
 * starts looking (one past the last address handed out), so a busy network is not scanned from
 * its start by every allocation; it wraps around to reuse released addresses.
 */
export const ipRanges = network.table(
  "ip_ranges",
  {
    uuid: uuid().primaryKey(),
    l3NetworkUuid: uuid("l3_network_uuid").notNull(),
    startInt: bigint("start_int", { mode: "number" }).notNull(),
    endInt: bigint("end_int", { mode: "number" }).notNull(),
    cursorInt: bigint("cursor_int", { mode: "number" }).notNull(),
    clientRequestId: text("client_request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("ip_ranges_l3_idx").on(t.l3NetworkUuid, t.startInt),
    uniqueIndex("ip_ranges_client_request_id_uq").on(t.clientRequestId),
    check("ip_ranges_ordered", sql`${t.startInt} <= ${t.endInt} AND ${t.cursorInt} BETWEEN ${t.startInt} AND ${t.endInt}`),
  ],
);

export const ipHolderKind = network.enum("ip_holder_kind", ["Nic", "Vip"]);

/**
 * Held addresses. The primary key (network, address) is what makes a double hand-out impossible:
 * two allocations racing for one address on any replicas both try to insert it and one fails, so
 * no lock is needed. A holder holds at most one address (`ip_addresses_holder_uq`): a retried
 * allocation for a NIC finds the address it got.
 */
export const ipAddresses = network.table(
  "ip_addresses",
  {
    l3NetworkUuid: uuid("l3_network_uuid").notNull(),
    ipInt: bigint("ip_int", { mode: "number" }).notNull(),
    ip: text().notNull(),
    rangeUuid: uuid("range_uuid").notNull(),
    holderKind: ipHolderKind("holder_kind").notNull(),
    holderUuid: uuid("holder_uuid").notNull(),
    /** The VM of a NIC holder. */
    vmUuid: uuid("vm_uuid"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "ip_addresses_pkey", columns: [t.l3NetworkUuid, t.ipInt] }),
    uniqueIndex("ip_addresses_holder_uq").on(t.holderUuid),
    index("ip_addresses_vm_idx").on(t.vmUuid),
    index("ip_addresses_range_idx").on(t.rangeUuid),
  ],
);

export const eipStatus = network.enum("eip_status", ["Detached", "Applying", "Active", "Down", "Releasing", "Error", "Deleting"]);

/**
 * Elastic IPs. The binding (`vm_nic_uuid`, `guest_ip`, `vm_uuid`) is what the user asked for;
 * `status` (with `status_reason`) is what the agents have, as last observed by the EIP's owner.
 * `sync_gen` counts the requests to bring the agents to the binding (an attach, a detach, a VM
 * that stopped or moved); `synced_gen` the last one done, so `sync_gen > synced_gen` is durable
 * work: the owner's collector finds it after a crash or a failed agent call (from `retry_at`).
 * `fence` moves on with every sync an owner starts: it is the token agent commands carry, so a
 * late command of a replica that lost the EIP is refused by the agent.
 */
export const eips = network.table(
  "eips",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    l3NetworkUuid: uuid("l3_network_uuid").notNull(),
    vipUuid: uuid("vip_uuid").notNull(),
    vipIp: text("vip_ip").notNull(),
    vmNicUuid: uuid("vm_nic_uuid"),
    vmUuid: uuid("vm_uuid"),
    guestIp: text("guest_ip"),
    status: eipStatus().notNull().default("Detached"),
    statusReason: text("status_reason").notNull().default(""),
    /** The host whose agent has (Active) or is getting (Applying) its rule. */
    hostUuid: uuid("host_uuid"),
    deleting: boolean().notNull().default(false),
    syncGen: bigint("sync_gen", { mode: "number" }).notNull().default(0),
    syncedGen: bigint("synced_gen", { mode: "number" }).notNull().default(0),
    attempts: integer().notNull().default(0),
    retryAt: timestamp("retry_at", { withTimezone: true }).notNull().defaultNow(),
    fence: bigint({ mode: "number" }).notNull().default(0),
    lastActor: text("last_actor").notNull().default(""),
    clientRequestId: text("client_request_id"),
    revision: bigint({ mode: "number" }).notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("eips_seq_uq").on(t.seq),
    uniqueIndex("eips_client_request_id_uq").on(t.clientRequestId),
    // One elastic IP per NIC: a second attach to the same NIC is refused by the index.
    uniqueIndex("eips_vm_nic_uq").on(t.vmNicUuid),
    index("eips_vm_idx").on(t.vmUuid),
    index("eips_pending_idx").on(t.retryAt).where(sql`${t.syncGen} > ${t.syncedGen}`),
    check("eips_binding_whole", sql`(${t.vmNicUuid} IS NULL) = (${t.guestIp} IS NULL) AND (${t.vmNicUuid} IS NULL) = (${t.vmUuid} IS NULL)`),
  ],
);

export const eipRuleState = network.enum("eip_rule_state", ["Applying", "Applied", "Releasing"]);

/**
 * What the network service believes each agent has: a row is written before an apply is sent
 * (`Applying`: the agent may have it from then on) and deleted only after the agent confirmed the
 * release, so a crash anywhere in between leaves a row that the next sync releases or confirms.
 * A row Applying or Releasing keeps the command sent (`task_id`, `task_fence`, `vm_uuid` for its
 * body) until its outcome is known: a command whose answer was lost (a timeout, a reset, a reply
 * replaced by a 500) may still run on the agent, so before anything else is sent for the rule,
 * the next sync sends that same command again — the agent answers a repeated task id from its
 * first run, once that has ended — and only then acts on what it learnt.
 */
export const eipRules = network.table(
  "eip_rules",
  {
    eipUuid: uuid("eip_uuid").notNull(),
    hostUuid: uuid("host_uuid").notNull(),
    vipIp: text("vip_ip").notNull(),
    guestIp: text("guest_ip").notNull(),
    vmNicUuid: uuid("vm_nic_uuid").notNull(),
    state: eipRuleState().notNull(),
    vmUuid: uuid("vm_uuid"),
    taskId: text("task_id"),
    taskFence: bigint("task_fence", { mode: "number" }),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "eip_rules_pkey", columns: [t.eipUuid, t.hostUuid] }), index("eip_rules_host_idx").on(t.hostUuid)],
);

export const requests = requestsTable(network);
export const outbox = outboxTable(network);
export const leases = leasesTable(network);

export type L3NetworkRow = typeof l3Networks.$inferSelect;
export type IpRangeRow = typeof ipRanges.$inferSelect;
export type IpAddressRow = typeof ipAddresses.$inferSelect;
export type IpHolderKindValue = (typeof ipHolderKind.enumValues)[number];
export type EipRow = typeof eips.$inferSelect;
export type EipStatusValue = (typeof eipStatus.enumValues)[number];
export type EipRuleRow = typeof eipRules.$inferSelect;
export type EipRuleStateValue = (typeof eipRuleState.enumValues)[number];
export const tables = { l3Networks, ipRanges, ipAddresses, eips, eipRules, requests, outbox, leases };
