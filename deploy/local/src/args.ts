import { parseArgs } from "node:util";
import { resolve } from "node:path";

export interface DevstackOptions {
  /** Replicas of each service. */
  replicas: number;
  /** Simulated hosts registered with compute. */
  hosts: number;
  /** Where NATS, Postgres and the logs keep their data across restarts. */
  dataDir: string;
  /** Wipe `dataDir` first. */
  reset: boolean;
  /** First gRPC port: replica i of the service in port slot k listens on basePort + 100·k + i + 1 (compute-0 on 7101; ports.ts). */
  basePort: number;
  natsPort: number;
  postgresPort: number;
  /** First agent port: simulated host i listens on agentBasePort + i. */
  agentBasePort: number;
  /** Agent simulator latency per command, ms. */
  agentLatencyMs: number;
  /** How long a simulated volume task (a backup's copy) takes, ms; undefined: the simulator's default. */
  volumeTaskMs: number | undefined;
  /** How long a simulated migration's memory copy takes, ms; undefined: the simulator's default. */
  migrateMs: number | undefined;
  /** Capacity each simulated host is registered with. */
  hostCpu: number;
  hostMemoryGiB: number;
}

export const USAGE = `usage: pnpm start [-- options]
  --replicas N        replicas of each service (default 1)
  --hosts N           simulated hypervisor hosts (default 3)
  --data-dir DIR      data directory, kept across restarts (default .data/devstack)
  --reset             wipe the data directory first
  --base-port P       gRPC ports (default 7100): replica i of compute on P+1+i, storage P+201+i,
                      longjob P+301+i, broker P+401+i, network P+501+i; metrics on each one's
                      +50; broker-i's OSB API (HTTP) on P+601+i
  --nats-port P       embedded nats-server port (default 4222; ignored with NATS_URL)
  --postgres-port P   embedded PostgreSQL port (default 5433; ignored with DATABASE_URL)
  --agent-port P      simulated host i on P+i, its control on P-1 (default 7200)
  --agent-latency MS  latency of every agent command (default 0)
  --volume-task-ms MS how long a simulated volume task (a backup) copies (default: agent-sim's)
  --migrate-ms MS     how long a simulated migration copies memory (default: agent-sim's)
  --host-cpu N        CPUs each simulated host has, as its agent reports them (default 32)
  --host-memory GIB   memory each simulated host has, GiB (default 128)
A port of 0 means any free port (each replica and host then gets its own).
A child that dies is restarted with the same id, environment and ports, after a backoff (0.5 s
doubling to 10 s, reset after 30 s up), logged on this output; the agent simulator only on fixed
ports (not with --agent-port 0). <data-dir>/pids.json holds every child's current pid.
The broker starts once the default networks exist, with the dev tenant's credentials from
<data-dir>/broker-auth.json (made once, kept until --reset; printed, and in endpoints.json).
environment: NATS_URL, DATABASE_URL point at external servers instead of the embedded ones.`;

/** Parses the launcher's flags; unknown flags and bad numbers are errors naming the flag. */
export function parseDevstackArgs(argv: readonly string[], cwd = process.cwd()): DevstackOptions | "help" {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== "--"),
    strict: true,
    options: {
      replicas: { type: "string" },
      hosts: { type: "string" },
      "data-dir": { type: "string" },
      reset: { type: "boolean" },
      "base-port": { type: "string" },
      "nats-port": { type: "string" },
      "postgres-port": { type: "string" },
      "agent-port": { type: "string" },
      "agent-latency": { type: "string" },
      "volume-task-ms": { type: "string" },
      "migrate-ms": { type: "string" },
      "host-cpu": { type: "string" },
      "host-memory": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  const int = (flag: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    replicas: int("replicas", values.replicas, 1, 1, 16),
    hosts: int("hosts", values.hosts, 3, 0, 1000),
    dataDir: resolve(cwd, values["data-dir"] ?? ".data/devstack"),
    reset: values.reset ?? false,
    basePort: int("base-port", values["base-port"], 7100, 0, 60000),
    natsPort: int("nats-port", values["nats-port"], 4222, 0, 65535),
    postgresPort: int("postgres-port", values["postgres-port"], 5433, 0, 65535),
    agentBasePort: int("agent-port", values["agent-port"], 7200, 0, 64000),
    agentLatencyMs: int("agent-latency", values["agent-latency"], 0, 0, 600_000),
    volumeTaskMs: values["volume-task-ms"] === undefined ? undefined : int("volume-task-ms", values["volume-task-ms"], 0, 0, 3_600_000),
    migrateMs: values["migrate-ms"] === undefined ? undefined : int("migrate-ms", values["migrate-ms"], 0, 0, 3_600_000),
    hostCpu: int("host-cpu", values["host-cpu"], 32, 1, 100_000),
    hostMemoryGiB: int("host-memory", values["host-memory"], 128, 1, 1_000_000),
  };
}
