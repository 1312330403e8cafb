CREATE TABLE "compute"."volume_releases" (
	"vm_uuid" uuid PRIMARY KEY NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD COLUMN "root_volume_uuid" uuid;