/** Checks of deploy/docker/Dockerfile, its ignore file and its entrypoint script. */
import { execForm, type Instruction, type Stage } from "./dockerfile";
import { DOCKERFILE, DOCKERIGNORE, ENTRYPOINT, type Deploy } from "./model";

const at = (i: Instruction) => `${DOCKERFILE}:${i.line}`;
const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === "RUN");
const finalStage = (d: Deploy): Stage | undefined => d.dockerfile.stages.at(-1);

/** Base images are node:<engines major>-bookworm-slim, all stages alike, and agree with @types/node. */
export function nodeVersion(d: Deploy): string[] {
  const problems: string[] = [];
  const engines = /(\d+)(?:\.(\d+))?/.exec(d.repo.enginesNode);
  if (!engines) return [`package.json engines.node (${JSON.stringify(d.repo.enginesNode)}) names no version`];
  const [major, minor] = [Number(engines[1]), Number(engines[2] ?? 0)];
  // Other images may serve as helper stages; the final one must be Node.
  const nodeStages = d.dockerfile.stages.filter((s) => /^node:/.test(s.image));
  const last = finalStage(d);
  if (!last || !/^node:/.test(last.image)) problems.push(`${DOCKERFILE}: the final stage is FROM ${last?.image ?? "nothing"}, not node:<version>-bookworm-slim`);
  for (const s of nodeStages) {
    const tag = /^node:(\d+)(?:\.(\d+))?(?:\.\d+)?-(.+)$/.exec(s.image);
    if (!tag) {
      problems.push(`${DOCKERFILE}: stage ${s.name ?? "?"} is FROM ${s.image}, not node:<version>-bookworm-slim`);
      continue;
    }
    if (Number(tag[1]) !== major) problems.push(`${DOCKERFILE}: stage ${s.name ?? "?"} runs Node ${tag[1]}, package.json engines.node is ${d.repo.enginesNode}`);
    else if (tag[2] !== undefined && Number(tag[2]) < minor) problems.push(`${DOCKERFILE}: stage ${s.name ?? "?"} runs Node ${tag[1]}.${tag[2]} < engines.node ${d.repo.enginesNode}`);
    if (tag[3] !== "bookworm-slim") problems.push(`${DOCKERFILE}: stage ${s.name ?? "?"} uses variant ${tag[3]}, expected bookworm-slim (glibc, like the dev machines)`);
  }
  if (new Set(nodeStages.map((s) => s.image)).size > 1) problems.push(`${DOCKERFILE}: stages use different node images (${[...new Set(nodeStages.map((s) => s.image))].join(", ")}): node_modules built on one run on another`);
  const types = /(\d+)/.exec(d.repo.rootDevDependencies["@types/node"] ?? "");
  if (types && Number(types[1]) !== major) problems.push(`package.json: @types/node ${types[1]} but engines.node ${d.repo.enginesNode}`);
  return problems;
}

/** The pnpm the image installs is exactly package.json's packageManager (lockfile format and behaviour). */
export function pnpmVersion(d: Deploy): string[] {
  const wanted = /^pnpm@([^+]+)/.exec(d.repo.packageManager)?.[1];
  if (!wanted) return [`package.json packageManager (${JSON.stringify(d.repo.packageManager)}) is not pnpm@<version>`];
  const installs = d.dockerfile.stages.flatMap(runs).flatMap((i) => [...i.args.matchAll(/npm\s+(?:i|install|add)\s+(?:-g|--global)\s+pnpm@(\S+)/g)].map((m) => ({ i, version: m[1]! })));
  if (installs.length === 0) return [`${DOCKERFILE}: no \`npm install -g pnpm@<version>\` (corepack is unreliable here)`];
  return installs.filter((x) => x.version !== wanted).map((x) => `${at(x.i)}: installs pnpm@${x.version}, package.json packageManager is pnpm@${wanted}`);
}

