CREATE SCHEMA "network";
--> statement-breakpoint
CREATE TYPE "network"."eip_rule_state" AS ENUM('Applying', 'Applied', 'Releasing');--> statement-breakpoint
CREATE TYPE "network"."eip_status" AS ENUM('Detached', 'Applying', 'Active', 'Down', 'Releasing', 'Error', 'Deleting');--> statement-breakpoint
CREATE TYPE "network"."ip_holder_kind" AS ENUM('Nic', 'Vip');--> statement-breakpoint
CREATE TABLE "network"."eip_rules" (
	"eip_uuid" uuid NOT NULL,
	"host_uuid" uuid NOT NULL,
	"vip_ip" text NOT NULL,
	"guest_ip" text NOT NULL,
	"vm_nic_uuid" uuid NOT NULL,
	"state" "network"."eip_rule_state" NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "eip_rules_pkey" PRIMARY KEY("eip_uuid","host_uuid")
);
--> statement-breakpoint
CREATE TABLE "network"."eips" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"l3_network_uuid" uuid NOT NULL,
	"vip_uuid" uuid NOT NULL,
	"vip_ip" text NOT NULL,
	"vm_nic_uuid" uuid,
	"vm_uuid" uuid,
	"guest_ip" text,
	"status" "network"."eip_status" DEFAULT 'Detached' NOT NULL,
	"status_reason" text DEFAULT '' NOT NULL,
	"host_uuid" uuid,
	"deleting" boolean DEFAULT false NOT NULL,
	"sync_gen" bigint DEFAULT 0 NOT NULL,
	"synced_gen" bigint DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"retry_at" timestamp with time zone DEFAULT now() NOT NULL,
	"fence" bigint DEFAULT 0 NOT NULL,
	"last_actor" text DEFAULT '' NOT NULL,
	"client_request_id" text,
	"revision" bigint DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "eips_binding_whole" CHECK (("network"."eips"."vm_nic_uuid" IS NULL) = ("network"."eips"."guest_ip" IS NULL) AND ("network"."eips"."vm_nic_uuid" IS NULL) = ("network"."eips"."vm_uuid" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "network"."ip_addresses" (
	"l3_network_uuid" uuid NOT NULL,
	"ip_int" bigint NOT NULL,
	"ip" text NOT NULL,
	"range_uuid" uuid NOT NULL,
	"holder_kind" "network"."ip_holder_kind" NOT NULL,
	"holder_uuid" uuid NOT NULL,
	"vm_uuid" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ip_addresses_pkey" PRIMARY KEY("l3_network_uuid","ip_int")
);
--> statement-breakpoint
CREATE TABLE "network"."ip_ranges" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"l3_network_uuid" uuid NOT NULL,
	"start_int" bigint NOT NULL,
	"end_int" bigint NOT NULL,
	"cursor_int" bigint NOT NULL,
	"client_request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ip_ranges_ordered" CHECK ("network"."ip_ranges"."start_int" <= "network"."ip_ranges"."end_int" AND "network"."ip_ranges"."cursor_int" BETWEEN "network"."ip_ranges"."start_int" AND "network"."ip_ranges"."end_int")
);
--> statement-breakpoint
CREATE TABLE "network"."l3_networks" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"cidr" text NOT NULL,
	"network_int" bigint NOT NULL,
	"prefix_length" integer NOT NULL,
	"gateway" text NOT NULL,
	"dns" text[] DEFAULT '{}'::text[] NOT NULL,
	"public" boolean DEFAULT false NOT NULL,
	"client_request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seq" bigserial NOT NULL,
	CONSTRAINT "l3_networks_prefix" CHECK ("network"."l3_networks"."prefix_length" BETWEEN 8 AND 30)
);
--> statement-breakpoint
CREATE TABLE "network"."leases" (
	"holder" text PRIMARY KEY NOT NULL,
	"replica_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "network"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"domain" text NOT NULL,
	"event" text NOT NULL,
	"key" text,
	"payload" jsonb NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "network"."requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"method" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"response" text,
	"holder" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "eip_rules_host_idx" ON "network"."eip_rules" USING btree ("host_uuid");--> statement-breakpoint
CREATE UNIQUE INDEX "eips_seq_uq" ON "network"."eips" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "eips_client_request_id_uq" ON "network"."eips" USING btree ("client_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "eips_vm_nic_uq" ON "network"."eips" USING btree ("vm_nic_uuid");--> statement-breakpoint
CREATE INDEX "eips_vm_idx" ON "network"."eips" USING btree ("vm_uuid");--> statement-breakpoint
CREATE INDEX "eips_pending_idx" ON "network"."eips" USING btree ("retry_at") WHERE "network"."eips"."sync_gen" > "network"."eips"."synced_gen";--> statement-breakpoint
CREATE UNIQUE INDEX "ip_addresses_holder_uq" ON "network"."ip_addresses" USING btree ("holder_uuid");--> statement-breakpoint
CREATE INDEX "ip_addresses_vm_idx" ON "network"."ip_addresses" USING btree ("vm_uuid");--> statement-breakpoint
CREATE INDEX "ip_addresses_range_idx" ON "network"."ip_addresses" USING btree ("range_uuid");--> statement-breakpoint
CREATE INDEX "ip_ranges_l3_idx" ON "network"."ip_ranges" USING btree ("l3_network_uuid","start_int");--> statement-breakpoint
CREATE UNIQUE INDEX "ip_ranges_client_request_id_uq" ON "network"."ip_ranges" USING btree ("client_request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "l3_networks_seq_uq" ON "network"."l3_networks" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "l3_networks_client_request_id_uq" ON "network"."l3_networks" USING btree ("client_request_id");--> statement-breakpoint
CREATE INDEX "leases_expires_at_idx" ON "network"."leases" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "requests_created_at_idx" ON "network"."requests" USING btree ("created_at");