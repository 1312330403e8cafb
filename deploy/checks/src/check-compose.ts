/** Checks of deploy/docker/compose.yaml. */
import { posix } from "node:path";
import { agentSimArgs, agentSimPorts, checkProcessEnv, durationSeconds, envContract, shutdownSeconds, unknownShutdown, urlHostPort } from "./contract";
import { asList, COMPOSE, composeEnv, composePorts, composeProcesses, DOCKERFILE, isStratumImage, kindProcesses, type Deploy } from "./model";
import type { ComposeService } from "./types";

const dependsOn = (s: ComposeService): Record<string, { condition?: string }> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((n) => [n, {}])) : (s.depends_on ?? {});

/** `--jetstream`/`-js` and the `--store_dir`/`-sd` it writes to, from nats-server's argv. */
export function natsJetStream(argv: readonly string[]): { jetStream: boolean; storeDir: string | undefined } {
  const i = argv.findIndex((a) => a === "--store_dir" || a === "-sd" || a === "--sd");
  return { jetStream: argv.some((a) => a === "-js" || a === "--jetstream" || a === "--js"), storeDir: i >= 0 ? argv[i + 1] : undefined };
}

/** Every Stratum service is built from deploy/docker/Dockerfile with the repo root as context, as one image, the one kind runs. */
export function composeImage(d: Deploy): string[] {
  const procs = composeProcesses(d);
  if (procs.length === 0) return [`${COMPOSE}: no service runs the Stratum image`];
  const problems: string[] = [];
  const images = new Set(procs.map((p) => p.compose.image));
  if (images.size !== 1 || !isStratumImage([...images][0])) problems.push(`${COMPOSE}: Stratum services must share one stratum image, found ${[...images].map(String).join(", ")}`);
  for (const p of procs) {
    const build = typeof p.compose.build === "string" ? { context: p.compose.build } : p.compose.build;
    if (!build) {
      problems.push(`${p.where}: no build section, so \`up --build\` never rebuilds its image`);
      continue;
    }
    const context = posix.normalize(posix.join(posix.dirname(COMPOSE), build.context ?? "."));
    const dockerfile = posix.normalize(posix.join(context, build.dockerfile ?? "Dockerfile"));
    if (context !== ".") problems.push(`${p.where}: build context ${build.context} is ${context}, not the repository root (the workspace must be in it)`);
    if (dockerfile !== DOCKERFILE) problems.push(`${p.where}: builds ${dockerfile}, not ${DOCKERFILE}`);
  }
  for (const k of kindProcesses(d)) {
    if (!images.has(k.container.image)) problems.push(`${k.where}: image ${k.container.image} is not the one compose builds (${[...images].join(", ")})`);
  }
  return problems;
}

/** Each Stratum container's variables, replica ids, advertised address, stop grace and writable /tmp. */
export function composeServices(d: Deploy): string[] {
  const problems: string[] = [];
  const ids = new Map<string, string>();
  for (const p of composeProcesses(d)) {
    problems.push(...checkProcessEnv(d, p));
    const runtime = p.service !== undefined && envContract(d, p.service)?.runtime;
    const id = p.env.get("STRATUM_REPLICA_ID")?.value;
    if (id !== undefined) {
      if (ids.has(id)) problems.push(`${p.where}: STRATUM_REPLICA_ID=${id} is also ${ids.get(id)}'s: the two would share durable consumers and a ring slot`);
      ids.set(id, p.name);
    }
    const advertise = p.env.get("STRATUM_ADVERTISE_HOST")?.value;
    if (runtime && advertise !== undefined && advertise !== p.name && advertise !== p.compose.hostname) {
      problems.push(`${p.where}: STRATUM_ADVERTISE_HOST=${advertise} is not this container's name, so calls forwarded to it land elsewhere`);
    }
    const grace = durationSeconds(p.compose.stop_grace_period ?? "10s");
    const drain = runtime ? shutdownSeconds(p.service!) : undefined;
    if (runtime && drain === undefined) problems.push(unknownShutdown(p.where, p.service!));
    else if (drain !== undefined && (grace === undefined || grace <= drain)) {
      problems.push(`${p.where}: stop_grace_period ${p.compose.stop_grace_period ?? "10s (default)"} must exceed the runtime's ${drain} s drain of ${p.service}, or Docker kills it mid-drain`);
    }
    if (p.compose.read_only && !asList(p.compose.tmpfs).some((t) => t.split(":")[0] === "/tmp")) {
      problems.push(`${p.where}: read_only without a /tmp tmpfs: tsx cannot write its cache`);
    }
  }
  return problems;
}

