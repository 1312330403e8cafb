/**
 * Files a Stratum process is told to read (`STRATUM_*_FILE`, e.g. the broker's auth file): in a
 * container the path must be mounted, from a Secret in Kubernetes or a compose secret, and what is
 * mounted must exist and be valid JSON when the name says JSON. A path nothing mounts is a replica
 * that refuses to start (the broker reads its auth file in setup), found here instead.
 */
import { posix } from "node:path";
import { COMPOSE, COMPOSE_DIR, composeProcesses, kindProcesses, type Deploy } from "./model";

/** Variables naming a file to read, with an absolute path as their value. */
function fileVariables(env: ReadonlyMap<string, { value?: string }>): Array<[name: string, path: string]> {
  return [...env.entries()].filter(([name, v]) => /^STRATUM_[A-Z0-9_]+_FILE$/.test(name) && v.value !== undefined && v.value !== "").map(([name, v]) => [name, v.value!]);
}

function jsonProblem(where: string, text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (e) {
    return `${where} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** Kubernetes: each file variable's path is under a volumeMount of a Secret volume whose Secret has that key. */
function kindFiles(d: Deploy): string[] {
  const problems: string[] = [];
  for (const p of kindProcesses(d)) {
    const volumes = p.workload.doc.spec?.template?.spec?.volumes ?? [];
    for (const [name, path] of fileVariables(p.env)) {
      if (!posix.isAbsolute(path)) {
        problems.push(`${p.where}: ${name}=${path} is not an absolute path`);
        continue;
      }
      const mount = (p.container.volumeMounts ?? []).find((m) => m.mountPath !== undefined && (path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, "")}/`)));
      if (!mount) {
        problems.push(`${p.where}: ${name}=${path}, but no volumeMount holds it: mount its Secret there`);
        continue;
      }
      const secret = volumes.find((v) => v.name === mount.name)?.secret;
      if (!secret) continue; // another kind of volume: its content is not in the manifests
      const relative = mount.subPath ?? posix.relative(mount.mountPath!, path);
      const key = secret.items ? secret.items.find((i) => i.path === relative)?.key : relative;
      const doc = d.manifests.find((m) => m.doc.kind === "Secret" && m.doc.metadata?.name === secret.secretName)?.doc;
      const text = key === undefined ? undefined : (doc?.stringData?.[key] ?? (doc?.data?.[key] !== undefined ? Buffer.from(doc.data[key], "base64").toString() : undefined));
      if (!doc) problems.push(`${p.where}: ${name}=${path} is mounted from Secret ${secret.secretName}, which does not exist`);
      else if (text === undefined) problems.push(`${p.where}: ${name}=${path} is mounted from Secret ${secret.secretName}, which has no key ${key ?? relative}`);
      else if (path.endsWith(".json")) {
        const bad = jsonProblem(`${p.where}: ${name}: Secret ${secret.secretName} key ${key}`, text);
        if (bad) problems.push(bad);
      }
    }
  }
  return problems;
}

/** compose: each file variable's path is the target of one of the service's secrets, whose file exists. */
function composeFiles(d: Deploy): string[] {
  const problems: string[] = [];
  const declared = d.compose.secrets ?? {};
  for (const p of composeProcesses(d)) {
    const secrets = (p.compose.secrets ?? []).map((s) => (typeof s === "string" ? { source: s, target: `/run/secrets/${s}` } : { source: s.source ?? "", target: s.target?.startsWith("/") ? s.target : `/run/secrets/${s.target ?? s.source ?? ""}` }));
    for (const [name, path] of fileVariables(p.env)) {
      const secret = secrets.find((s) => s.target === path);
      if (!secret) {
        problems.push(`${p.where}: ${name}=${path}, but none of its secrets is mounted there (a secret mounts at /run/secrets/<name> or its target)`);
        continue;
      }
      const top = declared[secret.source];
      if (!top?.file) {
        problems.push(`${p.where}: secret ${secret.source} is not declared with a file under the top-level secrets`);
        continue;
      }
      const file = posix.normalize(posix.join(COMPOSE_DIR, top.file));
      const text = d.sources[file];
      if (text === undefined) problems.push(`${COMPOSE}: secret ${secret.source} is the file ${file}, which does not exist`);
      else if (path.endsWith(".json") || file.endsWith(".json")) {
        const bad = jsonProblem(`${COMPOSE}: secret ${secret.source} (${file})`, text);
        if (bad) problems.push(bad);
      }
    }
  }
  return problems;
}

export function mountedFiles(d: Deploy): string[] {
  return [...kindFiles(d), ...composeFiles(d)];
}
