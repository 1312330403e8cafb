/**
 * What a Stratum process expects from its container, derived from the code rather than restated:
 * the variables it reads, the ones it cannot run without, the agent-sim flags it accepts.
 */
// The sim's real flag parser (not exported from its index): flags the manifests pass must parse.
import { parseCliArgs } from "../../../services/agent-sim/src/cli-args";
import { DEFAULT_TASK_TIMEOUT_MS, shutdownBudget, type ServiceModule } from "@stratum/runtime";
import { computeModule } from "../../../services/compute/src/module";
import { longjobModule } from "../../../services/longjob/src/module";
import { storageModule } from "../../../services/storage/src/module";
import { networkModule } from "../../../services/network/src/module";
import { brokerModule } from "../../../services/broker/src/module";
import type { Deploy, StratumProcess } from "./model";

type AgentSimOptions = Exclude<ReturnType<typeof parseCliArgs>, "help">;

/** The variable the image's entrypoint reads to pick services/$SERVICE/src/main.ts. */
export const SERVICE_VAR = "SERVICE";
/**
 * The runtime's variables with no usable default in a container (its defaults are loopback/devstack
 * ones; STRATUM_METRICS_PORT's is a random port, which no scraper or Service can name).
 */
export const RUNTIME_REQUIRED = ["NATS_URL", "DATABASE_URL", "STRATUM_REPLICA_ID", "STRATUM_GRPC_PORT", "STRATUM_METRICS_PORT"] as const;

/**
 * Each runtime service's module, by service name: its `taskTimeoutMs` is what a graceful stop
 * waits for, so the orchestrator's grace period is read from the code, not restated. A new
 * service is added here; until it is, the grace checks name it (and fail).
 */
const SERVICE_MODULES: Readonly<Record<string, () => Pick<ServiceModule, "name" | "taskTimeoutMs">>> = {
  compute: () => computeModule(),
  longjob: () => longjobModule(),
  storage: () => storageModule(),
  network: () => networkModule(),
  broker: () => brokerModule(),
};

/**
 * Seconds after SIGTERM at which a service's runtime force-exits: its call drain, its longest
 * chain task (the module's `taskTimeoutMs`, else the runtime's DEFAULT_TASK_TIMEOUT_MS) and the
 * close margin (`shutdownBudget` in packages/runtime/src/shutdown.ts). Undefined for a service
 * SERVICE_MODULES does not know.
 */
export function shutdownSeconds(service: string): number | undefined {
  const module = Object.hasOwn(SERVICE_MODULES, service) ? SERVICE_MODULES[service]!() : undefined;
  return module === undefined ? undefined : shutdownBudget(module.taskTimeoutMs ?? DEFAULT_TASK_TIMEOUT_MS).forceExitMs / 1000;
}

/** The problem when `service` has no shutdown figure (a new service SERVICE_MODULES lacks). */
export const unknownShutdown = (where: string, service: string): string =>
  `${where}: no shutdown budget known for ${service}, so its grace period cannot be checked: add its module to SERVICE_MODULES in deploy/checks/src/contract.ts`;

export interface EnvContract {
  /** main.ts runs through @stratum/runtime's runMain. */
  readonly runtime: boolean;
  readonly allowed: ReadonlySet<string>;
  readonly required: readonly string[];
}

