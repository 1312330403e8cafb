import { createFileRegistry, fromBinary, getOption } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { field as fieldRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import * as reflection from "@stratum/proto/grpc/reflection/v1/reflection_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, createLogger, createServer, implement, type ServiceImpl, type StratumServer } from "@stratum/rpc";
import { afterEach, describe, expect, it } from "vitest";

let server: StratumServer | undefined;
afterEach(async () => {
  await server?.shutdown(100);
  server = undefined;
});

describe("limits declared in the proto", () => {
  it("are what a client sees through server reflection", async () => {
    const unused = () => {
      throw new Error("not called");
    };
    const impl = Object.fromEntries(VmService.methods.map((m) => [m.localName, unused])) as unknown as ServiceImpl<typeof VmService>;
    server = await createServer({ host: "127.0.0.1", logger: createLogger({}, { level: "error", sink: () => {} }), services: [implement(VmService, impl)] });
    const client = createClient(reflection.ServerReflection, server.address);
    const files = [];
    try {
      async function* ask() {
        yield { messageRequest: { case: "fileContainingSymbol" as const, value: "stratum.compute.v1.VmService" } };
      }
      for await (const res of client.serverReflectionInfo(ask(), { timeoutMs: 5_000 })) {
        expect(res.messageResponse.case).toBe("fileDescriptorResponse");
        for (const bytes of (res.messageResponse.value as reflection.FileDescriptorResponse).fileDescriptorProto) files.push(fromBinary(FileDescriptorProtoSchema, bytes));
      }
    } finally {
      closeClient(client);
    }
    expect(files.map((f) => f.name)).toContain("buf/validate/validate.proto");
    // The client rebuilds the schema from what reflection sent, as grpcurl or buf curl would.
    const byName = new Map(files.map((f) => [f.name, f]));
    const registry = createFileRegistry(byName.get("stratum/compute/v1/vm.proto")!, (name) => byName.get(name));
    const request = registry.getMessage("stratum.compute.v1.CreateVmRequest")!;
    const cpu = getOption(request.field.cpu!, fieldRules);
    expect(cpu.type.case).toBe("uint32");
    expect(cpu.type.value).toMatchObject({ lessThan: { case: "lte", value: 512 }, greaterThan: { case: "gte", value: 1 } });
    const uuid = getOption(request.field.uuid!, fieldRules);
    expect(uuid.type.case === "string" && uuid.type.value.pattern).toBe("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  });
});
