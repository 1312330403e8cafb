/** Checks of deploy/kind: the cluster config, the kustomization and every manifest. */
import { agentSimArgs, agentSimPorts, checkProcessEnv, envContract, shutdownSeconds, unknownShutdown, urlHostPort } from "./contract";
import { natsJetStream } from "./check-compose";
import { KIND_CLUSTER, KUSTOMIZATION, kindProcesses, MANIFESTS, workloads, type Deploy, type Manifest } from "./model";
import type { Container } from "./types";

export const id = (m: Manifest) => `${m.file} ${m.doc.kind}/${m.doc.metadata?.name}`;
export const objects = (d: Deploy, kind: string) => d.manifests.filter((m) => m.doc.kind === kind);
const named = (d: Deploy, kind: string, name: string | undefined) => objects(d, kind).find((m) => m.doc.metadata?.name === name);
export const podLabels = (w: Manifest) => w.doc.spec?.template?.metadata?.labels ?? {};
export const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
/** Workloads whose pods a Service (selector) or PDB/StatefulSet (matchLabels) picks. */
const selected = (d: Deploy, selector: Record<string, string> | undefined) => workloads(d).filter((w) => selects(selector, podLabels(w)));
const containersOf = (w: Manifest): Container[] => w.doc.spec?.template?.spec?.containers ?? [];

/** kind-cluster.yaml is a kind Cluster config (not a manifest: kubectl would reject it). */
export function kindCluster(d: Deploy): string[] {
  const c = d.kindCluster;
  if (!c) return [`${KIND_CLUSTER}: missing`];
  return c.kind === "Cluster" && c.apiVersion === "kind.x-k8s.io/v1alpha4" ? [] : [`${KIND_CLUSTER}: not a kind.x-k8s.io/v1alpha4 Cluster`];
}

/** The kustomization lists exactly the YAML files of its folder, sets the namespace, and that Namespace exists. */
export function kustomization(d: Deploy): string[] {
  const problems: string[] = [];
  const listed = d.kustomization.resources ?? [];
  const files = new Set(d.manifestFiles);
  for (const r of listed) if (!files.has(r)) problems.push(`${KUSTOMIZATION}: lists ${r}, which is not in ${MANIFESTS}`);
  for (const f of files) if (!listed.includes(f)) problems.push(`${KUSTOMIZATION}: does not list ${f}, so \`kubectl apply -k\` skips it`);
  if (new Set(listed).size !== listed.length) problems.push(`${KUSTOMIZATION}: lists a file twice`);
  const ns = d.kustomization.namespace;
  if (!ns) problems.push(`${KUSTOMIZATION}: sets no namespace`);
  else if (!named(d, "Namespace", ns)) problems.push(`${KUSTOMIZATION}: namespace ${ns} has no Namespace manifest`);
  for (const m of d.manifests) {
    if (m.doc.metadata?.namespace && m.doc.metadata.namespace !== ns) problems.push(`${id(m)}: hard-codes namespace ${m.doc.metadata.namespace}`);
  }
  return problems;
}

/** Every document has apiVersion, kind and name, and no two objects collide. */
export function wellFormed(d: Deploy): string[] {
  const problems = [...d.parseErrors];
  const seen = new Set<string>();
  for (const m of d.manifests) {
    if (!m.doc.apiVersion || !m.doc.kind || !m.doc.metadata?.name) problems.push(`${m.file}: a document without apiVersion, kind or metadata.name`);
    const key = `${m.doc.kind}/${m.doc.metadata?.name}`;
    if (seen.has(key)) problems.push(`${m.file}: ${key} is defined twice`);
    seen.add(key);
  }
  return problems;
}

