/**
 * Loads deploy/docker and deploy/kind into one parsed model, plus the facts about the repository
 * they must agree with. Sources are plain texts keyed by repo-relative path, so a test can break
 * one file in memory and re-run the checks on the result.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { ENV } from "@stratum/runtime";
import { parseDockerfile, type Dockerfile } from "./dockerfile";
import type { ComposeFile, ComposeService, Container, EnvVar, K8sObject, Kustomization } from "./types";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export const DOCKERFILE = "deploy/docker/Dockerfile";
/** BuildKit's per-Dockerfile ignore file (`<Dockerfile>.dockerignore`): the context is the repo root. */
export const DOCKERIGNORE = "deploy/docker/Dockerfile.dockerignore";
export const ENTRYPOINT = "deploy/docker/entrypoint.sh";
export const COMPOSE_DIR = "deploy/docker";
export const COMPOSE = `${COMPOSE_DIR}/compose.yaml`;
export const KIND_CLUSTER = "deploy/kind/kind-cluster.yaml";
export const KIND_README = "deploy/kind/README.md";
export const MANIFESTS = "deploy/kind/manifests";
export const KUSTOMIZATION = `${MANIFESTS}/kustomization.yaml`;

/** Repo-relative path → text. */
export type Sources = Record<string, string>;

/** Reads every file the checks look at. */
export function readSources(root = REPO_ROOT): Sources {
  const sources: Sources = {};
  for (const path of [DOCKERFILE, DOCKERIGNORE, ENTRYPOINT, COMPOSE, KIND_CLUSTER, KIND_README]) {
    if (existsSync(join(root, path))) sources[path] = readFileSync(join(root, path), "utf8");
  }
  // Files compose mounts as secrets (the broker's dev auth file), read so their contents are checked too.
  for (const name of readdirSync(join(root, COMPOSE_DIR))) {
    if (/\.json$/.test(name)) sources[`${COMPOSE_DIR}/${name}`] = readFileSync(join(root, COMPOSE_DIR, name), "utf8");
  }
  for (const name of readdirSync(join(root, MANIFESTS))) {
    if (/\.ya?ml$/.test(name)) sources[`${MANIFESTS}/${name}`] = readFileSync(join(root, MANIFESTS, name), "utf8");
  }
  return sources;
}

/** What the deployment files must agree with, read from the repository itself. */
export interface RepoFacts {
  /** `pnpm@10.34.9` from package.json `packageManager`. */
  readonly packageManager: string;
  /** package.json `engines.node`, e.g. `>=20.19`. */
  readonly enginesNode: string;
  readonly rootDevDependencies: Readonly<Record<string, string>>;
  /** The variables `@stratum/runtime` reads (its exported `ENV`), plus those it reads outside it. */
  readonly runtimeEnv: readonly string[];
  /** Every `services/<name>` with a `src/main.ts`, sorted: what the deployments must run. */
  readonly services: readonly string[];
  /** Source of services/<name>/src/main.ts, or undefined when there is none. */
  serviceMain(name: string): string | undefined;
  exists(path: string): boolean;
}

export function readRepoFacts(root = REPO_ROOT): RepoFacts {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    packageManager?: string;
    engines?: { node?: string };
    devDependencies?: Record<string, string>;
  };
  return {
    packageManager: pkg.packageManager ?? "",
    enginesNode: pkg.engines?.node ?? "",
    rootDevDependencies: pkg.devDependencies ?? {},
    // POD_IP: config's fallback for the advertised host; STRATUM_LOG_LEVEL: read by @stratum/rpc's logger.
    runtimeEnv: [...Object.keys(ENV), "POD_IP", "STRATUM_LOG_LEVEL"],
    services: readdirSync(join(root, "services"))
      .filter((name) => existsSync(join(root, "services", name, "src", "main.ts")))
      .sort(),
    // main.ts and, beside it, config.ts: a kit service declares its variables in an env table there.
    serviceMain: (name) => {
      const path = join(root, "services", name, "src", "main.ts");
      if (!/^[a-z0-9-]+$/.test(name) || !existsSync(path)) return undefined;
      const config = join(root, "services", name, "src", "config.ts");
      return readFileSync(path, "utf8") + (existsSync(config) ? `\n${readFileSync(config, "utf8")}` : "");
    },
    exists: (path) => existsSync(join(root, path)),
  };
}

