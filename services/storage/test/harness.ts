import { closeClient, createClient, type Client } from "@stratum/rpc";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import type { EnvSpec } from "@stratum/runtime";
import { startTestService, type TestService, type TestServiceOptions } from "@stratum/runtime/testing";
import { storageModule } from "../src/module";
import type { tables } from "../src/store/schema";

export const GIB = 1024n ** 3n;

export interface StorageStack {
  service: TestService<typeof tables>;
  /** A client of replica 0 (no routing of its own: the kit forwards to the owner). */
  storage: Client<typeof StorageService>;
  /** A client of replica `i`. */
  at(i: number): Client<typeof StorageService>;
  stop(): Promise<void>;
}

/** Real storage replicas (in-process) on a fresh database and their own NATS namespace. */
export async function startStorage(options: TestServiceOptions<EnvSpec> = {}): Promise<StorageStack> {
  const service = await startTestService(storageModule(), { replicas: 2, ...options });
  const clients = new Map<number, Client<typeof StorageService>>();
  const at = (i: number) => {
    let c = clients.get(i);
    if (!c) clients.set(i, (c = createClient(StorageService, service.replicas[i]!.address)));
    return c;
  };
  return {
    service,
    storage: at(0),
    at,
    async stop() {
      for (const c of clients.values()) closeClient(c);
      await service.stop();
    },
  };
}
