import { fileURLToPath } from "node:url";
import { BrokerService } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobControlService, LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { JobExecutor, LongJobClient } from "@stratum/jobs";
import type { ServiceModule } from "@stratum/runtime";
import { ComputeClient } from "./clients/compute";
import { NetworkClient } from "./clients/network";
import { BROKER_ENV } from "./config";
import { BindingManager } from "./domain/binding-manager";
import { Catalog } from "./domain/catalog";
import { instanceJobs } from "./domain/instance-jobs";
import { InstanceManager } from "./domain/instance-manager";
import { OperationSettler } from "./domain/operation-settler";
import { Tenancy } from "./domain/tenancy";
import { OsbServer } from "./osb/osb-server";
import { brokerApi } from "./server/broker-handlers";
import { BindingStore } from "./store/binding-store";
import { InstanceStore } from "./store/instance-store";
import { tables } from "./store/schema";

export interface BrokerModuleOptions {
  /** Told where this replica's OSB API listens, once it does (tests and the devstack print it). */
  onOsbListening?(url: string, replicaId: string): void;
}

/**
 * The service broker: a catalog, instances provisioned through long jobs (broker.provision /
 * update / deprovision, run on the owner of each instance) that create compute VMs and network
 * elastic IPs, bindings, and the OSB API facade beside the gRPC one. Its callers are tenants
 * (`Tenancy`): the kit's auth hook guards BrokerService; peers' calls (longjob's RunJob) pass.
 */
export function brokerModule(options: BrokerModuleOptions = {}): ServiceModule<typeof tables, typeof BROKER_ENV> {
  return {
    name: "broker",
    env: BROKER_ENV,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const s = ctx.settings;
      const catalog = Catalog.load(s.STRATUM_BROKER_CATALOG_FILE);
      const tenancy = Tenancy.load(s.STRATUM_BROKER_AUTH_FILE);
      if (tenancy.empty) ctx.log.warn("the broker knows no tokens or platforms: every call is refused (set STRATUM_BROKER_AUTH_FILE)");
      const [instanceStore, bindingStore] = [new InstanceStore(ctx.db), new BindingStore(ctx.db)];
      const jobs = new LongJobClient(ctx.peers("longjob").for(LongJobService));
      const instances = new InstanceManager({ instances: instanceStore, bindings: bindingStore, catalog, jobs, log: ctx.log });
      const bindings = new BindingManager(bindingStore, instances, catalog);
      const executor = new JobExecutor({
        service: "broker",
        types: instanceJobs({
          instances: instanceStore,
          bindings: bindingStore,
          catalog,
          compute: new ComputeClient(ctx.peers("compute").for(VmService)),
          network: new NetworkClient(ctx.peers("network").for(NetworkService), ctx.peers("network").for(EipService)),
          privateNetwork: s.STRATUM_BROKER_NETWORK,
          publicNetwork: s.STRATUM_BROKER_PUBLIC_NETWORK,
          log: ctx.log,
        }),
        bus: ctx.bus,
        queue: ctx.queue,
        log: ctx.log,
        incarnation: ctx.ownership.incarnation,
        longjob: ctx.peers("longjob").for(JobControlService),
      });
      const settler = new OperationSettler({ events: ctx.events, instances: instanceStore, manager: instances, owns: ctx.ownership.owns, log: ctx.log, sweepIntervalMs: s.STRATUM_BROKER_SWEEP_INTERVAL_MS });
      const osb = new OsbServer({ catalog, instances, bindings, tenancy, log: ctx.log });
      return {
        services: [brokerApi(catalog, instances, bindings, instanceStore), executor.api],
        auth: tenancy.interceptor([BrokerService]),
        async start() {
          executor.start();
          await settler.start();
          const url = await osb.listen(ctx.config.host, s.STRATUM_BROKER_OSB_PORT);
          ctx.log.info("osb listening", { url });
          options.onOsbListening?.(url, ctx.config.replicaId);
        },
        async drain() {
          // Off the ring: platforms go to the other replicas (their load balancer sees refusals).
          await osb.close();
          await executor.drain();
        },
        async stop() {
          executor.stop();
          await settler.stop();
        },
      };
    },
  };
}
