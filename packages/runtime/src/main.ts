import { errorMessage, log, StratumError } from "@stratum/core";
import { loadConfig } from "./config";
import { shutdownBudget } from "./shutdown";
import { startService, type ServiceModule, type StartOptions } from "./service";

/**
 * The whole `main.ts` of a service: read the environment, start, print one `ready` line with the
 * address on stdout (the devstack and probes wait for it), stop cleanly on SIGINT/SIGTERM. A
 * start-up failure is printed as one clear line and exits 1 — no stack dump, no silent loop.
 */
export function runMain(module: ServiceModule<any, any>, startOptions: Omit<StartOptions, "settings"> = {}): void {
  void (async () => {
    let running: Awaited<ReturnType<typeof startService>> | undefined;
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("stopping", { service: module.name, signal });
      // Past the budget a stop is stuck, not draining: exit rather than hang the rollout.
      const force = setTimeout(() => process.exit(1), shutdownBudget(module.taskTimeoutMs).forceExitMs);
      force.unref();
      await running?.stop();
      process.exit(0);
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
    try {
      const { config, settings } = loadConfig(module.name, module.env ?? {});
      running = await startService(module, config, { settings, ...startOptions });
      process.stdout.write(`${JSON.stringify({ msg: "ready", service: module.name, replicaId: config.replicaId, address: running.address, metrics: running.metricsUrl })}\n`);
    } catch (e) {
      const err = StratumError.from(e);
      const message = e instanceof StratumError ? e.message : errorMessage(e);
      log.error(`${module.name} failed to start: ${message}`, { reason: err.reason });
      process.exit(1);
    }
  })();
}