/** An environment variable's source, reduced to what the checks compare. */
export interface EnvValue {
  readonly value?: string;
  readonly fieldPath?: string;
  readonly secret?: { readonly name: string; readonly key: string };
}

/** One process started from the Stratum image, in compose or in Kubernetes. */
export interface StratumProcess {
  /** For messages: `compose service compute-0`, `compute.yaml StatefulSet/compute`. */
  readonly where: string;
  /** `$SERVICE` as the container sees it (the Dockerfile's default when not set). */
  readonly service: string | undefined;
  readonly env: ReadonlyMap<string, EnvValue>;
  /** Arguments after the entrypoint (agent-sim's flags). */
  readonly args: readonly string[];
  /** Ports the container listens on, as declared (containerPort / compose target port). */
  readonly ports: readonly number[];
}

export interface Manifest {
  readonly file: string;
  readonly doc: K8sObject;
}

export interface Deploy {
  readonly sources: Sources;
  readonly repo: RepoFacts;
  readonly dockerfile: Dockerfile;
  /** Patterns of the ignore file, comments and blanks removed. */
  readonly dockerignore: readonly string[];
  readonly compose: ComposeFile;
  readonly kindCluster: { kind?: string; apiVersion?: string; name?: string } | undefined;
  readonly kustomization: Kustomization;
  /** Every document of every manifest file except the kustomization. */
  readonly manifests: readonly Manifest[];
  /** YAML files in the manifests folder (kustomization excluded). */
  readonly manifestFiles: readonly string[];
  /** Parse errors: a file that does not parse is the first thing to report. */
  readonly parseErrors: readonly string[];
}

/** Parsed documents by text: a test that breaks one file re-parses only that one. Never mutated. */
const parsed = new Map<string, { docs: unknown[]; errors: string[] }>();

function parseYamlDocs(text: string): { docs: unknown[]; errors: string[] } {
  let hit = parsed.get(text);
  if (!hit) {
    // merge: compose files share blocks with `<<: *anchor`.
    const docs = parseAllDocuments(text, { merge: true });
    const all = Array.isArray(docs) ? docs : [docs];
    hit = { docs: all.map((doc) => doc.toJS() as unknown).filter((v) => v !== null), errors: all.flatMap((doc) => doc.errors.map((e) => e.message)) };
    parsed.set(text, hit);
  }
  return hit;
}

export function loadDeploy(sources: Sources, repo: RepoFacts): Deploy {
  const parseErrors: string[] = [];
  const docsOf = (path: string): unknown[] => {
    const text = sources[path];
    if (text === undefined) return [];
    const { docs, errors } = parseYamlDocs(text);
    parseErrors.push(...errors.map((e) => `${path}: ${e}`));
    return docs;
  };
  const manifestFiles = Object.keys(sources)
    .filter((p) => p.startsWith(`${MANIFESTS}/`) && p !== KUSTOMIZATION)
    .map((p) => p.slice(MANIFESTS.length + 1))
    .sort();
  return {
    sources,
    repo,
    dockerfile: parseDockerfile(sources[DOCKERFILE] ?? ""),
    dockerignore: (sources[DOCKERIGNORE] ?? "").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")),
    compose: (docsOf(COMPOSE)[0] ?? {}) as ComposeFile,
    kindCluster: docsOf(KIND_CLUSTER)[0] as Deploy["kindCluster"],
    kustomization: (docsOf(KUSTOMIZATION)[0] ?? {}) as Kustomization,
    manifests: manifestFiles.flatMap((file) => docsOf(`${MANIFESTS}/${file}`).map((doc) => ({ file, doc: doc as K8sObject }))),
    manifestFiles,
    parseErrors,
  };
}

// ---- the Stratum processes of both deployments ------------------------------------------------

/** `stratum:dev` → true: the image this repository builds (deploy/docker/Dockerfile). */
export const isStratumImage = (image: string | undefined): boolean => image !== undefined && /^(.*\/)?stratum(:[^/]*)?$/.test(image);

