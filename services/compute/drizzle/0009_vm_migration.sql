ALTER TYPE "compute"."vm_state" ADD VALUE 'Migrating';--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD COLUMN "migrate_target_uuid" uuid;--> statement-breakpoint
ALTER TABLE "compute"."vms" ADD CONSTRAINT "vms_migrate_target_uuid_hosts_uuid_fk" FOREIGN KEY ("migrate_target_uuid") REFERENCES "compute"."hosts"("uuid") ON DELETE restrict ON UPDATE no action;