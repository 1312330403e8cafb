import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { closeClient, createClient } from "@stratum/rpc";
// Relative: @stratum/runtime is no dependency of the launcher itself, only of this test.
import { startTestService, type TestService } from "../../../packages/runtime/src/testing";
import { networkModule } from "../../../services/network/src/module";
import type { tables } from "../../../services/network/src/store/schema";
import { createDefaultNetworks, DEFAULT_NETWORKS } from "../src/default-networks";

/**
 * The devstack's default networks on a real network replica (real Postgres and NATS): created
 * once, and the same two networks and ranges again on every later start with the data kept —
 * also once the request records the first start left have expired.
 */
let network: TestService<typeof tables>;

beforeAll(async () => {
  network = await startTestService(networkModule(), { replicas: 1 });
});
afterAll(() => network?.stop());

describe("the devstack's default networks", () => {
  it("are a private network with DNS and a public VIP pool, each with its range", async () => {
    const created = await createDefaultNetworks(network.replicas[0]!.address);
    expect(created.private.network).toMatchObject({ name: "devstack-private", cidr: "10.0.0.0/16", gateway: "10.0.0.1", dns: ["10.0.0.2"], public: false });
    expect(created.private.range).toMatchObject({ l3NetworkUuid: created.private.network.uuid, startIp: "10.0.0.10", endIp: "10.0.255.250" });
    expect(created.public.network).toMatchObject({ name: "devstack-public", cidr: "172.20.0.0/16", public: true });
    expect(created.public.range).toMatchObject({ l3NetworkUuid: created.public.network.uuid, startIp: "172.20.0.10", endIp: "172.20.255.250" });
  });

  it("are the same networks and ranges on a restart with the data kept, also after the request records expired", async () => {
    const first = await createDefaultNetworks(network.replicas[0]!.address);
    expect(await createDefaultNetworks(network.replicas[0]!.address)).toEqual(first);
    // What the kit's sweep does to outcomes older than a day: the domain answers from the rows.
    const sql = postgres(network.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      await sql`DELETE FROM network.requests`;
    } finally {
      await sql.end();
    }
    const again = await createDefaultNetworks(network.replicas[0]!.address);
    expect(again.private.network.uuid).toBe(first.private.network.uuid);
    expect(again.private.range.uuid).toBe(first.private.range.uuid);
    expect(again.public.network.uuid).toBe(first.public.network.uuid);
    expect(again.public.range.uuid).toBe(first.public.range.uuid);
    const client = createClient(NetworkService, network.replicas[0]!.address);
    try {
      const { l3Networks } = await client.listL3Networks({});
      expect(l3Networks.map((n) => n.name)).toEqual([DEFAULT_NETWORKS.private.network.name, DEFAULT_NETWORKS.public.network.name]);
      for (const n of l3Networks) expect((await client.listIpRanges({ l3NetworkUuid: n.uuid })).ipRanges).toHaveLength(1);
    } finally {
      closeClient(client);
    }
  });
});
