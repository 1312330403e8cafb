CREATE SCHEMA "compute";
--> statement-breakpoint
CREATE TYPE "compute"."host_state" AS ENUM('Enabled', 'Disabled', 'Maintenance');--> statement-breakpoint
CREATE TYPE "compute"."host_status" AS ENUM('Connecting', 'Connected', 'Disconnected');--> statement-breakpoint
CREATE TYPE "compute"."vm_state" AS ENUM('Created', 'Starting', 'Running', 'Stopping', 'Stopped', 'Rebooting', 'Destroying', 'Destroyed', 'Error');--> statement-breakpoint
CREATE TABLE "compute"."hosts" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"agent_url" text NOT NULL,
	"status" "compute"."host_status" DEFAULT 'Connecting' NOT NULL,
	"state" "compute"."host_state" DEFAULT 'Enabled' NOT NULL,
	"cpu_capacity" integer NOT NULL,
	"memory_capacity" bigint NOT NULL,
	"cpu_used" integer DEFAULT 0 NOT NULL,
	"memory_used" bigint DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"client_request_id" text,
	"agent_boot_id" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone,
	"seq" bigserial NOT NULL,
	CONSTRAINT "hosts_cpu_within_capacity" CHECK ("compute"."hosts"."cpu_used" >= 0 AND "compute"."hosts"."cpu_used" <= "compute"."hosts"."cpu_capacity"),
	CONSTRAINT "hosts_memory_within_capacity" CHECK ("compute"."hosts"."memory_used" >= 0 AND "compute"."hosts"."memory_used" <= "compute"."hosts"."memory_capacity")
);
--> statement-breakpoint
CREATE TABLE "compute"."vms" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"state" "compute"."vm_state" DEFAULT 'Created' NOT NULL,
	"host_uuid" uuid,
	"cpu" integer NOT NULL,
	"memory" bigint NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"client_request_id" text,
	"request_hash" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD CONSTRAINT "vms_host_uuid_hosts_uuid_fk" FOREIGN KEY ("host_uuid") REFERENCES "compute"."hosts"("uuid") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_agent_url_uq" ON "compute"."hosts" USING btree ("agent_url");--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_client_request_id_uq" ON "compute"."hosts" USING btree ("client_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_seq_uq" ON "compute"."hosts" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "vms_client_request_id_uq" ON "compute"."vms" USING btree ("client_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "vms_seq_uq" ON "compute"."vms" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "vms_host_uuid_idx" ON "compute"."vms" USING btree ("host_uuid");--> statement-breakpoint
CREATE INDEX "vms_state_idx" ON "compute"."vms" USING btree ("state");