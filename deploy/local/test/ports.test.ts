import { describe, expect, it } from "vitest";
import { parseDevstackArgs } from "../src/args";
import { osbPort, portClash, replicaPorts, SERVICE_PORT_SLOT } from "../src/ports";
import { SERVICE_ORDER } from "../src/services-present";

const SERVICES = [...SERVICE_ORDER];

describe("devstack ports", () => {
  it("keeps the ports operators and stratumctl know, and puts network clear of agent-sim", () => {
    expect(replicaPorts("compute", 0, 7100)).toEqual({ grpc: 7101, metrics: 7151 });
    expect(replicaPorts("storage", 1, 7100)).toEqual({ grpc: 7302, metrics: 7352 });
    expect(replicaPorts("longjob", 0, 7100)).toEqual({ grpc: 7401, metrics: 7451 });
    expect(replicaPorts("network", 0, 7100)).toEqual({ grpc: 7601, metrics: 7651 });
    expect(replicaPorts("network", 3, 0)).toEqual({ grpc: 0, metrics: 0 });
    expect(replicaPorts("broker", 1, 7100)).toEqual({ grpc: 7502, metrics: 7552 });
    expect([osbPort(0, 7100), osbPort(1, 7100), osbPort(2, 0)]).toEqual([7701, 7702, 0]);
  });

  it("gives every service of SERVICE_ORDER its own slot", () => {
    const slots = SERVICES.map((s) => SERVICE_PORT_SLOT[s]);
    expect(slots.every((k) => k !== undefined)).toBe(true);
    expect(new Set(slots).size).toBe(slots.length);
    expect(() => replicaPorts("billing", 0, 7100)).toThrow(/no port slot for service billing/);
  });

  it("finds no clash on the defaults, nor with 16 replicas and 99 hosts", () => {
    const d = parseDevstackArgs([]) as Exclude<ReturnType<typeof parseDevstackArgs>, "help">;
    expect(portClash({ services: SERVICES, replicas: d.replicas, basePort: d.basePort, agentBasePort: d.agentBasePort, hosts: d.hosts })).toBeUndefined();
    expect(portClash({ services: SERVICES, replicas: 16, basePort: 7100, agentBasePort: 7200, hosts: 99 })).toBeUndefined();
  });

  it("names the two children that would share a port", () => {
    // 102 hosts run agent-sim up to 7301, storage-0's port.
    expect(portClash({ services: SERVICES, replicas: 1, basePort: 7100, agentBasePort: 7200, hosts: 102 })).toBe(
      "storage-0 (grpc) and agent-sim host 101 would both listen on port 7301: change --base-port, --agent-port or --hosts",
    );
    // A --base-port that puts network-0 on 7201, the second host's port (what slot 1 did on the defaults).
    expect(portClash({ services: ["network"], replicas: 1, basePort: 6700, agentBasePort: 7200, hosts: 3 })).toBe(
      "network-0 (grpc) and agent-sim host 1 would both listen on port 7201: change --base-port, --agent-port or --hosts",
    );
    // A --base-port that puts broker-0's OSB port on the first host's.
    expect(portClash({ services: ["broker"], replicas: 1, basePort: 6599, agentBasePort: 7200, hosts: 3 })).toBe(
      "broker-0 (osb) and agent-sim host 0 would both listen on port 7200: change --base-port, --agent-port or --hosts",
    );
    expect(portClash({ services: SERVICES, replicas: 2, basePort: 0, agentBasePort: 0, hosts: 500 })).toBeUndefined();
  });
});
