/**
 * Static checks of deploy/docker and deploy/kind (nothing here runs Docker or a cluster). The
 * first block runs every check on the real files; the second breaks one file at a time in
 * memory and proves the check meant to catch it does — a check that cannot fail checks nothing.
 */
import { describe, expect, it } from "vitest";
import { CHECKS, runChecks, type CheckName } from "../src/checks";
import { COMPOSE, DOCKERFILE, DOCKERIGNORE, ENTRYPOINT, KIND_CLUSTER, KIND_README, KUSTOMIZATION, loadDeploy, MANIFESTS, readRepoFacts, readSources } from "../src/model";

const sources = readSources();
const repo = readRepoFacts();
const deploy = loadDeploy(sources, repo);

describe("deployment files", () => {
  it.each(Object.keys(CHECKS) as CheckName[])("%s", (check) => {
    expect(CHECKS[check](deploy)).toEqual([]);
  });

  it("finds the files it checks", () => {
    for (const file of [DOCKERFILE, DOCKERIGNORE, ENTRYPOINT, COMPOSE, KIND_CLUSTER, KIND_README, KUSTOMIZATION]) expect(sources[file], file).toBeTypeOf("string");
    expect(deploy.manifests.length).toBeGreaterThan(5);
  });
});

const COMPUTE = `${MANIFESTS}/compute.yaml`;
const LONGJOB = `${MANIFESTS}/longjob.yaml`;
const NETWORK = `${MANIFESTS}/network.yaml`;
const BROKER = `${MANIFESTS}/broker.yaml`;
const BROKER_AUTH = "deploy/docker/broker-auth.dev.json";
const AGENT_SIM = `${MANIFESTS}/agent-sim.yaml`;
const NATS = `${MANIFESTS}/nats.yaml`;
const POSTGRES = `${MANIFESTS}/postgres.yaml`;

/** [check that must catch it, file, text to replace (every occurrence), replacement, expected problem]. */
type Breakage = [CheckName, string, string, string, RegExp];

