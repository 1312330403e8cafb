import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, StratumError, createLogger } from "@stratum/core";
import { ConcatRequestSchema, ConcatService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { VmSchema, VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, createServer, implement, type HandlerContext, type ServerCall, type ServiceImpl, type StratumServer } from "@stratum/rpc";
import { afterEach, describe, expect, it } from "vitest";
import { validationInterceptor } from "./interceptor";

const UUID = "3f1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f";
const quiet = createLogger({}, { level: "error", sink: () => {} });

/** A VmService whose handlers only record that they ran: what is under test is the check before them. */
function recordingVms(calls: string[]): ServiceImpl<typeof VmService> {
  const vm = (uuid: string): { vm: MessageInitShape<typeof VmSchema> } => ({ vm: { uuid, state: VmState.RUNNING } });
  return {
    createVm: (req) => (calls.push("createVm"), vm(req.uuid)),
    getVm: (req) => (calls.push("getVm"), vm(req.uuid)),
    listVms: () => (calls.push("listVms"), { vms: [] }),
    startVm: (req) => (calls.push("startVm"), vm(req.uuid)),
    stopVm: (req) => (calls.push("stopVm"), vm(req.uuid)),
    rebootVm: (req) => (calls.push("rebootVm"), vm(req.uuid)),
    destroyVm: (req) => (calls.push("destroyVm"), vm(req.uuid)),
    migrateVm: (req) => (calls.push("migrateVm"), { ...vm(req.uuid), jobUuid: UUID }),
    setVmNicIp: (req) => (calls.push("setVmNicIp"), vm(req.uuid)),
    async *watchVm(req) {
      calls.push("watchVm");
      yield vm(req.uuid);
    },
  };
}

let server: StratumServer | undefined;
afterEach(async () => {
  await server?.shutdown(100);
  server = undefined;
});

describe("validationInterceptor", () => {
  it("refuses a request that breaks its proto rules before the handler runs, over a real server", async () => {
    const calls: string[] = [];
    server = await createServer({ host: "127.0.0.1", logger: quiet, services: [implement(VmService, recordingVms(calls))], interceptors: [validationInterceptor()] });
    const client = createClient(VmService, server.address, { retry: false });
    try {
      const err = await client.createVm({ name: "", cpu: 1000, memoryBytes: 1n, hostUuid: "HOST" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StratumError);
      expect((err as StratumError).code).toBe(Code.INVALID_ARGUMENT);
      expect((err as StratumError).violations).toEqual([
        { field: "name", description: "is required" },
        { field: "cpu", description: "must be between 1 and 512" },
        { field: "memory_bytes", description: "must be between 16777216 and 17592186044416" },
        { field: "host_uuid", description: "must be a lowercase UUID" },
      ]);
      expect(calls).toEqual([]);
      const ok = await client.getVm({ uuid: UUID });
      expect(ok.vm?.uuid).toBe(UUID);
      expect(calls).toEqual(["getVm"]);
    } finally {
      closeClient(client);
    }
  });

  it("checks each message of a client stream as the handler reads it", async () => {
    const seen: string[] = [];
    const validate = (_: unknown, m: Message) => ((m as { message?: string }).message === "bad" ? [{ field: "message", description: "is bad" }] : []);
    const step = validationInterceptor(validate)(async (call: ServerCall) => {
      for await (const r of call.request as AsyncIterable<{ message: string }>) seen.push(r.message);
      return {};
    });
    async function* requests() {
      yield create(ConcatRequestSchema, { message: "ok" });
      yield create(ConcatRequestSchema, { message: "bad" });
      yield create(ConcatRequestSchema, { message: "never read" });
    }
    const method = ConcatService.method.concat;
    const err = await Promise.resolve(step({ service: ConcatService, method, request: requests(), ctx: {} as HandlerContext })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as StratumError).violations).toEqual([{ field: "message", description: "is bad" }]);
    expect(seen).toEqual(["ok"]);
  });
});
