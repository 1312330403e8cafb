import { fileURLToPath } from "node:url";
import type { ServiceModule } from "@stratum/runtime";
import { VolumeManager } from "./domain/volume-manager";
import { storageApi } from "./server/storage-handlers";
import { tables } from "./store/schema";
import { VolumeStore } from "./store/volume-store";

/**
 * The storage service: primary storages with their capacity, and the volumes on them. A volume's
 * mutations run on the owner of its UUID (storage's ring), in its chain-task queue; capacity is
 * reserved and given back in the statements that change the volumes.
 */
export function storageModule(): ServiceModule<typeof tables> {
  return {
    name: "storage",
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const store = new VolumeStore(ctx.db, ctx.ownership.incarnation, ctx.eventsWritten);
      const manager = new VolumeManager({ store, queue: ctx.queue, log: ctx.log });
      return { services: [storageApi(manager, store)] };
    },
  };
}
