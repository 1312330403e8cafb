/**
 * Checks of what keeps Stratum up when a replica dies: clients that balance over every ready
 * pod, readiness that follows Postgres and NATS while liveness does not, a NATS that survives
 * losing one server, and disruption budgets that let drains take one pod at a time.
 */
// The health name the runtime sets for liveness (not exported from the package's index).
import { LIVENESS_SERVICE } from "../../../packages/runtime/src/readiness";
import { id, objects, podLabels, selects } from "./check-kind";
import { natsJetStream } from "./check-compose";
import { envContract } from "./contract";
import { kindProcesses, workloads, type Deploy, type Manifest } from "./model";
import type { Container } from "./types";

/** Workloads running a Stratum runtime service (compute…), once each. */
function runtimeWorkloads(d: Deploy): Array<{ w: Manifest; c: Container }> {
  const seen = new Set<Manifest>();
  return kindProcesses(d).flatMap((p) => {
    if (p.service === undefined || !envContract(d, p.service)?.runtime || seen.has(p.workload)) return [];
    seen.add(p.workload);
    return [{ w: p.workload, c: p.container }];
  });
}

function natsWorkloads(d: Deploy): Array<{ w: Manifest; c: Container }> {
  return workloads(d).flatMap((w) => w.containers.filter((c) => /^(.*\/)?nats:/.test(c.image ?? "")).map((c) => ({ w, c })));
}

const servicesOf = (d: Deploy, w: Manifest) => objects(d, "Service").filter((s) => selects(s.doc.spec?.selector as Record<string, string> | undefined, podLabels(w)));

/**
 * Every Service in front of a Stratum service is headless: gRPC keeps one HTTP/2 connection per
 * client, so a ClusterIP (balancing connections) pins each client to one pod. And one of them
 * leaves not-ready pods out of DNS, or round-robin clients keep calling a replica whose readiness
 * says it lost Postgres or NATS.
 */
export function headlessServices(d: Deploy): string[] {
  const problems: string[] = [];
  for (const { w } of runtimeWorkloads(d)) {
    const services = servicesOf(d, w);
    for (const s of services) {
      if (s.doc.spec?.clusterIP !== "None") problems.push(`${id(s)}: a ClusterIP in front of ${id(w)} pins each HTTP/2 client to one pod; make it headless (clusterIP: None) for client-side round robin`);
    }
    if (!services.some((s) => s.doc.spec?.clusterIP === "None" && !s.doc.spec.publishNotReadyAddresses)) {
      problems.push(`${id(w)}: no headless Service leaves not-ready pods out of DNS (publishNotReadyAddresses unset), so clients keep calling replicas that lost Postgres or NATS`);
    }
  }
  return problems;
}

/**
 * Readiness asks for the overall health ("") the runtime's readiness watcher drives; liveness
 * asks for LIVENESS_SERVICE, which the watcher never touches: a dependency outage takes replicas
 * out of rotation, it does not restart them all.
 */
export function dependencyProbes(d: Deploy): string[] {
  const problems: string[] = [];
  for (const { w, c } of runtimeWorkloads(d)) {
    const where = `${id(w)} container ${c.name}`;
    const ready = c.readinessProbe?.grpc;
    const live = c.livenessProbe?.grpc;
    if (ready && (ready.service ?? "") !== "") problems.push(`${where}: readinessProbe asks for health service "${ready.service}", not "" (the overall status that follows Postgres and NATS)`);
    if (live && live.service !== LIVENESS_SERVICE) {
      problems.push(`${where}: livenessProbe asks for health service "${live.service ?? ""}", which follows Postgres and NATS: an outage would restart every replica; ask for ${LIVENESS_SERVICE}`);
    }
  }
  return problems;
}

/** The value after the first of `names` in argv. */
const flag = (argv: readonly string[], ...names: string[]): string | undefined => {
  const i = argv.findIndex((a) => names.includes(a));
  return i >= 0 ? argv[i + 1] : undefined;
};

const port = (url: string | undefined): number | undefined => {
  const m = url === undefined ? null : /:(\d+)\/?$/.exec(url);
  return m ? Number(m[1]) : undefined;
};

/** The replica count a JetStream cluster needs to keep a quorum (2) with one server lost. */
export const NATS_CLUSTER_SIZE = 3;

/**
 * NATS is a 3-server JetStream cluster: routes to every pod through the headless Service, a
 * unique stable server name per pod, all pods started together (none is ready before a quorum).
 */
