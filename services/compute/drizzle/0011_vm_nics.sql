CREATE TABLE "compute"."eip_syncs" (
	"vm_uuid" uuid PRIMARY KEY NOT NULL,
	"generation" bigint DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"claimed_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "compute"."host_eip_reconciles" (
	"host_uuid" uuid PRIMARY KEY NOT NULL,
	"generation" bigint DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"claimed_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "compute"."nic_releases" (
	"vm_uuid" uuid PRIMARY KEY NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "compute"."vm_nics" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"vm_uuid" uuid NOT NULL,
	"l3_network_uuid" uuid NOT NULL,
	"ip" text NOT NULL,
	"mac" text NOT NULL,
	"device_index" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD COLUMN "nic_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "compute"."vm_nics" ADD CONSTRAINT "vm_nics_vm_uuid_vms_uuid_fk" FOREIGN KEY ("vm_uuid") REFERENCES "compute"."vms"("uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "vm_nics_mac_uq" ON "compute"."vm_nics" USING btree ("mac");--> statement-breakpoint
CREATE UNIQUE INDEX "vm_nics_vm_device_uq" ON "compute"."vm_nics" USING btree ("vm_uuid","device_index");