CREATE SCHEMA "storage";
--> statement-breakpoint
CREATE TYPE "storage"."volume_kind" AS ENUM('Root', 'Data');--> statement-breakpoint
CREATE TYPE "storage"."volume_state" AS ENUM('Available', 'InUse', 'Deleted');--> statement-breakpoint
CREATE TABLE "storage"."leases" (
	"holder" text PRIMARY KEY NOT NULL,
	"replica_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "storage"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"domain" text NOT NULL,
	"event" text NOT NULL,
	"key" text,
	"payload" jsonb NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "storage"."primary_storages" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"host_uuid" uuid,
	"total_capacity" bigint NOT NULL,
	"used_bytes" bigint DEFAULT 0 NOT NULL,
	"client_request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "primary_storages_used_within_capacity" CHECK ("storage"."primary_storages"."used_bytes" >= 0 AND "storage"."primary_storages"."used_bytes" <= "storage"."primary_storages"."total_capacity")
);
--> statement-breakpoint
CREATE TABLE "storage"."requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"method" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"response" text,
	"holder" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "storage"."volumes" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"primary_storage_uuid" uuid NOT NULL,
	"kind" "storage"."volume_kind" NOT NULL,
	"size_bytes" bigint NOT NULL,
	"state" "storage"."volume_state" DEFAULT 'Available' NOT NULL,
	"vm_uuid" uuid,
	"client_request_id" text,
	"last_actor" text DEFAULT '' NOT NULL,
	"revision" bigint DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "volumes_size_positive" CHECK ("storage"."volumes"."size_bytes" > 0),
	CONSTRAINT "volumes_vm_iff_in_use" CHECK (("storage"."volumes"."state" = 'InUse') = ("storage"."volumes"."vm_uuid" IS NOT NULL))
);
--> statement-breakpoint
CREATE INDEX "leases_expires_at_idx" ON "storage"."leases" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "primary_storages_seq_uq" ON "storage"."primary_storages" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "primary_storages_client_request_id_uq" ON "storage"."primary_storages" USING btree ("client_request_id");--> statement-breakpoint
CREATE INDEX "primary_storages_host_idx" ON "storage"."primary_storages" USING btree ("host_uuid");--> statement-breakpoint
CREATE INDEX "requests_created_at_idx" ON "storage"."requests" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "volumes_seq_uq" ON "storage"."volumes" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "volumes_client_request_id_uq" ON "storage"."volumes" USING btree ("client_request_id");--> statement-breakpoint
CREATE INDEX "volumes_primary_storage_idx" ON "storage"."volumes" USING btree ("primary_storage_uuid");--> statement-breakpoint
CREATE INDEX "volumes_vm_idx" ON "storage"."volumes" USING btree ("vm_uuid");