/**
 * `pnpm install --frozen-lockfile` keeps dev dependencies (tsx runs the services), sees the
 * lockfile, workspace file and package.json files, and runs before the sources are copied so a
 * code change does not reinstall; the final stage adds the sources after node_modules.
 */
export function pnpmInstall(d: Deploy): string[] {
  const problems: string[] = [];
  const stages = d.dockerfile.stages;
  const found = stages.flatMap((s) => runs(s).filter((i) => /\bpnpm\s+(install|i)\b/.test(i.args)).map((i) => ({ s, i })));
  if (found.length !== 1) return [`${DOCKERFILE}: expected one \`pnpm install\`, found ${found.length}`];
  const { s, i } = found[0]!;
  if (!/--frozen-lockfile\b/.test(i.args)) problems.push(`${at(i)}: pnpm install without --frozen-lockfile may resolve versions the lockfile does not pin`);
  if (/(--prod(?!=false)\b|--production\b|\s-P\b)/.test(i.args) && d.repo.rootDevDependencies.tsx) {
    problems.push(`${at(i)}: installs production dependencies only, but tsx (a root devDependency) is what runs the services`);
  }
  const before = s.instructions.slice(0, s.instructions.indexOf(i));
  const copies = before.filter((c) => c.keyword === "COPY" || c.keyword === "ADD");
  const wholeContext = copies.find((c) => !c.flags.from && /^\.\/?(\s|$)/.test(c.args));
  if (wholeContext) problems.push(`${at(wholeContext)}: copies the whole context before pnpm install, so every source change reinstalls`);
  // What reaches the install: COPY sources, and the instructions of stages it copies from.
  const reaching = copies.map((c) => {
    const from = c.flags.from;
    const source = from === undefined ? undefined : stages.find((st) => st.name === from);
    return source ? source.instructions.map((x) => x.args).join("\n") : c.args;
  }).join("\n");
  for (const file of ["pnpm-lock.yaml", "pnpm-workspace.yaml", "package.json"]) {
    if (!reaching.includes(file)) problems.push(`${at(i)}: ${file} does not reach pnpm install`);
  }
  const last = finalStage(d);
  if (last) {
    const fromInstall = last.instructions.findIndex((x) => x.keyword === "COPY" && x.flags.from === s.name);
    const sources = last.instructions.findIndex((x) => x.keyword === "COPY" && !x.flags.from && /^\.\/?\s/.test(x.args));
    if (last !== s && fromInstall < 0) problems.push(`${DOCKERFILE}: the final stage never copies node_modules from stage ${s.name}`);
    if (sources < 0 && last !== s) problems.push(`${DOCKERFILE}: the final stage never copies the sources (COPY . .)`);
    if (fromInstall >= 0 && sources >= 0 && sources < fromInstall) problems.push(`${DOCKERFILE}: the final stage copies the sources before node_modules (cache busts on every change)`);
  }
  return problems;
}

