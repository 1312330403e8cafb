/**
 * Which fixed ports the devstack gives each service. A service's slot k puts replica i's gRPC on
 * basePort + 100·k + i + 1 and its /metrics 50 above; slot 1 (7200–7299 on the defaults) is the
 * agent simulator's (control on agentBasePort − 1, host i on agentBasePort + i). The slots are
 * not the start order: they are the ports operators, deploy/ and stratumctl's defaults know
 * (compute-0 on 7101, storage-0 on 7301, longjob-0 on 7401, broker-0 on 7501 with its OSB API on
 * 7701), so a service added later gets a free
 * slot instead of moving the others' ports — network, added after storage, is slot 5 (7601),
 * since slot 1 would put network-0 on 7201, agent-sim's second host.
 */
export const SERVICE_PORT_SLOT: Readonly<Record<string, number>> = {
  compute: 0,
  storage: 2,
  longjob: 3,
  broker: 4,
  network: 5,
};

/**
 * The slot of the broker's Open Service Broker API (HTTP, beside its gRPC): broker-i's OSB on
 * basePort + 100·6 + i + 1 (7701 on the defaults), a slot of its own so the gRPC and metrics
 * layout of every slot stays the same.
 */
export const OSB_PORT_SLOT = 6;

/** Ports between one slot and the next: replicas 0–48 fit below the metrics ports. */
const SLOT_WIDTH = 100;
const METRICS_OFFSET = 50;

/** Replica `replica` of `service`'s gRPC and metrics ports; 0 and 0 (free ports) when basePort is 0. */
export function replicaPorts(service: string, replica: number, basePort: number): { grpc: number; metrics: number } {
  if (!basePort) return { grpc: 0, metrics: 0 };
  const slot = SERVICE_PORT_SLOT[service];
  if (slot === undefined) throw new Error(`the devstack has no port slot for service ${service}: add it to SERVICE_PORT_SLOT in deploy/local/src/ports.ts`);
  const grpc = basePort + SLOT_WIDTH * slot + replica + 1;
  return { grpc, metrics: grpc + METRICS_OFFSET };
}

/** Broker replica `replica`'s OSB port; 0 (a free port) when basePort is 0. */
export function osbPort(replica: number, basePort: number): number {
  return basePort ? basePort + SLOT_WIDTH * OSB_PORT_SLOT + replica + 1 : 0;
}

export interface PortPlan {
  services: readonly string[];
  replicas: number;
  basePort: number;
  /** 0: agent-sim on free ports. */
  agentBasePort: number;
  hosts: number;
}

/**
 * The first fixed port two children of the devstack would both bind, described so the user knows
 * which flag to change; undefined when there is none. Checked before anything starts: a clash
 * otherwise shows up as one child's EADDRINUSE after the others are already up.
 */
export function portClash(plan: PortPlan): string | undefined {
  const owners = new Map<number, string>();
  const claim = (port: number, who: string): string | undefined => {
    if (!port) return undefined;
    const other = owners.get(port);
    if (other !== undefined) return `${who} and ${other} would both listen on port ${port}: change --base-port, --agent-port or --hosts`;
    owners.set(port, who);
    return undefined;
  };
  if (plan.agentBasePort) {
    const clash = claim(plan.agentBasePort - 1, "agent-sim (control)") ?? Array.from({ length: plan.hosts }, (_, i) => claim(plan.agentBasePort + i, `agent-sim host ${i}`)).find(Boolean);
    if (clash) return clash;
  }
  for (const service of plan.services) {
    for (let i = 0; i < plan.replicas; i++) {
      const { grpc, metrics } = replicaPorts(service, i, plan.basePort);
      const clash =
        claim(grpc, `${service}-${i} (grpc)`) ?? claim(metrics, `${service}-${i} (metrics)`) ?? (service === "broker" ? claim(osbPort(i, plan.basePort), `${service}-${i} (osb)`) : undefined);
      if (clash) return clash;
    }
  }
  return undefined;
}
