CREATE TYPE "storage"."backup_mode" AS ENUM('Full', 'Incremental');--> statement-breakpoint
CREATE TYPE "storage"."backup_state" AS ENUM('Creating', 'Available', 'Error', 'Canceled', 'Restoring', 'Deleting', 'Deleted');--> statement-breakpoint
ALTER TYPE "storage"."volume_state" ADD VALUE 'Restoring';--> statement-breakpoint
CREATE TABLE "storage"."backup_storages" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"total_capacity" bigint NOT NULL,
	"used_bytes" bigint DEFAULT 0 NOT NULL,
	"client_request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "backup_storages_used_within_capacity" CHECK ("storage"."backup_storages"."used_bytes" >= 0 AND "storage"."backup_storages"."used_bytes" <= "storage"."backup_storages"."total_capacity")
);
--> statement-breakpoint
CREATE TABLE "storage"."backups" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"volume_uuid" uuid NOT NULL,
	"backup_storage_uuid" uuid NOT NULL,
	"mode" "storage"."backup_mode" NOT NULL,
	"parent_uuid" uuid,
	"state" "storage"."backup_state" DEFAULT 'Creating' NOT NULL,
	"error" text DEFAULT '' NOT NULL,
	"volume_size_bytes" bigint NOT NULL,
	"size_bytes" bigint DEFAULT 0 NOT NULL,
	"held_bytes" bigint DEFAULT 0 NOT NULL,
	"job_uuid" uuid NOT NULL,
	"client_request_id" text,
	"task_host_uuid" uuid,
	"restore_job_uuid" uuid,
	"restore_volume_uuid" uuid,
	"last_actor" text DEFAULT '' NOT NULL,
	"revision" bigint DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "backups_held_non_negative" CHECK ("storage"."backups"."held_bytes" >= 0 AND "storage"."backups"."size_bytes" >= 0),
	CONSTRAINT "backups_parent_iff_incremental" CHECK (("storage"."backups"."mode" = 'Incremental') = ("storage"."backups"."parent_uuid" IS NOT NULL)),
	CONSTRAINT "backups_restore_iff_restoring" CHECK (("storage"."backups"."state" = 'Restoring') = ("storage"."backups"."restore_job_uuid" IS NOT NULL))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "backup_storages_seq_uq" ON "storage"."backup_storages" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "backup_storages_client_request_id_uq" ON "storage"."backup_storages" USING btree ("client_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "backups_seq_uq" ON "storage"."backups" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "backups_client_request_id_uq" ON "storage"."backups" USING btree ("client_request_id");--> statement-breakpoint
CREATE INDEX "backups_volume_idx" ON "storage"."backups" USING btree ("volume_uuid","backup_storage_uuid");--> statement-breakpoint
CREATE INDEX "backups_parent_idx" ON "storage"."backups" USING btree ("parent_uuid");