import { parseArgs } from "node:util";
import type { AgentSimOptions } from "./agent-sim";

export const USAGE = `usage: stratum-agent-sim [options]
  --hosts N                 simulated hosts (default 3)
  --cpu N                   CPUs each host reports (default 32)
  --memory-gib N            memory each host reports, GiB (default 128)
  --control-port P          control endpoint port (default 7070; 0 = any free port)
  --base-port P             host i listens on P+i (default: free ports)
  --socket-timeout-ms MS    idle keep-alive close, like CherryPy socket_timeout (default 10000)
  --latency-ms MS           default latency of every command (default 0)
  --close-notice-delay-ms MS  simulated network delay of the idle-close FIN (default 0)
  --volume-task-duration-ms MS  default duration of a volume task (default 5000)
  --chunk-bytes N           bytes a sized volume task moves per chunk (default 67108864 = 64 MiB)
  --migrate-duration-ms MS  default memory copy time of vm/migrate (default 0 = at once)
  --bind HOST               address to bind (default 127.0.0.1)
  --help`;

function int(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
}

/** Parses the CLI flags into sim options; throws with a message naming the bad flag. */
export function parseCliArgs(argv: readonly string[]): AgentSimOptions | "help" {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      hosts: { type: "string" },
      cpu: { type: "string" },
      "memory-gib": { type: "string" },
      "control-port": { type: "string" },
      "base-port": { type: "string" },
      "socket-timeout-ms": { type: "string" },
      "latency-ms": { type: "string" },
      "close-notice-delay-ms": { type: "string" },
      "volume-task-duration-ms": { type: "string" },
      "chunk-bytes": { type: "string" },
      "migrate-duration-ms": { type: "string" },
      bind: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return "help";
  const count = int("hosts", values.hosts, 1) ?? 3;
  const cpuNum = int("cpu", values.cpu, 1);
  const memoryGiB = int("memory-gib", values["memory-gib"], 1);
  const facts = { ...(cpuNum !== undefined ? { cpuNum } : {}), ...(memoryGiB !== undefined ? { memoryBytes: memoryGiB * 1024 ** 3 } : {}) };
  const options: AgentSimOptions = {
    hosts: cpuNum === undefined && memoryGiB === undefined ? count : Array.from({ length: count }, () => ({ ...facts })),
    controlPort: int("control-port", values["control-port"], 0) ?? 7070,
    socketTimeoutMs: int("socket-timeout-ms", values["socket-timeout-ms"], 1) ?? 10_000,
  };
  const basePort = int("base-port", values["base-port"], 1);
  if (basePort !== undefined) options.basePort = basePort;
  const latency = int("latency-ms", values["latency-ms"], 0);
  if (latency !== undefined) options.latency = latency;
  const notice = int("close-notice-delay-ms", values["close-notice-delay-ms"], 0);
  if (notice !== undefined) options.closeNoticeDelayMs = notice;
  const taskMs = int("volume-task-duration-ms", values["volume-task-duration-ms"], 0);
  if (taskMs !== undefined) options.volumeTaskDurationMs = taskMs;
  const chunkBytes = int("chunk-bytes", values["chunk-bytes"], 1);
  if (chunkBytes !== undefined) options.chunkBytes = chunkBytes;
  const migrateMs = int("migrate-duration-ms", values["migrate-duration-ms"], 0);
  if (migrateMs !== undefined) options.migrateDurationMs = migrateMs;
  if (values.bind !== undefined) options.bindHost = values.bind;
  return options;
}
