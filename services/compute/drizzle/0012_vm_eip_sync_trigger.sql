-- A VM's EIP host: where its elastic IPs' rules must be (the host it runs on while Running,
-- Rebooting or Migrating — a migration switches it at its end —, none otherwise).
CREATE FUNCTION compute.vm_eip_host(state compute.vm_state, host uuid) RETURNS uuid
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE WHEN state IN ('Running', 'Rebooting', 'Migrating') THEN host END $$;
--> statement-breakpoint
-- The durable mark that network must bring the VM's EIP rules to its EIP host (SyncVmEips),
-- written again (generation + 1) when one is pending, so a drain whose call was in flight
-- meanwhile leaves it for the next (store/mark-store.ts).
CREATE FUNCTION compute.mark_vm_eip_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO compute.eip_syncs AS s (vm_uuid) VALUES (NEW.uuid)
    ON CONFLICT (vm_uuid) DO UPDATE SET generation = s.generation + 1;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- A trigger, not a CTE in each statement: every write that moves a VM (the batched transitions,
-- the takeover, the host sync, a migration's switch) marks it in its own statement, and none can
-- forget to. VMs without NICs are filtered by the WHEN clause: no function call, no mark.
CREATE TRIGGER vms_eip_sync AFTER UPDATE OF state, host_uuid ON compute.vms FOR EACH ROW
  WHEN ((OLD.nic_count > 0 OR NEW.nic_count > 0)
    AND compute.vm_eip_host(OLD.state, OLD.host_uuid) IS DISTINCT FROM compute.vm_eip_host(NEW.state, NEW.host_uuid))
  EXECUTE FUNCTION compute.mark_vm_eip_sync();
