CREATE TABLE "compute"."leases" (
	"holder" text PRIMARY KEY NOT NULL,
	"replica_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD COLUMN "fence" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "leases_expires_at_idx" ON "compute"."leases" USING btree ("expires_at");