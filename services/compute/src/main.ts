import { runMain } from "@stratum/runtime";
import { computeModule } from "./module";

const int = (name: string): number | undefined => (process.env[name] ? Number(process.env[name]) : undefined);

runMain(
  computeModule({
    ...(int("STRATUM_PING_INTERVAL_MS") ? { pingIntervalMs: int("STRATUM_PING_INTERVAL_MS") } : {}),
    ...(int("STRATUM_HOST_SYNC_LEVEL") ? { hostSyncLevel: int("STRATUM_HOST_SYNC_LEVEL") } : {}),
  }),
);