const BREAKAGES: Breakage[] = [
  // Dockerfile
  ["docker: node version matches engines.node", DOCKERFILE, "ARG NODE_MAJOR=20", "ARG NODE_MAJOR=22", /runs Node 22, package.json engines.node/],
  ["docker: node version matches engines.node", DOCKERFILE, "FROM node:${NODE_MAJOR}-bookworm-slim AS runtime", "FROM node:${NODE_MAJOR}-alpine AS runtime", /variant alpine/],
  ["docker: node version matches engines.node", DOCKERFILE, "FROM node:${NODE_MAJOR}-bookworm-slim AS runtime", "FROM debian:bookworm-slim AS runtime", /final stage is FROM debian:bookworm-slim/],
  ["docker: pnpm version matches packageManager", DOCKERFILE, "ARG PNPM_VERSION=10.34.9", "ARG PNPM_VERSION=10.0.0", /installs pnpm@10\.0\.0, package.json packageManager/],
  ["docker: pnpm install is frozen, cache-friendly, keeps tsx", DOCKERFILE, "--frozen-lockfile ", "", /without --frozen-lockfile/],
  ["docker: pnpm install is frozen, cache-friendly, keeps tsx", DOCKERFILE, "--frozen-lockfile --prod=false", "--frozen-lockfile --prod", /tsx \(a root devDependency\)/],
  ["docker: pnpm install is frozen, cache-friendly, keeps tsx", DOCKERFILE, "cp pnpm-lock.yaml pnpm-workspace.yaml /out/", "cp pnpm-workspace.yaml /out/", /pnpm-lock\.yaml does not reach pnpm install/],
  ["docker: pnpm install is frozen, cache-friendly, keeps tsx", DOCKERFILE, "COPY --from=manifests /out/ ./", "COPY . .", /copies the whole context before pnpm install/],
  ["docker: runtime stage and entrypoint", DOCKERFILE, "USER 1000:1000", "USER node", /numeric non-root uid/],
  ["docker: runtime stage and entrypoint", DOCKERFILE, "ENV NODE_ENV=production", "ENV NODE_ENV=development", /NODE_ENV=production/],
  ["docker: runtime stage and entrypoint", DOCKERFILE, "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", /STOPSIGNAL is not SIGTERM/],
  ["docker: runtime stage and entrypoint", DOCKERFILE, "ARG SERVICE=compute", "ARG SERVICE=computer", /services\/computer\/src\/main\.ts does not exist/],
  ["docker: runtime stage and entrypoint", DOCKERFILE, 'ENTRYPOINT ["/usr/local/bin/stratum-entrypoint"]', "ENTRYPOINT /usr/local/bin/stratum-entrypoint", /exec form/],
  ["docker: runtime stage and entrypoint", ENTRYPOINT, 'exec node --import tsx "$main" "$@"', 'node --import tsx "$main" "$@"', /does not `exec node --import tsx/],
  ["docker: runtime stage and entrypoint", ENTRYPOINT, "cd /app", "cd /srv", /WORKDIR .* is \/app/],
  ["docker: ignore file", DOCKERIGNORE, "**/node_modules\n", "", /does not exclude node_modules/],
  ["docker: ignore file", DOCKERIGNORE, ".git\n", ".git\n*.yaml\n", /excludes pnpm-lock\.yaml/],
  // compose
  ["compose: one image built from the Dockerfile", COMPOSE, "    hostname: compute-1\n", "    hostname: compute-1\n    image: stratum:old\n", /share one stratum image/],
  ["compose: one image built from the Dockerfile", COMPOSE, "context: ../..", "context: ..", /not the repository root/],
  ["compose: one image built from the Dockerfile", COMPOSE, "dockerfile: deploy/docker/Dockerfile", "dockerfile: Dockerfile", /builds Dockerfile, not deploy\/docker\/Dockerfile/],
  ["compose: Stratum services' environment", COMPOSE, "STRATUM_REPLICA_ID: compute-1", "STRATUM_REPLICA_ID: compute-0", /STRATUM_REPLICA_ID=compute-0 is also compute-0's/],
  ["compose: Stratum services' environment", COMPOSE, "  NATS_URL: nats://nats:4222", "  NAT_URL: nats://nats:4222", /sets NAT_URL, which compute never reads/],
  ["compose: Stratum services' environment", COMPOSE, "  NATS_URL: nats://nats:4222", "  NAT_URL: nats://nats:4222", /NATS_URL is not set/],
  ["compose: Stratum services' environment", COMPOSE, "STRATUM_ADVERTISE_HOST: compute-1", "STRATUM_ADVERTISE_HOST: compute-0", /compute-1: STRATUM_ADVERTISE_HOST=compute-0 is not this container's name/],
  ["compose: Stratum services' environment", COMPOSE, "      STRATUM_ADVERTISE_HOST: compute-1\n", "", /advertises 127\.0\.0\.1/],
  ["compose: Stratum services' environment", COMPOSE, "stop_grace_period: 180s", "stop_grace_period: 60s", /stop_grace_period 60s must exceed the runtime's 165 s drain/],
  ["compose: Stratum services' environment", COMPOSE, "tmpfs: [/tmp]", "tmpfs: [/run]", /read_only without a \/tmp tmpfs/],
  ["compose: Stratum services' environment", COMPOSE, "      SERVICE: compute\n      STRATUM_REPLICA_ID: compute-0", "      SERVICE: compte\n      STRATUM_REPLICA_ID: compute-0", /services\/compte\/src\/main\.ts does not exist/],
  ["compose: Stratum services' environment", COMPOSE, 'STRATUM_GRPC_PORT: "7101"', 'STRATUM_GRPC_PORT: "7000"', /STRATUM_GRPC_PORT=7000 is not among the container's ports/],
  ["compose: dependencies and URLs", COMPOSE, "      test: [CMD, pg_isready, -U, stratum, -d, stratum]\n", "", /waits for postgres to be healthy, but postgres has no healthcheck/],
  ["compose: dependencies and URLs", COMPOSE, "postgres://stratum:stratum@postgres", "postgres://stratum:secret@postgres", /DATABASE_URL password "secret"/],
  ["compose: dependencies and URLs", COMPOSE, "    postgres: { condition: service_healthy }", "    postgresql: { condition: service_healthy }", /depends_on postgresql, which does not exist/],
  ["compose: dependencies and URLs", COMPOSE, "    postgres: { condition: service_healthy }", "    postgresql: { condition: service_healthy }", /uses postgres \(DATABASE_URL\) without depends_on/],
  ["compose: dependencies and URLs", COMPOSE, "command: [--jetstream, ", "command: [", /nats-server runs without --jetstream/],
  ["compose: dependencies and URLs", COMPOSE, "volumes: [nats-data:/data]", "volumes: [nats-data:/store]", /store dir \/data is not on a volume/],
  ["compose: agent-sim", COMPOSE, '"7200", --bind, 0.0.0.0]', '"7200"]', /binds 127\.0\.0\.1/],
  ["compose: agent-sim", COMPOSE, '"127.0.0.1:7200-7202:7200-7202"', '"127.0.0.1:7200-7201:7200-7201"', /listens on 7202, which is not published/],
  ["compose: agent-sim", COMPOSE, 'command: [--hosts, "3"', 'command: [--host, "3"', /agent-sim rejects its arguments/],
  // kind
  ["kind: cluster config", KIND_CLUSTER, "kind: Cluster", "kind: Config", /not a kind\.x-k8s\.io\/v1alpha4 Cluster/],
  ["kind: README commands", KIND_README, "kind load docker-image stratum:dev --name stratum", "kind load docker-image stratum:dev", /does not say `kind load docker-image stratum:dev --name stratum`/],
  ["kind: kustomization lists every manifest", KUSTOMIZATION, "  - agent-sim.yaml\n", "", /does not list agent-sim\.yaml/],
  ["kind: kustomization lists every manifest", KUSTOMIZATION, "  - agent-sim.yaml\n", "  - agent-sim.yaml\n  - billing.yaml\n", /lists billing\.yaml, which is not in/],
  ["kind: kustomization lists every manifest", KUSTOMIZATION, "namespace: stratum", "namespace: stratum-dev", /namespace stratum-dev has no Namespace manifest/],
  ["kind: kustomization lists every manifest", NATS, "  name: nats # NATS_URL", "  name: nats\n  namespace: default # NATS_URL", /hard-codes namespace default/],
  ["all: YAML parses, manifests well-formed", COMPUTE, "  name: compute-headless", "  name: compute", /Service\/compute is defined twice/],
  ["all: YAML parses, manifests well-formed", COMPUTE, "kind: PodDisruptionBudget", "kind: PodDisruptionBudget\n  bad: [", /compute\.yaml: /],
  ["all: YAML parses, manifests well-formed", COMPOSE, "name: stratum", "name: [stratum", /compose\.yaml: /],
  ["kind: selectors match pod labels", COMPUTE, "      labels: { app.kubernetes.io/name: compute }", "      labels: { app.kubernetes.io/name: compute-pod }", /StatefulSet\/compute: selector .* does not match its pod labels/],
  ["kind: selectors match pod labels", COMPUTE, "      labels: { app.kubernetes.io/name: compute }", "      labels: { app.kubernetes.io/name: compute-pod }", /Service\/compute: selector .* matches no pods/],
  ["kind: selectors match pod labels", COMPUTE, "    matchLabels: { app.kubernetes.io/name: compute }\n---", "    matchLabels: { app.kubernetes.io/name: compte }\n---", /PodDisruptionBudget\/compute: selector matches no pods/],
  ["kind: Service ports resolve", COMPUTE, "targetPort: grpc", "targetPort: grpcs", /Service\/compute-headless: port grpc targets grpcs/],
  ["kind: Service ports resolve", POSTGRES, "    - { name: postgres, port: 5432, targetPort: postgres }\n---\napiVersion: apps/v1", "    - { name: postgres, port: 5432, targetPort: 5433 }\n---\napiVersion: apps/v1", /Service\/postgres: port postgres targets 5433/],
  ["kind: StatefulSet serviceName is headless", COMPUTE, "serviceName: compute-headless", "serviceName: agent-sim", /serviceName agent-sim is not headless/],
  ["kind: StatefulSet serviceName is headless", NATS, "serviceName: nats-headless", "serviceName: nats-hl", /serviceName nats-hl is not a Service/],
  ["kind: references resolve", COMPUTE, "key: DATABASE_URL", "key: DATABASE_URI", /reads Secret postgres key DATABASE_URI, which does not exist/],
  ["kind: references resolve", COMPUTE, '"nats://nats:4222"', '"nats://nats-server:4222"', /NATS_URL points at nats-server, which is not a Service/],
  ["kind: references resolve", COMPUTE, '"nats://nats:4222"', '"nats://nats:4223"', /NATS_URL uses port 4223/],
  ["kind: references resolve", POSTGRES, "  POSTGRES_PASSWORD: stratum-dev", "  POSTGRES_PASSWORD: changed", /DATABASE_URL password "stratum-dev" disagrees with POSTGRES_PASSWORD "changed"/],
  ["kind: references resolve", COMPUTE, "- { name: tmp, mountPath: /tmp }", "- { name: temp, mountPath: /tmp }", /mounts temp, which is not a volume/],
  ["kind: Stratum containers", COMPUTE, "imagePullPolicy: IfNotPresent", "imagePullPolicy: Always", /would be pulled/],
  ["kind: Stratum containers", AGENT_SIM, "image: stratum:dev", "image: stratum:latest", /would be pulled/],
  ["kind: Stratum containers", COMPUTE, "fieldPath: metadata.name", "fieldPath: metadata.uid", /STRATUM_REPLICA_ID must come from fieldRef metadata\.name/],
  ["kind: Stratum containers", COMPUTE, "kind: StatefulSet", "kind: Deployment", /replicas need a StatefulSet/],
  ["kind: Stratum containers", COMPUTE, "            grpc: { port: 7101 }\n            periodSeconds: 5", "            grpc: { port: 7102 }\n            periodSeconds: 5", /readinessProbe checks gRPC port 7102, STRATUM_GRPC_PORT is 7101/],
  ["kind: Stratum containers", COMPUTE, "          livenessProbe:", "          livenessProbx:", /no livenessProbe/],
  ["kind: Stratum containers", COMPUTE, '{ name: STRATUM_GRPC_PORT, value: "7101" }', '{ name: STRATUM_GRPC_PORT, value: "7000" }', /STRATUM_GRPC_PORT=7000 is not among the container's ports/],
  ["kind: Stratum containers", COMPUTE, "{ name: STRATUM_HEARTBEAT_MS,", "{ name: STRATUM_HEARTBEAT,", /sets STRATUM_HEARTBEAT, which compute never reads/],
  ["kind: Stratum containers", COMPUTE, "            - name: DATABASE_URL\n              valueFrom: { secretKeyRef: { name: postgres, key: DATABASE_URL } }\n", "", /DATABASE_URL is not set/],
  ["kind: Stratum containers", COMPUTE, "            - name: POD_IP\n              valueFrom: { fieldRef: { fieldPath: status.podIP } }\n", "", /advertises 127\.0\.0\.1/],
  ["kind: Stratum containers", COMPUTE, "terminationGracePeriodSeconds: 180", "terminationGracePeriodSeconds: 30", /terminationGracePeriodSeconds 30 <= preStop 5 s \+ the runtime's 165 s drain/],
  ["kind: Stratum containers", COMPUTE, "runAsUser: 1000", "runAsUser: 1001", /runAsUser 1001 is not the image's USER 1000/],
  ["kind: Stratum containers", COMPUTE, "            - { name: tmp, mountPath: /tmp } # tsx's transform cache\n", "", /read-only root filesystem without a \/tmp volume/],
  ["kind: Stratum containers", COMPUTE, "limits: { cpu: \"1\", memory: 512Mi }", "limits: { cpu: \"1\" }", /no resources\.limits\.memory/],
  ["kind: Stratum containers", AGENT_SIM, '"7200", --bind, 0.0.0.0]', '"7200"]', /binds 127\.0\.0\.1/],
  ["kind: Stratum containers", AGENT_SIM, "            - { name: host-2, containerPort: 7202 }\n", "", /listens on 7202, which is not a containerPort/],
  ["kind: Stratum containers", AGENT_SIM, "    - { name: host-2, port: 7202, targetPort: host-2 }\n", "", /does not expose agent-sim port 7202/],
  ["kind: Stratum containers", AGENT_SIM, "{ name: SERVICE, value: agent-sim }", "{ name: SERVICE, value: agentsim }", /services\/agentsim\/src\/main\.ts does not exist/],
  ["kind: NATS JetStream on a volume", NATS, "            - --jetstream\n", "", /nats-server runs without --jetstream/],
  ["kind: Stratum Services headless for client round robin", COMPUTE, "  name: compute\n  labels: { app.kubernetes.io/name: compute }\nspec:\n  clusterIP: None\n", "  name: compute\n  labels: { app.kubernetes.io/name: compute }\nspec:\n", /Service\/compute: a ClusterIP in front of .* pins each HTTP\/2 client to one pod/],
  ["kind: Stratum Services headless for client round robin", COMPUTE, "  clusterIP: None\n  selector", "  clusterIP: None\n  publishNotReadyAddresses: true\n  selector", /StatefulSet\/compute: no headless Service leaves not-ready pods out of DNS/],
  ["kind: readiness follows Postgres and NATS, liveness does not", COMPUTE, "grpc: { port: 7101, service: stratum.liveness }", "grpc: { port: 7101 }", /livenessProbe asks for health service "", which follows Postgres and NATS/],
  ["kind: readiness follows Postgres and NATS, liveness does not", COMPUTE, "            grpc: { port: 7101 }\n            periodSeconds: 5", "            grpc: { port: 7101, service: stratum.liveness }\n            periodSeconds: 5", /readinessProbe asks for health service "stratum\.liveness", not ""/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "  replicas: 3\n", "  replicas: 1\n", /replicas 1; a JetStream cluster needs 3/],
  ["kind: streams replicated on every NATS server", COMPUTE, '{ name: STRATUM_NATS_REPLICAS, value: "3" }', '{ name: STRATUM_NATS_REPLICAS, value: "1" }', /STRATUM_NATS_REPLICAS 1, but NATS runs 3 servers/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "  replicas: 3\n", "  replicas: 1\n", /route nats:\/\/nats-1\.nats-headless:6222 is not a pod of this StatefulSet/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, ",nats://nats-2.nats-headless:6222", "", /routes do not name nats-2 \(nats-2\.nats-headless:6222\)/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "nats://nats-1.nats-headless:6222", "nats://nats-1.nats:6222", /routes do not name nats-1/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "            - --jetstream\n", "", /StatefulSet\/nats: nats-server runs without --jetstream/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "            - --cluster\n            - nats://0.0.0.0:6222\n", "", /no --cluster listen URL/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "            - --cluster_name\n            - stratum\n", "", /no --cluster_name/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "- $(POD_NAME)", "- stratum-nats", /server_name stratum-nats is the same on every pod/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", /podManagementPolicy OrderedReady: .* use Parallel/],
  ["kind: NATS is a 3-node JetStream cluster", NATS, "  publishNotReadyAddresses: true\n", "", /Service\/nats-headless: routes only resolve ready pods/],
  ["kind: PodDisruptionBudgets take one pod at a time", NATS, "  maxUnavailable: 1 # two of three", "  maxUnavailable: 2 # two of three", /PodDisruptionBudget\/nats: maxUnavailable 2 must be 1/],
  ["kind: PodDisruptionBudgets take one pod at a time", COMPUTE, "    matchLabels: { app.kubernetes.io/name: compute }\n---", "    matchLabels: { app.kubernetes.io/name: compte }\n---", /StatefulSet\/compute: no PodDisruptionBudget selects its pods/],
  ["kind: PodDisruptionBudgets take one pod at a time", COMPUTE, "  maxUnavailable: 1 # drains", "  minAvailable: 1 # drains", /PodDisruptionBudget\/compute: maxUnavailable \(unset\) must be 1/],
  ["kind: PodDisruptionBudgets take one pod at a time", COMPUTE, "  replicas: 2\n", "  replicas: 1\n", /StatefulSet\/compute: replicas 1: with one/],
  ["kind: NATS JetStream on a volume", NATS, "- { name: data, mountPath: /data }", "- { name: data, mountPath: /var/data }", /store dir \/data is not on a volumeClaimTemplate/],
  ["all: every service deployed in compose and kind", LONGJOB, "{ name: SERVICE, value: longjob }", "{ name: SERVICE, value: compute }", /manifests: no workload runs longjob \(SERVICE=longjob\)/],
  ["all: every service deployed in compose and kind", COMPOSE, "      SERVICE: longjob\n", "      SERVICE: compute\n", /compose\.yaml: no service runs longjob \(SERVICE=longjob\)/],
  ["kind: Stratum containers", LONGJOB, "terminationGracePeriodSeconds: 150", "terminationGracePeriodSeconds: 135", /terminationGracePeriodSeconds 135 <= preStop 5 s \+ the runtime's 135 s drain of longjob/],
  ["compose: Stratum services' environment", COMPOSE, "stop_grace_period: 150s", "stop_grace_period: 120s", /longjob-0: stop_grace_period 120s must exceed the runtime's 135 s drain of longjob/],
  ["kind: Stratum containers", LONGJOB, '            - { name: STRATUM_METRICS_PORT, value: "7451" }\n', "", /StatefulSet\/longjob container longjob: STRATUM_METRICS_PORT is not set/],
  // network: its grace is read from its own module (SERVICE_MODULES), and it is deployed in both places.
  ["kind: Stratum containers", NETWORK, "terminationGracePeriodSeconds: 150", "terminationGracePeriodSeconds: 135", /terminationGracePeriodSeconds 135 <= preStop 5 s \+ the runtime's 135 s drain of network/],
  ["all: every service deployed in compose and kind", NETWORK, "{ name: SERVICE, value: network }", "{ name: SERVICE, value: storage }", /manifests: no workload runs network \(SERVICE=network\)/],
  ["all: every service deployed in compose and kind", COMPOSE, "      SERVICE: network\n", "      SERVICE: storage\n", /compose\.yaml: no service runs network \(SERVICE=network\)/],
  ["compose: Stratum services' environment", COMPOSE, '"127.0.0.1:7652:7651"', '"127.0.0.1:7652:7652"', /network-1: STRATUM_METRICS_PORT=7651 is not among the container's ports/],
  // broker: its grace from its module, deployed in both places, its auth file mounted from a Secret (kind) and a secret (compose).
  ["kind: Stratum containers", BROKER, "terminationGracePeriodSeconds: 150", "terminationGracePeriodSeconds: 120", /terminationGracePeriodSeconds 120 <= preStop 5 s \+ the runtime's 135 s drain of broker/],
  ["compose: Stratum services' environment", COMPOSE, "    hostname: broker-1\n    stop_grace_period: 150s", "    hostname: broker-1\n    stop_grace_period: 100s", /broker-1: stop_grace_period 100s must exceed the runtime's 135 s drain of broker/],
  ["all: every service deployed in compose and kind", BROKER, "{ name: SERVICE, value: broker }", "{ name: SERVICE, value: storage }", /manifests: no workload runs broker \(SERVICE=broker\)/],
  ["all: every service deployed in compose and kind", COMPOSE, "      SERVICE: broker\n", "      SERVICE: storage\n", /compose\.yaml: no service runs broker \(SERVICE=broker\)/],
  ["kind: Stratum containers", BROKER, "{ name: STRATUM_BROKER_AUTH_FILE,", "{ name: STRATUM_BROKER_AUTH_FILES,", /sets STRATUM_BROKER_AUTH_FILES, which broker never reads/],
  ["kind: Service ports resolve", BROKER, "            - { name: osb, containerPort: 7701 }\n", "", /Service\/broker: port osb targets osb, which broker\.yaml StatefulSet\/broker does not expose/],
  ["all: files named by STRATUM_*_FILE are mounted", BROKER, "- { name: auth, mountPath: /etc/stratum/broker, readOnly: true }", "- { name: auth, mountPath: /etc/broker, readOnly: true }", /STRATUM_BROKER_AUTH_FILE=\/etc\/stratum\/broker\/auth\.json, but no volumeMount holds it/],
  ["all: files named by STRATUM_*_FILE are mounted", BROKER, "  auth.json: |", "  tokens.json: |", /mounted from Secret broker-auth, which has no key auth\.json/],
  ["all: files named by STRATUM_*_FILE are mounted", BROKER, "secretName: broker-auth", "secretName: broker-tokens", /mounted from Secret broker-tokens, which does not exist/],
  ["all: files named by STRATUM_*_FILE are mounted", BROKER, '"tenant": "dev" }],\n      "platforms"', '"tenant": "dev" },\n      "platforms"', /Secret broker-auth key auth\.json is not valid JSON/],
  ["all: files named by STRATUM_*_FILE are mounted", COMPOSE, "    secrets: [broker-auth]\n    ports: [\"127.0.0.1:7502", "    ports: [\"127.0.0.1:7502", /broker-1: STRATUM_BROKER_AUTH_FILE=\/run\/secrets\/broker-auth, but none of its secrets is mounted there/],
  ["all: files named by STRATUM_*_FILE are mounted", COMPOSE, "file: ./broker-auth.dev.json", "file: ./broker-auth.json", /secret broker-auth is the file deploy\/docker\/broker-auth\.json, which does not exist/],
  ["all: files named by STRATUM_*_FILE are mounted", BROKER_AUTH, '"tenant": "dev" }],', '"tenant": "dev" },', /secret broker-auth \(deploy\/docker\/broker-auth\.dev\.json\) is not valid JSON/],
  ["kind: Stratum containers", COMPUTE, '{ name: STRATUM_METRICS_PORT, value: "7151" }', '{ name: STRATUM_METRICS_PORT, value: "0" }', /STRATUM_METRICS_PORT=0 must be a fixed port/],
  ["kind: Stratum containers", COMPUTE, "            - { name: metrics, containerPort: 7151 }\n", "", /STRATUM_METRICS_PORT=7151 is not among the container's ports \[7101\]/],
  ["kind: Stratum containers", LONGJOB, 'prometheus.io/port: "7451"', 'prometheus.io/port: "7401"', /annotation prometheus\.io\/port 7401 is not STRATUM_METRICS_PORT 7451/],
  ["compose: Stratum services' environment", COMPOSE, 'STRATUM_METRICS_PORT: "7451"', 'STRATUM_METRICS_PORT: "7401"', /longjob-0: STRATUM_METRICS_PORT=7401 is the gRPC port too/],
  ["compose: Stratum services' environment", COMPOSE, '"127.0.0.1:7452:7451"', '"127.0.0.1:7452:7452"', /longjob-1: STRATUM_METRICS_PORT=7451 is not among the container's ports/],
  ["all: service entry points exist", KIND_README, "## What is where", "Run `node --import tsx services/billing/src/main.ts` by hand.\n\n## What is where", /refers to services\/billing\/src\/main\.ts/],
];

describe("each check fails when its invariant is broken", () => {
  it.each(BREAKAGES)("%s: %s %j → %j", (check, file, from, to, expected) => {
    const text = sources[file];
    // A stale breakage (the text moved on) would pass vacuously: insist it applies.
    expect(text?.includes(from), `${file} no longer contains ${JSON.stringify(from)}`).toBe(true);
    const broken = loadDeploy({ ...sources, [file]: text!.replaceAll(from, to) }, repo);
    expect(CHECKS[check](broken)).toContainEqual(expect.stringMatching(expected));
  });

  it("covers every check", () => {
    const covered = new Set(BREAKAGES.map(([check]) => check));
    expect((Object.keys(CHECKS) as CheckName[]).filter((c) => !covered.has(c))).toEqual([]);
  });

  it("reports nothing on the real files", () => {
    expect(runChecks(deploy)).toEqual([]);
  });
});

/** The sources without longjob's kind manifest (and its kustomization entry) and compose services. */
function withoutLongjob(): Record<string, string> {
  const { [LONGJOB]: _dropped, ...rest } = sources;
  const compose = sources[COMPOSE]!;
  const start = compose.indexOf("  longjob-0:\n");
  // Up to the blank line that ends longjob-1: the next service follows it.
  const end = compose.indexOf("\n\n", compose.indexOf("  longjob-1:\n")) + 2;
  expect(start, "compose.yaml no longer has longjob-0 and longjob-1").toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  return {
    ...rest,
    [KUSTOMIZATION]: sources[KUSTOMIZATION]!.replace("  - longjob.yaml\n", ""),
    [COMPOSE]: compose.slice(0, start) + compose.slice(end),
  };
}

describe("every service of the repository is deployed", () => {
  it("asks for the runtime services of services/*/src/main.ts only: agent-sim is a stand-in", () => {
    expect(repo.services).toEqual(expect.arrayContaining(["agent-sim", "compute", "longjob", "storage", "network", "broker"]));
    const { [AGENT_SIM]: _sim, ...rest } = sources;
    const compose = sources[COMPOSE]!;
    const [start, end] = [compose.indexOf("  agent-sim:\n"), compose.indexOf("\nvolumes:\n")];
    expect(start, "compose.yaml no longer has agent-sim before volumes").toBeGreaterThan(0);
    const noSim = loadDeploy({ ...rest, [COMPOSE]: compose.slice(0, start) + compose.slice(end) }, repo);
    expect(noSim.manifests.some((m) => m.file === "agent-sim.yaml")).toBe(false);
    expect(CHECKS["all: every service deployed in compose and kind"](noSim)).toEqual([]);
  });

  it("fails when a present service has neither its manifest nor its compose entry", () => {
    const broken = loadDeploy(withoutLongjob(), repo);
    // The rest is consistent without it: only the coverage check notices.
    expect(runChecks(broken)).toEqual([
      { check: "all: every service deployed in compose and kind", problem: expect.stringMatching(/manifests: no workload runs longjob/) },
      { check: "all: every service deployed in compose and kind", problem: expect.stringMatching(/compose\.yaml: no service runs longjob/) },
    ]);
  });

  it("fails for a new runtime service without manifests, and for one deployed with no shutdown figure", () => {
    const billing = 'import { runMain } from "@stratum/runtime";\nimport { billingModule } from "./module";\nrunMain(billingModule());\n';
    const withBilling = { ...repo, services: [...repo.services, "billing"].sort(), serviceMain: (n: string) => (n === "billing" ? billing : repo.serviceMain(n)) };
    expect(runChecks(loadDeploy(sources, withBilling))).toEqual([
      { check: "all: every service deployed in compose and kind", problem: expect.stringMatching(/manifests: no workload runs billing/) },
      { check: "all: every service deployed in compose and kind", problem: expect.stringMatching(/compose\.yaml: no service runs billing/) },
    ]);
    // Deployed (longjob.yaml copied as billing.yaml), its grace period still cannot be checked.
    const copied = loadDeploy({ ...sources, [`${MANIFESTS}/billing.yaml`]: sources[LONGJOB]!.replaceAll("longjob", "billing"), [KUSTOMIZATION]: sources[KUSTOMIZATION]!.replace("  - longjob.yaml\n", "  - longjob.yaml\n  - billing.yaml\n") }, withBilling);
    expect(CHECKS["kind: Stratum containers"](copied)).toEqual([expect.stringMatching(/billing\.yaml StatefulSet\/billing container billing: no shutdown budget known for billing/)]);
  });
});
