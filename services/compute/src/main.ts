import { runMain } from "@stratum/runtime";
import { computeModule, type ComputeOptions } from "./module";

/** Compute's own settings, on top of the runtime's (see @stratum/runtime ENV). */
function optionsFromEnv(env: NodeJS.ProcessEnv): ComputeOptions {
  const options: ComputeOptions = {};
  const int = (name: string, min: number, max: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      process.stderr.write(`${JSON.stringify({ level: "error", msg: `invalid compute configuration: ${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}` })}\n`);
      process.exit(1);
    }
    return n;
  };
  const ping = int("STRATUM_PING_INTERVAL_MS", 100, 3_600_000);
  const syncLevel = int("STRATUM_HOST_SYNC_LEVEL", 1, 10_000);
  if (ping !== undefined) options.pingIntervalMs = ping;
  if (syncLevel !== undefined) options.hostSyncLevel = syncLevel;
  return options;
}

runMain(computeModule(optionsFromEnv(process.env)));
