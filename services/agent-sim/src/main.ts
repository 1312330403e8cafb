#!/usr/bin/env -S node --import tsx
/**
 * CLI for the devstack: starts the sim and prints one JSON line per host
 * (`{"hostUuid","url","port","index"}`) then `{"ready":true,"controlUrl":…}`, so a launcher can
 * read the agent URLs from stdout. Stops on SIGINT/SIGTERM.
 */
import { startAgentSim } from "./agent-sim";
import { parseCliArgs, USAGE } from "./cli-args";

async function main(): Promise<void> {
  let options;
  try {
    options = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const sim = await startAgentSim(options);
  sim.hosts.forEach((h, index) => process.stdout.write(`${JSON.stringify({ index, hostUuid: h.uuid, url: h.url, port: h.port })}\n`));
  process.stdout.write(`${JSON.stringify({ ready: true, controlUrl: sim.controlUrl, hosts: sim.hosts.length, socketTimeoutMs: options.socketTimeoutMs })}\n`);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
