CREATE SCHEMA "broker";
--> statement-breakpoint
CREATE TYPE "broker"."instance_state" AS ENUM('Provisioning', 'Ready', 'Failed', 'Updating', 'Deprovisioning', 'Deleted');--> statement-breakpoint
CREATE TYPE "broker"."operation_kind" AS ENUM('provision', 'update', 'deprovision');--> statement-breakpoint
CREATE TABLE "broker"."bindings" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"tenant" text NOT NULL,
	"instance_uuid" uuid NOT NULL,
	"binding_id" text NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_hash" text NOT NULL,
	"username" text NOT NULL,
	"password" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "broker"."instances" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"tenant" text NOT NULL,
	"instance_id" text NOT NULL,
	"service_id" text NOT NULL,
	"plan_id" text NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_hash" text NOT NULL,
	"pending_parameters" jsonb,
	"state" "broker"."instance_state" DEFAULT 'Provisioning' NOT NULL,
	"operation" uuid NOT NULL,
	"operation_kind" "broker"."operation_kind" DEFAULT 'provision' NOT NULL,
	"operation_submitted" boolean DEFAULT false NOT NULL,
	"vm_uuid" text DEFAULT '' NOT NULL,
	"eip_uuid" text DEFAULT '' NOT NULL,
	"address" text DEFAULT '' NOT NULL,
	"error_reason" text DEFAULT '' NOT NULL,
	"error_message" text DEFAULT '' NOT NULL,
	"revision" bigint DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "broker"."leases" (
	"holder" text PRIMARY KEY NOT NULL,
	"replica_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "broker"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"domain" text NOT NULL,
	"event" text NOT NULL,
	"key" text,
	"payload" jsonb NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "broker"."requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"method" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"response" text,
	"holder" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "bindings_key_uq" ON "broker"."bindings" USING btree ("instance_uuid","binding_id");--> statement-breakpoint
CREATE UNIQUE INDEX "instances_live_key_uq" ON "broker"."instances" USING btree ("tenant","instance_id") WHERE "broker"."instances"."state" <> 'Deleted';--> statement-breakpoint
CREATE UNIQUE INDEX "instances_seq_uq" ON "broker"."instances" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "instances_operation_uq" ON "broker"."instances" USING btree ("operation");--> statement-breakpoint
CREATE INDEX "instances_tenant_key_idx" ON "broker"."instances" USING btree ("tenant","instance_id","seq");--> statement-breakpoint
CREATE INDEX "instances_unsubmitted_idx" ON "broker"."instances" USING btree ("updated_at") WHERE NOT "broker"."instances"."operation_submitted";--> statement-breakpoint
CREATE INDEX "leases_expires_at_idx" ON "broker"."leases" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "requests_created_at_idx" ON "broker"."requests" USING btree ("created_at");