/** The final stage's `ENV SERVICE` default: what runs when nothing sets SERVICE. */
export const imageDefaultService = (d: Deploy): string | undefined => d.dockerfile.stages.at(-1)?.vars.SERVICE;

const k8sEnv = (env: readonly EnvVar[] | undefined): Map<string, EnvValue> =>
  new Map(
    (env ?? []).map((e): [string, EnvValue] => {
      const secret = e.valueFrom?.secretKeyRef;
      return [
        e.name ?? "",
        {
          ...(e.value !== undefined ? { value: String(e.value) } : {}),
          ...(e.valueFrom?.fieldRef?.fieldPath ? { fieldPath: e.valueFrom.fieldRef.fieldPath } : {}),
          ...(secret ? { secret: { name: secret.name ?? "", key: secret.key ?? "" } } : {}),
        },
      ];
    }),
  );

/** Pod-owning objects with their containers. */
export function workloads(d: Deploy): Array<Manifest & { containers: Container[] }> {
  return d.manifests
    .filter((m) => m.doc.kind === "StatefulSet" || m.doc.kind === "Deployment" || m.doc.kind === "DaemonSet" || m.doc.kind === "Job")
    .map((m) => ({ ...m, containers: [...(m.doc.spec?.template?.spec?.containers ?? []), ...(m.doc.spec?.template?.spec?.initContainers ?? [])] }));
}

export function kindProcesses(d: Deploy): Array<StratumProcess & { workload: Manifest; container: Container }> {
  return workloads(d).flatMap((w) =>
    w.containers.filter((c) => isStratumImage(c.image)).map((c) => {
      const env = k8sEnv(c.env);
      return {
        where: `${w.file} ${w.doc.kind}/${w.doc.metadata?.name} container ${c.name}`,
        service: env.get("SERVICE")?.value ?? imageDefaultService(d),
        env,
        args: (c.args ?? []).map(String),
        ports: (c.ports ?? []).map((p) => Number(p.containerPort)),
        workload: w,
        container: c,
      };
    }),
  );
}

export const composeEnv = (service: ComposeService): Map<string, EnvValue> => {
  const env = service.environment;
  if (Array.isArray(env)) {
    return new Map(env.map((kv): [string, EnvValue] => {
      const i = kv.indexOf("=");
      return i < 0 ? [kv, {}] : [kv.slice(0, i), { value: kv.slice(i + 1) }];
    }));
  }
  return new Map(Object.entries(env ?? {}).map(([k, v]): [string, EnvValue] => [k, v === null ? {} : { value: String(v) }]));
};

/** Compose `ports:` → { published, target } pairs (`"127.0.0.1:7200-7202:7200-7202"` expands). */
export function composePorts(service: ComposeService): Array<{ published: number | undefined; target: number }> {
  const out: Array<{ published: number | undefined; target: number }> = [];
  for (const p of service.ports ?? []) {
    if (typeof p === "object") {
      out.push({ published: p.published === undefined ? undefined : Number(p.published), target: Number(p.target) });
      continue;
    }
    const parts = String(p).replace(/\/(tcp|udp)$/, "").split(":");
    const range = (s: string): number[] => {
      const [a, b] = s.split("-").map(Number) as [number, number | undefined];
      return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
    };
    const targets = range(parts.at(-1)!);
    const published = parts.length >= 2 ? range(parts.at(-2)!) : [];
    targets.forEach((target, i) => out.push({ published: published[i], target }));
  }
  return out;
}

export const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : v.split(/\s+/).filter(Boolean));

export function composeProcesses(d: Deploy): Array<StratumProcess & { name: string; compose: ComposeService }> {
  return Object.entries(d.compose.services ?? {})
    .filter(([, s]) => isStratumImage(s.image) || s.build !== undefined)
    .map(([name, s]) => {
      const env = composeEnv(s);
      return {
        where: `compose service ${name}`,
        name,
        compose: s,
        service: env.get("SERVICE")?.value ?? imageDefaultService(d),
        env,
        args: asList(s.command),
        ports: composePorts(s).map((p) => p.target),
      };
    });
}