export function natsCluster(d: Deploy): string[] {
  const nats = natsWorkloads(d);
  if (nats.length === 0) return ["no nats container"];
  return nats.flatMap(({ w, c }): string[] => {
    const problems: string[] = [];
    const where = id(w);
    const name = w.doc.metadata?.name ?? "";
    const replicas = w.doc.spec?.replicas ?? 1;
    const argv = [...(c.command ?? []), ...(c.args ?? []).map(String)];
    if (w.doc.kind !== "StatefulSet") problems.push(`${where}: a ${w.doc.kind} gives its pods no stable names for routes and server names; use a StatefulSet`);
    if (replicas !== NATS_CLUSTER_SIZE) problems.push(`${where}: replicas ${replicas}; a JetStream cluster needs ${NATS_CLUSTER_SIZE} to keep a quorum when one server is lost`);
    if (!natsJetStream(argv).jetStream) problems.push(`${where}: nats-server runs without --jetstream`);
    if (!flag(argv, "--cluster_name")) problems.push(`${where}: no --cluster_name`);
    const listen = flag(argv, "--cluster");
    const clusterPort = port(listen);
    if (clusterPort === undefined) problems.push(`${where}: no --cluster listen URL with a port (${listen ?? "unset"}): the servers never route to each other`);
    else if (!(c.ports ?? []).some((p) => p.containerPort === clusterPort)) problems.push(`${where}: cluster port ${clusterPort} is not a containerPort`);
    const service = w.doc.spec?.serviceName;
    const routes = (flag(argv, "--routes") ?? "").split(",").filter(Boolean);
    const hosts = routes.map((r) => {
      try {
        const u = new URL(r);
        return { route: r, host: u.hostname.replace(/\.svc(\.cluster\.local)?$/, "").split("."), port: Number(u.port) };
      } catch {
        return { route: r, host: [], port: 0 };
      }
    });
    for (let i = 0; i < replicas; i++) {
      const pod = `${name}-${i}`;
      if (!hosts.some((h) => h.host[0] === pod && h.host[1] === service && h.port === clusterPort)) {
        problems.push(`${where}: routes do not name ${pod} (${pod}.${service}:${clusterPort ?? "?"}), so it is not in the cluster`);
      }
    }
    for (const h of hosts) {
      const index = h.host[0]?.startsWith(`${name}-`) ? h.host[0].slice(name.length + 1) : "";
      if (!/^\d+$/.test(index) || Number(index) >= replicas || h.host[1] !== service) {
        problems.push(`${where}: route ${h.route} is not a pod of this StatefulSet`);
      }
    }
    const serverName = flag(argv, "--server_name", "-n");
    const ref = serverName === undefined ? undefined : /^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$/.exec(serverName)?.[1];
    const fromPodName = ref !== undefined && (c.env ?? []).some((e) => e.name === ref && e.valueFrom?.fieldRef?.fieldPath === "metadata.name");
    if (!fromPodName) problems.push(`${where}: server_name ${serverName ?? "(unset)"} is the same on every pod; JetStream needs a unique, stable one: $(POD_NAME) from fieldRef metadata.name`);
    if (w.doc.kind === "StatefulSet" && w.doc.spec?.podManagementPolicy !== "Parallel") {
      problems.push(`${where}: podManagementPolicy ${w.doc.spec?.podManagementPolicy ?? "OrderedReady (default)"}: the first server waits for a quorum that its successors, waiting for it, never bring; use Parallel`);
    }
    const headless = objects(d, "Service").find((s) => s.doc.metadata?.name === service);
    if (headless && !headless.doc.spec?.publishNotReadyAddresses) problems.push(`${id(headless)}: routes only resolve ready pods, but a server needs its routes to become ready; set publishNotReadyAddresses: true`);
    return problems;
  });
}

/**
 * Each Stratum service and NATS has exactly one PodDisruptionBudget with maxUnavailable 1, so a
 * node drain evicts one pod at a time (NATS keeps its quorum), and a Stratum service runs at
 * least 2 replicas, so that one eviction is not a full outage.
 */
export function disruptionBudgets(d: Deploy): string[] {
  const problems: string[] = [];
  for (const [{ w }, nats] of [...runtimeWorkloads(d).map((x) => [x, false] as const), ...natsWorkloads(d).map((x) => [x, true] as const)]) {
    const pdbs = objects(d, "PodDisruptionBudget").filter((p) => selects(p.doc.spec?.selector?.matchLabels, podLabels(w)));
    if (pdbs.length === 0) problems.push(`${id(w)}: no PodDisruptionBudget selects its pods: a node drain may evict them all at once`);
    if (pdbs.length > 1) problems.push(`${id(w)}: ${pdbs.length} PodDisruptionBudgets select its pods; the eviction API refuses pods under more than one`);
    for (const p of pdbs) {
      const max = p.doc.spec?.maxUnavailable;
      if (max !== 1) problems.push(`${id(p)}: maxUnavailable ${max ?? "(unset)"} must be 1: one pod evicted at a time${nats ? " (two of three keep the JetStream quorum)" : ""}`);
    }
    const replicas = w.doc.spec?.replicas ?? 1;
    if (!nats && replicas < 2) problems.push(`${id(w)}: replicas ${replicas}: with one, the single eviction its PodDisruptionBudget allows is a full outage`);
  }
  return problems;
}

/**
 * Every Stratum service keeps as many copies of its streams and buckets as the NATS cluster has
 * servers (`STRATUM_NATS_REPLICAS`, read by @stratum/runtime): with one copy, the server that
 * holds it takes the events, replies and heartbeats with it when it goes.
 */
export function replicatedStreams(d: Deploy): string[] {
  const nats = natsWorkloads(d);
  const servers = nats[0]?.w.doc.spec?.replicas ?? 1;
  return kindProcesses(d)
    .filter((p) => p.service !== undefined && envContract(d, p.service)?.runtime)
    .flatMap((p) => {
      const value = p.env.get("STRATUM_NATS_REPLICAS")?.value;
      return Number(value ?? 1) === servers ? [] : [`${p.where}: STRATUM_NATS_REPLICAS ${value ?? "unset (1)"}, but NATS runs ${servers} servers: a stream kept on one server is lost with it`];
    });
}
