CREATE SCHEMA "longjob";
--> statement-breakpoint
CREATE TYPE "longjob"."job_state" AS ENUM('Waiting', 'Running', 'Canceling', 'Canceled', 'Succeeded', 'Failed', 'Suspended');--> statement-breakpoint
CREATE TABLE "longjob"."job_types" (
	"name" text PRIMARY KEY NOT NULL,
	"service" text NOT NULL,
	"spec" jsonb NOT NULL,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "longjob"."jobs" (
	"uuid" uuid PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"target_service" text NOT NULL,
	"target_uuid" uuid NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"state" "longjob"."job_state" DEFAULT 'Waiting' NOT NULL,
	"percent" integer DEFAULT 0 NOT NULL,
	"stage" text DEFAULT '' NOT NULL,
	"bytes_done" bigint DEFAULT 0 NOT NULL,
	"bytes_total" bigint DEFAULT 0 NOT NULL,
	"message" text DEFAULT '' NOT NULL,
	"result" jsonb,
	"error" jsonb,
	"attempt" integer DEFAULT 0 NOT NULL,
	"report_seq" integer DEFAULT 0 NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"executor" text DEFAULT '' NOT NULL,
	"client_request_id" text,
	"rerun_of" uuid,
	"revision" bigint DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"cancel_asked_at" timestamp with time zone,
	"seq" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "longjob"."leases" (
	"holder" text PRIMARY KEY NOT NULL,
	"replica_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "longjob"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"domain" text NOT NULL,
	"event" text NOT NULL,
	"key" text,
	"payload" jsonb NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "longjob"."requests" (
	"request_id" text PRIMARY KEY NOT NULL,
	"method" text NOT NULL,
	"request_hash" text NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"response" text,
	"holder" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_seq_uq" ON "longjob"."jobs" USING btree ("seq");--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_client_request_id_uq" ON "longjob"."jobs" USING btree ("client_request_id");--> statement-breakpoint
CREATE INDEX "jobs_state_idx" ON "longjob"."jobs" USING btree ("state");--> statement-breakpoint
CREATE INDEX "jobs_target_idx" ON "longjob"."jobs" USING btree ("target_uuid");--> statement-breakpoint
CREATE INDEX "jobs_type_idx" ON "longjob"."jobs" USING btree ("type");--> statement-breakpoint
CREATE INDEX "jobs_finished_idx" ON "longjob"."jobs" USING btree ("finished_at");--> statement-breakpoint
CREATE INDEX "leases_expires_at_idx" ON "longjob"."leases" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "requests_created_at_idx" ON "longjob"."requests" USING btree ("created_at");