/** Workload selectors match their pod labels; every Service and PDB selects some workload's pods. */
export function selectors(d: Deploy): string[] {
  const problems: string[] = [];
  for (const w of workloads(d)) {
    if (!selects(w.doc.spec?.selector?.matchLabels, podLabels(w))) problems.push(`${id(w)}: selector ${JSON.stringify(w.doc.spec?.selector?.matchLabels)} does not match its pod labels ${JSON.stringify(podLabels(w))}`);
  }
  for (const s of objects(d, "Service")) {
    const selector = s.doc.spec?.selector as Record<string, string> | undefined;
    if (selected(d, selector).length === 0) problems.push(`${id(s)}: selector ${JSON.stringify(selector)} matches no pods`);
  }
  for (const p of objects(d, "PodDisruptionBudget")) {
    if (selected(d, p.doc.spec?.selector?.matchLabels).length === 0) problems.push(`${id(p)}: selector matches no pods`);
  }
  return problems;
}

/** A Service's targetPort (name or number) is a port of every container set it selects. */
export function servicePorts(d: Deploy): string[] {
  const problems: string[] = [];
  for (const s of objects(d, "Service")) {
    for (const w of selected(d, s.doc.spec?.selector as Record<string, string> | undefined)) {
      const ports = containersOf(w).flatMap((c) => c.ports ?? []);
      for (const sp of s.doc.spec?.ports ?? []) {
        const target = sp.targetPort ?? sp.port;
        const ok = typeof target === "number" ? ports.some((p) => p.containerPort === target) : ports.some((p) => p.name === target);
        if (!ok) problems.push(`${id(s)}: port ${sp.name ?? sp.port} targets ${target}, which ${id(w)} does not expose`);
      }
    }
  }
  return problems;
}

/** A StatefulSet's serviceName is a headless Service selecting its pods (stable per-pod DNS). */
export function statefulSetServices(d: Deploy): string[] {
  const problems: string[] = [];
  for (const sts of objects(d, "StatefulSet")) {
    const name = sts.doc.spec?.serviceName;
    const svc = named(d, "Service", name);
    if (!svc) problems.push(`${id(sts)}: serviceName ${name} is not a Service`);
    else if (svc.doc.spec?.clusterIP !== "None") problems.push(`${id(sts)}: serviceName ${name} is not headless (clusterIP: None)`);
    else if (!selects(svc.doc.spec?.selector as Record<string, string> | undefined, podLabels(sts))) problems.push(`${id(sts)}: Service ${name} does not select its pods`);
  }
  return problems;
}

/** secretKeyRefs resolve; volumeMounts name a volume; URLs in env name a Service and one of its ports. */
export function references(d: Deploy): string[] {
  const problems: string[] = [];
  const secretValue = (name: string, key: string): string | undefined => {
    const s = named(d, "Secret", name)?.doc;
    return s?.stringData?.[key] ?? (s?.data?.[key] !== undefined ? Buffer.from(s.data[key], "base64").toString() : undefined);
  };
  for (const w of workloads(d)) {
    const spec = w.doc.spec?.template?.spec;
    const volumes = new Set([...(spec?.volumes ?? []).map((v) => v.name), ...(w.doc.spec?.volumeClaimTemplates ?? []).map((v) => v.metadata?.name)]);
    for (const c of w.containers) {
      for (const mount of c.volumeMounts ?? []) if (!volumes.has(mount.name)) problems.push(`${id(w)}: container ${c.name} mounts ${mount.name}, which is not a volume`);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        const value = ref ? secretValue(ref.name ?? "", ref.key ?? "") : e.value === undefined ? undefined : String(e.value);
        if (ref && value === undefined) problems.push(`${id(w)}: ${e.name} reads Secret ${ref.name} key ${ref.key}, which does not exist`);
        if (value === undefined || !/^[a-z]+:\/\//.test(value)) continue;
        const target = urlHostPort(value, 0);
        const host = target?.host.replace(/\.[^.]+\.svc(\.cluster\.local)?$/, "");
        const svc = named(d, "Service", host);
        if (!svc) problems.push(`${id(w)}: ${e.name} points at ${target?.host}, which is not a Service`);
        else if (!(svc.doc.spec?.ports ?? []).some((p) => p.port === target!.port)) problems.push(`${id(w)}: ${e.name} uses port ${target!.port}, which Service ${host} does not expose`);
      }
    }
  }
  // The Secret's DATABASE_URL must open the database Postgres initialises from the same Secret.
  for (const s of objects(d, "Secret")) {
    const url = s.doc.stringData?.DATABASE_URL;
    const target = url === undefined ? undefined : urlHostPort(url, 5432);
    if (!target || s.doc.stringData?.POSTGRES_PASSWORD === undefined) continue;
    const user = s.doc.stringData.POSTGRES_USER ?? "postgres";
    const expected = { user, password: s.doc.stringData.POSTGRES_PASSWORD, db: s.doc.stringData.POSTGRES_DB ?? user };
    const got = { user: decodeURIComponent(target.url.username), password: decodeURIComponent(target.url.password), db: target.url.pathname.slice(1) };
    for (const k of ["user", "password", "db"] as const) {
      if (got[k] !== expected[k]) problems.push(`${id(s)}: DATABASE_URL ${k} ${JSON.stringify(got[k])} disagrees with POSTGRES_${k === "db" ? "DB" : k.toUpperCase()} ${JSON.stringify(expected[k])}`);
    }
  }
  return problems;
}