/** The final stage: non-root numeric USER, NODE_ENV=production, SIGTERM, SERVICE default, entrypoint. */
export function runtimeStage(d: Deploy): string[] {
  const last = finalStage(d);
  if (!last) return [`${DOCKERFILE}: no stage`];
  const problems: string[] = [];
  const one = (k: string) => last.instructions.filter((i) => i.keyword === k).at(-1);
  const user = one("USER")?.args.trim().split(":")[0];
  if (user === undefined) problems.push(`${DOCKERFILE}: the final stage runs as root (no USER)`);
  else if (!/^\d+$/.test(user) || Number(user) === 0) problems.push(`${DOCKERFILE}: USER ${user} must be a numeric non-root uid so Kubernetes can verify runAsNonRoot`);
  if (last.vars.NODE_ENV !== "production") problems.push(`${DOCKERFILE}: the final stage does not set ENV NODE_ENV=production`);
  if (one("STOPSIGNAL")?.args.trim() !== "SIGTERM") problems.push(`${DOCKERFILE}: STOPSIGNAL is not SIGTERM (the runtime drains on SIGTERM)`);
  const service = last.vars.SERVICE;
  if (service === undefined) problems.push(`${DOCKERFILE}: no ARG/ENV SERVICE default in the final stage`);
  else if (d.repo.serviceMain(service) === undefined) problems.push(`${DOCKERFILE}: default SERVICE=${service} but services/${service}/src/main.ts does not exist`);
  const entry = one("ENTRYPOINT");
  const argv = entry ? execForm(entry.args) : undefined;
  if (!argv) problems.push(`${DOCKERFILE}: ENTRYPOINT must be exec form (a shell form would be PID 1 and swallow SIGTERM)`);
  else {
    const copied = last.instructions.find((i) => i.keyword === "COPY" && i.args.trim().split(/\s+/).at(-1) === argv[0]);
    const from = copied?.args.trim().split(/\s+/)[0];
    if (!copied || from !== ENTRYPOINT) problems.push(`${DOCKERFILE}: ENTRYPOINT ${argv[0]} is not ${ENTRYPOINT} copied into the image`);
  }
  const workdir = one("WORKDIR")?.args.trim();
  const script = d.sources[ENTRYPOINT] ?? "";
  if (!script) problems.push(`${ENTRYPOINT}: missing`);
  else {
    // `main="services/$SERVICE/src/main.ts"` … `exec node --import tsx "$main" "$@"`, or the path inline.
    const mainVar = /^main="([^"]+)"$/m.exec(script)?.[1];
    const target = /^exec node --import tsx (\S+) "\$@"$/m.exec(script)?.[1]?.replace(/^"\$main"$/, () => mainVar ?? "$main").replace(/^"|"$/g, "");
    if (target !== "services/$SERVICE/src/main.ts") problems.push(`${ENTRYPOINT}: does not \`exec node --import tsx services/$SERVICE/src/main.ts "$@"\``);
    const cd = /^cd (\S+)$/m.exec(script)?.[1];
    if (cd !== workdir) problems.push(`${ENTRYPOINT}: runs in ${cd ?? "the caller's directory"}, but the Dockerfile's WORKDIR (where node_modules is) is ${workdir}`);
  }
  return problems;
}

/** The ignore file keeps host node_modules out (COPY . . would replace the image's) and keeps what the build needs. */
export function dockerignore(d: Deploy): string[] {
  if (d.sources[DOCKERIGNORE] === undefined) return [`${DOCKERIGNORE}: missing (BuildKit reads <Dockerfile>.dockerignore; the context is the repo root)`];
  const problems: string[] = [];
  const patterns = d.dockerignore.map((raw) => ({ negate: raw.startsWith("!"), re: ignoreRegExp(raw.replace(/^!/, "")) }));
  const ignored = (path: string) => patterns.reduce((state, p) => (p.re.test(path) ? !p.negate : state), false);
  for (const path of ["node_modules", "services/compute/node_modules", ".git", ".data"]) {
    if (!ignored(path)) problems.push(`${DOCKERIGNORE}: does not exclude ${path}`);
  }
  for (const path of ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "tsconfig.json", "tsconfig.base.json", "services/compute/src/main.ts", "packages/runtime/src/index.ts", ENTRYPOINT]) {
    if (ignored(path)) problems.push(`${DOCKERIGNORE}: excludes ${path}, which the image needs`);
  }
  return problems;
}

/** A .dockerignore pattern as a RegExp over context-relative paths; a matched directory excludes its contents. */
function ignoreRegExp(pattern: string): RegExp {
  const parts = pattern.replace(/^\/+|\/+$/g, "").split("/");
  const body = parts.map((part, i) => {
    if (part === "**") return i === parts.length - 1 ? ".*" : "(?:[^/]+/)*";
    const glob = part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]");
    return i === parts.length - 1 ? glob : `${glob}/`;
  });
  return new RegExp(`^${body.join("")}(?:/.*)?$`);
}
