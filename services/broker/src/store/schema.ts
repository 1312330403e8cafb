import { sql } from "drizzle-orm";
import { bigint, bigserial, boolean, index, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The broker's own schema: no other service reads these tables. */
export const broker = pgSchema("broker");

export const instanceState = broker.enum("instance_state", ["Provisioning", "Ready", "Failed", "Updating", "Deprovisioning", "Deleted"]);
export const operationKind = broker.enum("operation_kind", ["provision", "update", "deprovision"]);

/**
 * Service instances. `(tenant, instance_id)` is the caller's idempotency key, and the partial
 * unique index over the live ones is what makes a provision idempotent (seed 003): two identical
 * requests racing on any replicas both insert and one conflicts, then reads the winner's row — no
 * lock, no waiting. A Deleted instance leaves the index, so its key may provision again (a new
 * row, a new uuid).
 */
export const instances = broker.table(
  "instances",
  {
    uuid: uuid().primaryKey(),
    tenant: text().notNull(),
    instanceId: text("instance_id").notNull(),
    serviceId: text("service_id").notNull(),
    planId: text("plan_id").notNull(),
    parameters: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    /** sha256 of the canonical (service, plan, parameters) of the provision: what "identical" means. */
    requestHash: text("request_hash").notNull(),
    /** Parameters an update in flight asks for; they become `parameters` when it succeeds. */
    pendingParameters: jsonb("pending_parameters").$type<Record<string, unknown>>(),
    state: instanceState().notNull().default("Provisioning"),
    /** The long job of the last operation; chosen before it is submitted. */
    operation: uuid().notNull(),
    operationKind: operationKind("operation_kind").notNull().default("provision"),
    /** Whether longjob has accepted that job; a row left unsubmitted by a dead replica is submitted by the sweep. */
    operationSubmitted: boolean("operation_submitted").notNull().default(false),
    vmUuid: text("vm_uuid").notNull().default(""),
    eipUuid: text("eip_uuid").notNull().default(""),
    address: text().notNull().default(""),
    errorReason: text("error_reason").notNull().default(""),
    errorMessage: text("error_message").notNull().default(""),
    revision: bigint({ mode: "number" }).notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("instances_live_key_uq").on(t.tenant, t.instanceId).where(sql`${t.state} <> 'Deleted'`),
    uniqueIndex("instances_seq_uq").on(t.seq),
    uniqueIndex("instances_operation_uq").on(t.operation),
    index("instances_tenant_key_idx").on(t.tenant, t.instanceId, t.seq),
    index("instances_unsubmitted_idx").on(t.updatedAt).where(sql`NOT ${t.operationSubmitted}`),
  ],
);

/**
 * Bindings: credentials to a Ready instance, keyed by the caller's binding id within the
 * instance. Revoked ones are deleted (their key may bind again).
 */
export const bindings = broker.table(
  "bindings",
  {
    uuid: uuid().primaryKey(),
    tenant: text().notNull(),
    instanceUuid: uuid("instance_uuid").notNull(),
    bindingId: text("binding_id").notNull(),
    parameters: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    requestHash: text("request_hash").notNull(),
    username: text().notNull(),
    password: text().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("bindings_key_uq").on(t.instanceUuid, t.bindingId)],
);

export const requests = requestsTable(broker);
export const outbox = outboxTable(broker);
export const leases = leasesTable(broker);

export const tables = { instances, bindings, requests, outbox, leases };

export type InstanceRow = typeof instances.$inferSelect;
export type BindingRow = typeof bindings.$inferSelect;
export type InstanceStateName = (typeof instanceState.enumValues)[number];
export type OperationKindName = (typeof operationKind.enumValues)[number];
