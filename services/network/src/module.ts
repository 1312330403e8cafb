import { fileURLToPath } from "node:url";
import { Counter } from "prom-client";
import { createAgentClient, HostDirectory, type AgentClientOptions } from "@stratum/agent-client";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { ServiceModule } from "@stratum/runtime";
import { EipAgents } from "./clients/eip-agents";
import { VmDirectory } from "./clients/vms";
import { NETWORK_ENV } from "./config";
import { EipAudit } from "./domain/eip-audit";
import { EipCollector } from "./domain/eip-collector";
import { EipManager } from "./domain/eip-manager";
import { EipSyncer } from "./domain/eip-sync";
import { NetworkManager } from "./domain/network-manager";
import { eipApi } from "./server/eip-handlers";
import { networkApi } from "./server/network-handlers";
import { EipStore } from "./store/eip-store";
import { IpStore } from "./store/ip-store";
import { NetworkStore } from "./store/network-store";
import { tables } from "./store/schema";

/**
 * The network service: L3 networks, IP ranges, the addresses of compute's NICs and of VIPs, and
 * elastic IPs. An EIP's mutations run on the owner of its UUID (network's ring), in its queue;
 * its NAT rule is applied on the agent of the host where its VM runs, as compute says (network
 * asks compute, it keeps no copy), and its status says what that agent has. `agent` tunes the
 * agent client (tests shorten deadlines).
 */
export function networkModule(agent: AgentClientOptions = {}): ServiceModule<typeof tables, typeof NETWORK_ENV> {
  return {
    name: "network",
    env: NETWORK_ENV,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const actor = ctx.ownership.incarnation;
      const [networks, ips, eips] = [new NetworkStore(ctx.db, actor), new IpStore(ctx.db, actor), new EipStore(ctx.db, actor)];
      const agents = new EipAgents(createAgentClient({ logger: ctx.log, onCall: ctx.metrics.onAgentCall, ...agent }));
      const hosts = new HostDirectory(ctx.peers("compute").for(HostService));
      const vms = new VmDirectory(ctx.peers("compute").for(VmService));
      const unmatched = new Counter({
        name: "stratum_eip_attach_rollback_unmatched_total",
        help: "Failed EIP attaches whose conditional rollback matched no row: the binding changed while the apply ran (seed 000).",
        registers: [ctx.metrics.registry],
      });
      const syncer = new EipSyncer({
        store: eips,
        vms,
        hosts,
        agents,
        queue: ctx.queue,
        log: ctx.log,
        releaseVip: (tx, vipUuid) => ips.release([vipUuid], tx),
        onRollbackUnmatched: () => unmatched.inc(),
      });
      const collector = new EipCollector({ store: eips, syncer, bus: ctx.bus, owns: ctx.ownership.owns, log: ctx.log, intervalMs: ctx.settings.STRATUM_EIP_COLLECT_INTERVAL_MS });
      const eipManager = new EipManager({ eips, ips, networks, syncer, collector, queue: ctx.queue, log: ctx.log });
      const networkManager = new NetworkManager({ networks, ips, eips, collector, queue: ctx.queue });
      const audit = new EipAudit({ store: eips, vms, hosts, agents, collector, log: ctx.log });
      return {
        services: [networkApi(networkManager, eipManager, networks), eipApi(eipManager, audit, eips)],
        start() {
          collector.start();
          // What a replica that died left due is found by the first scan, not only after an interval.
          void collector.scan();
          ctx.ownership.onChange(() => void collector.scan());
        },
        async stop() {
          collector.stop();
          await agents.close();
        },
      };
    },
  };
}
