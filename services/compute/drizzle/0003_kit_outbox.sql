CREATE TABLE "compute"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"domain" text NOT NULL,
	"event" text NOT NULL,
	"payload" jsonb NOT NULL,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
