/**
 * The parts of Kubernetes and Compose documents the checks read. Everything is optional: these
 * describe untrusted YAML, and a missing field is a finding, not a crash.
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface EnvVar {
  name?: string;
  value?: string | number | boolean;
  valueFrom?: {
    fieldRef?: { fieldPath?: string };
    secretKeyRef?: { name?: string; key?: string };
    configMapKeyRef?: { name?: string; key?: string };
  };
}

export interface Probe {
  grpc?: { port?: number | string; service?: string };
  httpGet?: { path?: string; port?: number | string };
  tcpSocket?: { port?: number | string };
  exec?: { command?: string[] };
  periodSeconds?: number;
  failureThreshold?: number;
}

export interface Container {
  name?: string;
  image?: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: Array<string | number>;
  env?: EnvVar[];
  envFrom?: unknown[];
  ports?: Array<{ name?: string; containerPort?: number }>;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds?: number } } };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: Array<{ name?: string; mountPath?: string; subPath?: string; readOnly?: boolean }>;
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name?: string; secret?: { secretName?: string; items?: Array<{ key?: string; path?: string }>; defaultMode?: number } }>;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
}

export interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  stringData?: Record<string, string>;
  data?: Record<string, string>;
  spec?: {
    // Deployment, StatefulSet, PodDisruptionBudget
    replicas?: number;
    serviceName?: string;
    podManagementPolicy?: string;
    maxUnavailable?: number | string;
    minAvailable?: number | string;
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: { metadata?: ObjectMeta; spec?: PodSpec };
    volumeClaimTemplates?: Array<{ metadata?: ObjectMeta }>;
    // Service
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    ports?: Array<{ name?: string; port?: number; targetPort?: number | string }>;
  };
}

export interface Kustomization {
  namespace?: string;
  resources?: string[];
}

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  hostname?: string;
  environment?: Record<string, string | number | boolean | null> | string[];
  entrypoint?: string | string[];
  command?: string | string[];
  ports?: Array<string | number | { target?: number; published?: number | string }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  stop_grace_period?: string;
  read_only?: boolean;
  tmpfs?: string | string[];
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  secrets?: Array<string | { source?: string; target?: string }>;
}

export interface ComposeFile {
  name?: string;
  services?: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string } | null>;
}