/** Variables a main.ts reads itself: `process.env.X`, `process.env["X"]`, or a `"STRATUM_…"` name it passes around. */
export function variablesReadBy(source: string): string[] {
  const names = new Set<string>();
  // process.env.X, process.env["X"], a quoted "STRATUM_X", or an entry of a kit env table (`STRATUM_X: envInt(`).
  for (const m of source.matchAll(/process\.env\.([A-Z_][A-Z0-9_]*)|process\.env\[\s*["'`]([A-Z_][A-Z0-9_]*)["'`]\s*\]|["'`](STRATUM_[A-Z0-9_]+)["'`]|\b(STRATUM_[A-Z0-9_]+):\s*env(?:Int|String|Url)\(/g)) {
    names.add((m[1] ?? m[2] ?? m[3] ?? m[4])!);
  }
  return [...names];
}

export function envContract(d: Deploy, service: string): EnvContract | undefined {
  const source = d.repo.serviceMain(service);
  if (source === undefined) return undefined;
  const runtime = /from\s+["']@stratum\/runtime["']/.test(source);
  return {
    runtime,
    allowed: new Set([SERVICE_VAR, ...variablesReadBy(source), ...(runtime ? d.repo.runtimeEnv : [])]),
    required: runtime ? RUNTIME_REQUIRED : [],
  };
}

/**
 * The checks every Stratum process gets, in compose and in Kubernetes alike: its entry point
 * exists, it sets only variables something reads (a typo is otherwise silently ignored), and it
 * sets every variable whose default would be wrong in a container.
 */
export function checkProcessEnv(d: Deploy, p: StratumProcess): string[] {
  if (p.service === undefined) return [`${p.where}: no ${SERVICE_VAR} and the image has no default`];
  const contract = envContract(d, p.service);
  if (!contract) return [`${p.where}: ${SERVICE_VAR}=${p.service} but services/${p.service}/src/main.ts does not exist`];
  const problems: string[] = [];
  for (const name of p.env.keys()) {
    if (!contract.allowed.has(name)) problems.push(`${p.where}: sets ${name}, which ${p.service} never reads (known: ${[...contract.allowed].sort().join(", ")})`);
  }
  for (const name of contract.required) {
    if (!p.env.has(name)) problems.push(`${p.where}: ${name} is not set; ${p.service} needs it in a container`);
  }
  if (contract.runtime) {
    const port = p.env.get("STRATUM_GRPC_PORT")?.value;
    if (port !== undefined && !(Number(port) > 0)) problems.push(`${p.where}: STRATUM_GRPC_PORT=${port} must be a fixed port (probes and Services need it)`);
    if (port !== undefined && Number(port) > 0 && !p.ports.includes(Number(port))) {
      problems.push(`${p.where}: STRATUM_GRPC_PORT=${port} is not among the container's ports [${p.ports.join(", ")}]`);
    }
    const metrics = p.env.get("STRATUM_METRICS_PORT")?.value;
    if (metrics !== undefined && !(Number(metrics) > 0)) problems.push(`${p.where}: STRATUM_METRICS_PORT=${metrics} must be a fixed port (a random one cannot be scraped)`);
    else if (metrics !== undefined && Number(metrics) === Number(port)) problems.push(`${p.where}: STRATUM_METRICS_PORT=${metrics} is the gRPC port too`);
    else if (metrics !== undefined && !p.ports.includes(Number(metrics))) problems.push(`${p.where}: STRATUM_METRICS_PORT=${metrics} is not among the container's ports [${p.ports.join(", ")}]`);
    const host = p.env.get("STRATUM_GRPC_HOST")?.value;
    if (host !== undefined && /^(127\.|localhost$|::1$)/.test(host)) problems.push(`${p.where}: STRATUM_GRPC_HOST=${host} is unreachable from other containers`);
    if (!p.env.has("STRATUM_ADVERTISE_HOST") && !p.env.has("POD_IP")) {
      problems.push(`${p.where}: neither STRATUM_ADVERTISE_HOST nor POD_IP is set, so it advertises 127.0.0.1 and forwarded calls never reach it`);
    }
  }
  return problems;
}

/** agent-sim's flags, parsed by the sim's own parser; problems when they would not work in a container. */
export function agentSimArgs(p: StratumProcess): { options?: AgentSimOptions; problems: string[] } {
  let options: AgentSimOptions | "help";
  try {
    options = parseCliArgs(p.args);
  } catch (e) {
    return { problems: [`${p.where}: agent-sim rejects its arguments: ${e instanceof Error ? e.message : String(e)}`] };
  }
  if (options === "help") return { problems: [`${p.where}: agent-sim arguments ask for --help`] };
  const problems: string[] = [];
  if (options.bindHost !== "0.0.0.0" && options.bindHost !== "::") {
    problems.push(`${p.where}: agent-sim binds ${options.bindHost ?? "127.0.0.1 (default)"}; pass --bind 0.0.0.0 or nothing outside the container reaches it`);
  }
  if (options.basePort === undefined) problems.push(`${p.where}: agent-sim has no --base-port, so its hosts listen on random ports nothing publishes`);
  if (options.controlPort === 0 || options.controlPort === false) problems.push(`${p.where}: agent-sim --control-port 0 picks a random port nothing publishes`);
  return { options, problems };
}

/** Ports an agent-sim with these options listens on: control, then host i on basePort + i. */
export function agentSimPorts(o: AgentSimOptions): number[] {
  const hosts = typeof o.hosts === "number" ? o.hosts : (o.hosts?.length ?? 1);
  const control = typeof o.controlPort === "number" ? [o.controlPort] : [];
  return [...control, ...Array.from({ length: hosts }, (_, i) => (o.basePort ?? 0) + i)];
}

/** `nats://nats:4222` → { host, port } (with the scheme's default port); undefined when not a URL. */
export function urlHostPort(url: string, defaultPort: number): { host: string; port: number; url: URL } | undefined {
  try {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : defaultPort, url: parsed };
  } catch {
    return undefined;
  }
}

/** `1m30s`, `30s`, `500ms` → seconds (compose durations). */
export function durationSeconds(text: string): number | undefined {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text.trim()) return undefined;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
}
