import { afterEach, describe, expect, it } from "vitest";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code, createServer, implement, StratumError, type ServiceImpl, type StratumServer } from "@stratum/rpc";
import { openApi } from "./api";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A compute whose CreateVm fails its first attempt as a replica that lost the owner would. */
async function flakyCompute(): Promise<{ server: StratumServer; seen: string[] }> {
  const seen: string[] = [];
  const unimplemented = (): never => {
    throw new StratumError(Code.UNIMPLEMENTED, "not in this test");
  };
  const base = Object.fromEntries(VmService.methods.map((m) => [m.localName, unimplemented])) as unknown as ServiceImpl<typeof VmService>;
  const impl: ServiceImpl<typeof VmService> = {
    ...base,
    createVm(req) {
      seen.push(req.clientRequestId);
      if (seen.length === 1) throw new StratumError(Code.UNAVAILABLE, "owner replica b is unreachable", { reason: "OWNER_UNREACHABLE", resources: { ownerReplicaId: "b" } });
      return { vm: { uuid: "11111111-1111-4111-8111-111111111111", name: req.name, clientRequestId: req.clientRequestId } };
    },
  };
  const server = await createServer({ host: "127.0.0.1", port: 0, services: [implement(VmService, impl)] });
  cleanup.push(() => server.shutdown(0));
  return { server, seen };
}

describe("the CLI's api", () => {
  it("retries a mutating call on UNAVAILABLE with one client_request_id it drew for all attempts", async () => {
    const { server, seen } = await flakyCompute();
    const { api, close } = openApi({ endpointFor: (service) => ({ service, target: server.address, display: server.address, source: "--endpoint" }), timeoutMs: 10_000, requestId: "req-1" });
    cleanup.push(close);
    const res = await api.vms.createVm({ name: "web-1", cpu: 1, memoryBytes: 1n << 30n });
    expect(seen).toHaveLength(2);
    expect(seen[0]).not.toBe("");
    expect(seen[1]).toBe(seen[0]);
    expect(res.vm?.clientRequestId).toBe(seen[0]);
  });

  it("keeps the user's --request-id on every attempt", async () => {
    const { server, seen } = await flakyCompute();
    const { api, close } = openApi({ endpointFor: (service) => ({ service, target: server.address, display: server.address, source: "--endpoint" }), timeoutMs: 10_000, requestId: "req-2" });
    cleanup.push(close);
    await api.vms.createVm({ name: "web-1", cpu: 1, memoryBytes: 1n << 30n, clientRequestId: "deploy-42" });
    expect(seen).toEqual(["deploy-42", "deploy-42"]);
  });
});
