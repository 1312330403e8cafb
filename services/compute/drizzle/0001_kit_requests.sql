CREATE TABLE "compute"."requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"method" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"response" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "requests_created_at_idx" ON "compute"."requests" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "compute"."vms" DROP COLUMN "request_hash";