const probePort = (c: Container, port: number | string | undefined): number | undefined =>
  typeof port === "number" ? port : c.ports?.find((p) => p.name === port)?.containerPort;

/**
 * Stratum containers: the loaded image, variables the code reads, stable replica id, advertised
 * pod IP, gRPC probes on the gRPC port, a grace period longer than the drain, non-root as the
 * image's uid, writable /tmp under a read-only root, resources.
 */
export function stratumContainers(d: Deploy): string[] {
  const problems: string[] = [];
  const procs = kindProcesses(d);
  if (procs.length === 0) problems.push(`${MANIFESTS}: no workload runs the Stratum image`);
  const imageUser = d.dockerfile.stages.at(-1)?.instructions.filter((i) => i.keyword === "USER").at(-1)?.args.trim().split(":")[0];
  for (const p of procs) {
    const { container: c, workload: w } = p;
    const spec = w.doc.spec?.template?.spec;
    problems.push(...checkProcessEnv(d, p));
    if (/:latest$|^[^:]*$/.test(c.image ?? "") || (c.imagePullPolicy !== "IfNotPresent" && c.imagePullPolicy !== "Never")) {
      problems.push(`${p.where}: image ${c.image} with pull policy ${c.imagePullPolicy ?? "(default)"} would be pulled; kind-loaded images need a fixed tag and IfNotPresent or Never`);
    }
    const runtime = p.service !== undefined && envContract(d, p.service)?.runtime;
    if (runtime) {
      const replicaId = p.env.get("STRATUM_REPLICA_ID");
      if (w.doc.kind !== "StatefulSet") problems.push(`${p.where}: a ${w.doc.kind}'s pod names change on every restart; replicas need a StatefulSet for a stable STRATUM_REPLICA_ID`);
      if (replicaId && replicaId.fieldPath !== "metadata.name") problems.push(`${p.where}: STRATUM_REPLICA_ID must come from fieldRef metadata.name (the stable pod name)`);
      const podIp = p.env.get("POD_IP");
      if (podIp && podIp.fieldPath !== "status.podIP") problems.push(`${p.where}: POD_IP must come from fieldRef status.podIP`);
      const grpcPort = Number(p.env.get("STRATUM_GRPC_PORT")?.value);
      for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"] as const) {
        const probe = c[kind];
        if (!probe) {
          if (kind !== "startupProbe") problems.push(`${p.where}: no ${kind}`);
          continue;
        }
        if (!probe.grpc) problems.push(`${p.where}: ${kind} is not a gRPC probe (the ring-aware health is grpc.health.v1)`);
        else if (probe.grpc.port !== grpcPort) problems.push(`${p.where}: ${kind} checks gRPC port ${probe.grpc.port}, STRATUM_GRPC_PORT is ${grpcPort}`);
      }
      // A scraper that follows the annotation would otherwise scrape nothing, or the gRPC port.
      const scrapePort = w.doc.spec?.template?.metadata?.annotations?.["prometheus.io/port"];
      const metricsPort = p.env.get("STRATUM_METRICS_PORT")?.value;
      if (scrapePort !== undefined && String(scrapePort) !== metricsPort) problems.push(`${p.where}: annotation prometheus.io/port ${scrapePort} is not STRATUM_METRICS_PORT ${metricsPort ?? "(unset)"}`);
    } else if (p.service === "agent-sim") {
      const { options, problems: argProblems } = agentSimArgs(p);
      problems.push(...argProblems);
      const exposed = new Set(p.ports);
      for (const port of options ? agentSimPorts(options) : []) if (!exposed.has(port)) problems.push(`${p.where}: agent-sim listens on ${port}, which is not a containerPort`);
      const ready = c.readinessProbe;
      const readyPort = probePort(c, ready?.httpGet?.port ?? ready?.tcpSocket?.port);
      if (options && readyPort !== options.controlPort) problems.push(`${p.where}: readiness probe port ${readyPort} is not the control port ${options.controlPort}`);
      for (const svc of objects(d, "Service").filter((s) => selects(s.doc.spec?.selector as Record<string, string> | undefined, podLabels(w)))) {
        const ports = new Set((svc.doc.spec?.ports ?? []).map((sp) => sp.port));
        for (const port of options ? agentSimPorts(options) : []) if (!ports.has(port)) problems.push(`${id(svc)}: does not expose agent-sim port ${port}`);
      }
    }
    const preStop = c.lifecycle?.preStop;
    const sleep = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.[0] === "sleep" ? preStop.exec.command[1] : 0);
    const grace = spec?.terminationGracePeriodSeconds ?? 30;
    const drain = runtime ? shutdownSeconds(p.service!) : undefined;
    if (runtime && drain === undefined) problems.push(unknownShutdown(p.where, p.service!));
    else if (drain !== undefined && grace <= drain + sleep) problems.push(`${p.where}: terminationGracePeriodSeconds ${grace} <= preStop ${sleep} s + the runtime's ${drain} s drain of ${p.service}: SIGKILL mid-drain`);
    if (!(spec?.securityContext?.runAsNonRoot ?? c.securityContext?.runAsNonRoot)) problems.push(`${p.where}: runAsNonRoot is not set`);
    const uid = c.securityContext?.runAsUser ?? spec?.securityContext?.runAsUser;
    if (uid !== undefined && String(uid) !== imageUser) problems.push(`${p.where}: runAsUser ${uid} is not the image's USER ${imageUser}`);
    if (c.securityContext?.readOnlyRootFilesystem && !(c.volumeMounts ?? []).some((m) => m.mountPath === "/tmp")) {
      problems.push(`${p.where}: read-only root filesystem without a /tmp volume: tsx cannot write its cache`);
    }
    for (const [kind, key] of [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]] as const) {
      if (c.resources?.[kind]?.[key] === undefined) problems.push(`${p.where}: no resources.${kind}.${key}`);
    }
  }
  return problems;
}

/** nats-server runs JetStream with its store on the StatefulSet's persistent volume. */
export function natsJetStreamOnVolume(d: Deploy): string[] {
  const nats = workloads(d).flatMap((w) => containersOf(w).filter((c) => /^(.*\/)?nats:/.test(c.image ?? "")).map((c) => ({ w, c })));
  if (nats.length === 0) return [`${MANIFESTS}: no nats container`];
  return nats.flatMap(({ w, c }): string[] => {
    const { jetStream, storeDir } = natsJetStream([...(c.command ?? []), ...(c.args ?? []).map(String)]);
    const claims = new Set((w.doc.spec?.volumeClaimTemplates ?? []).map((v) => v.metadata?.name));
    const onClaim = (c.volumeMounts ?? []).some((m) => m.mountPath === storeDir && claims.has(m.name));
    return [
      ...(jetStream ? [] : [`${id(w)}: nats-server runs without --jetstream`]),
      ...(onClaim ? [] : [`${id(w)}: JetStream store dir ${storeDir ?? "(default)"} is not on a volumeClaimTemplate`]),
    ];
  });
}