/** depends_on targets exist and are healthcheckable; NATS_URL/DATABASE_URL point at services started first, with matching credentials. */
export function composeDependencies(d: Deploy): string[] {
  const problems: string[] = [];
  const services = d.compose.services ?? {};
  for (const [name, s] of Object.entries(services)) {
    for (const [target, { condition }] of Object.entries(dependsOn(s))) {
      const t = services[target];
      if (!t) problems.push(`compose service ${name}: depends_on ${target}, which does not exist`);
      else if (condition === "service_healthy" && (!t.healthcheck?.test || t.healthcheck.disable)) {
        problems.push(`compose service ${name}: waits for ${target} to be healthy, but ${target} has no healthcheck`);
      }
    }
  }
  for (const p of composeProcesses(d)) {
    for (const [variable, port] of [["NATS_URL", 4222], ["DATABASE_URL", 5432]] as const) {
      const raw = p.env.get(variable)?.value;
      if (raw === undefined) continue;
      const target = urlHostPort(raw, port);
      const service = target && services[target.host];
      if (!target || !service) {
        problems.push(`${p.where}: ${variable} host ${target?.host ?? raw} is not a compose service`);
        continue;
      }
      if (!(target.host in dependsOn(p.compose))) problems.push(`${p.where}: uses ${target.host} (${variable}) without depends_on: it may start first and exit`);
      if (variable === "DATABASE_URL") {
        const env = composeEnv(service);
        const user = env.get("POSTGRES_USER")?.value ?? "postgres";
        const expected = { user, password: env.get("POSTGRES_PASSWORD")?.value ?? "", db: env.get("POSTGRES_DB")?.value ?? user };
        const got = { user: decodeURIComponent(target.url.username), password: decodeURIComponent(target.url.password), db: target.url.pathname.slice(1) };
        for (const k of ["user", "password", "db"] as const) {
          if (got[k] !== expected[k]) problems.push(`${p.where}: DATABASE_URL ${k} ${JSON.stringify(got[k])} but ${target.host} is set up with ${JSON.stringify(expected[k])}`);
        }
      }
      if (variable === "NATS_URL") {
        const { jetStream, storeDir } = natsJetStream([...asList(service.entrypoint), ...asList(service.command)]);
        const mounts = (service.volumes ?? []).map((v) => (typeof v === "string" ? v.split(":")[1] : v.target));
        if (!jetStream) problems.push(`compose service ${target.host}: nats-server runs without --jetstream; Stratum's streams and KV need it`);
        if (!storeDir || !mounts.includes(storeDir)) problems.push(`compose service ${target.host}: JetStream store dir ${storeDir ?? "(default, inside the container)"} is not on a volume`);
      }
    }
  }
  return problems;
}

/** agent-sim parses its flags, binds all interfaces, and publishes its control port and every host port. */
export function composeAgentSim(d: Deploy): string[] {
  const sims = composeProcesses(d).filter((p) => p.service === "agent-sim");
  if (sims.length === 0) return [`${COMPOSE}: no agent-sim service`];
  return sims.flatMap((p) => {
    const { options, problems } = agentSimArgs(p);
    const published = new Set(composePorts(p.compose).filter((x) => x.published !== undefined).map((x) => x.target));
    for (const port of options ? agentSimPorts(options) : []) {
      if (!published.has(port)) problems.push(`${p.where}: agent-sim listens on ${port}, which is not published`);
    }
    return problems;
  });
}
