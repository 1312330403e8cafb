/**
 * Every static check of the deployment files, by name. Each returns the problems it found, one
 * self-explanatory line each; an empty list means the invariant holds.
 */
import { dependencyProbes, disruptionBudgets, headlessServices, natsCluster, replicatedStreams } from "./check-availability";
import { composeAgentSim, composeDependencies, composeImage, composeServices } from "./check-compose";
import { dockerignore, nodeVersion, pnpmInstall, pnpmVersion, runtimeStage } from "./check-docker";
import { kindCluster, kustomization, natsJetStreamOnVolume, references, selectors, servicePorts, statefulSetServices, stratumContainers, wellFormed } from "./check-kind";
import { mountedFiles } from "./check-files";
import { envContract } from "./contract";
import { COMPOSE, DOCKERFILE, KIND_CLUSTER, KIND_README, MANIFESTS, composeProcesses, kindProcesses, type Deploy } from "./model";

/** Every `services/<name>/src/main.ts` written in a deployment file exists. */
function entryPoints(d: Deploy): string[] {
  return Object.entries(d.sources).flatMap(([file, text]) =>
    [...text.matchAll(/services\/([a-z0-9-]+)\/src\/main\.ts/g)]
      .filter((m) => d.repo.serviceMain(m[1]!) === undefined)
      .map((m) => `${file}: refers to ${m[0]}, which does not exist`),
  );
}

/**
 * Every runtime service of the repository (a `services/<name>/src/main.ts` run by @stratum/runtime;
 * agent-sim is a stand-in, checked on its own) runs in compose and in kind: a new service without
 * its manifest or compose entry fails here rather than being missed by every per-container check.
 */
function everyServiceDeployed(d: Deploy): string[] {
  const kind = new Set(kindProcesses(d).map((p) => p.service));
  const compose = new Set(composeProcesses(d).map((p) => p.service));
  return d.repo.services
    .filter((name) => envContract(d, name)?.runtime)
    .flatMap((name) => [
      ...(kind.has(name) ? [] : [`${MANIFESTS}: no workload runs ${name} (SERVICE=${name}); copy compute.yaml to ${name}.yaml and list it in kustomization.yaml`]),
      ...(compose.has(name) ? [] : [`${COMPOSE}: no service runs ${name} (SERVICE=${name}); add its replicas as compute's are`]),
    ]);
}

/** The kind README's commands use this repo's paths, the image compose builds and the cluster's name. */
function kindReadme(d: Deploy): string[] {
  const text = d.sources[KIND_README];
  if (text === undefined) return [`${KIND_README}: missing`];
  const image = composeProcesses(d)[0]?.compose.image ?? "?";
  const cluster = d.kindCluster?.name ?? "kind";
  const commands = [
    `kind create cluster --config ${KIND_CLUSTER}`,
    `docker build -f ${DOCKERFILE} -t ${image} .`,
    `kind load docker-image ${image} --name ${cluster}`,
    `kubectl apply -k ${MANIFESTS}`,
  ];
  return commands.filter((c) => !text.includes(c)).map((c) => `${KIND_README}: does not say \`${c}\` (image and cluster from ${COMPOSE} and ${KIND_CLUSTER})`);
}

export const CHECKS = {
  "docker: node version matches engines.node": nodeVersion,
  "docker: pnpm version matches packageManager": pnpmVersion,
  "docker: pnpm install is frozen, cache-friendly, keeps tsx": pnpmInstall,
  "docker: runtime stage and entrypoint": runtimeStage,
  "docker: ignore file": dockerignore,
  "compose: one image built from the Dockerfile": composeImage,
  "compose: Stratum services' environment": composeServices,
  "compose: dependencies and URLs": composeDependencies,
  "compose: agent-sim": composeAgentSim,
  "kind: cluster config": kindCluster,
  "kind: README commands": kindReadme,
  "kind: kustomization lists every manifest": kustomization,
  "all: YAML parses, manifests well-formed": wellFormed,
  "kind: selectors match pod labels": selectors,
  "kind: Service ports resolve": servicePorts,
  "kind: StatefulSet serviceName is headless": statefulSetServices,
  "kind: references resolve": references,
  "kind: Stratum containers": stratumContainers,
  "kind: NATS JetStream on a volume": natsJetStreamOnVolume,
  "kind: Stratum Services headless for client round robin": headlessServices,
  "kind: readiness follows Postgres and NATS, liveness does not": dependencyProbes,
  "kind: NATS is a 3-node JetStream cluster": natsCluster,
  "kind: streams replicated on every NATS server": replicatedStreams,
  "kind: PodDisruptionBudgets take one pod at a time": disruptionBudgets,
  "all: service entry points exist": entryPoints,
  "all: files named by STRATUM_*_FILE are mounted": mountedFiles,
  "all: every service deployed in compose and kind": everyServiceDeployed,
} satisfies Record<string, (d: Deploy) => string[]>;

export type CheckName = keyof typeof CHECKS;

export function runChecks(d: Deploy): Array<{ check: CheckName; problem: string }> {
  return (Object.keys(CHECKS) as CheckName[]).flatMap((check) => CHECKS[check](d).map((problem) => ({ check, problem })));
}
