ALTER TABLE "network"."eip_rules" ADD COLUMN "vm_uuid" uuid;--> statement-breakpoint
ALTER TABLE "network"."eip_rules" ADD COLUMN "task_id" text;--> statement-breakpoint
ALTER TABLE "network"."eip_rules" ADD COLUMN "task_fence" bigint;