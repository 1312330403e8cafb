import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileRegistry, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "@stratum/proto/google/rpc/error_details_pb";
import * as v1 from "@stratum/proto/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@stratum/proto/grpc/reflection/v1alpha/reflection_pb";
import { bufBin } from "@stratum/proto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "./client";
import { Code } from "@stratum/core";
import { Harness } from "./echo.fixture";

const h = new Harness();
afterEach(() => h.close());

type Request = MessageInitShape<typeof v1.ServerReflectionRequestSchema>;

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** Sends `requests` on one reflection stream and returns the responses, in order. */
async function reflect(address: string, requests: Request[]): Promise<v1.ServerReflectionResponse[]> {
  const client = h.track(createClient(v1.ServerReflection, address));
  const out: v1.ServerReflectionResponse[] = [];
  for await (const res of client.serverReflectionInfo(iterate(requests), { timeoutMs: 5_000 })) out.push(res);
  return out;
}

function files(res: v1.ServerReflectionResponse | undefined) {
  expect(res?.messageResponse.case).toBe("fileDescriptorResponse");
  const value = res?.messageResponse.value as v1.FileDescriptorResponse;
  return value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

const EXPECTED_SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "stratum.echo.v1.ConcatService",
  "stratum.echo.v1.EchoService",
];

describe("server reflection", () => {
  it("lists every service, including health and reflection", async () => {
    const server = await h.server();
    const [res] = await reflect(server.address, [{ messageRequest: { case: "listServices", value: "*" } }]);
    expect(res?.messageResponse.case).toBe("listServicesResponse");
    const names = (res?.messageResponse.value as v1.ListServiceResponse).service.map((s) => s.name).sort();
    expect(names).toEqual(EXPECTED_SERVICES);
  });

  it("file_containing_symbol returns the file and its transitive dependencies, enough to rebuild the schema", async () => {
    const server = await h.server();
    const [bySvc, byMethod, byMessage] = await reflect(server.address, [
      { messageRequest: { case: "fileContainingSymbol", value: "stratum.echo.v1.EchoService" } },
      { messageRequest: { case: "fileContainingSymbol", value: "stratum.echo.v1.EchoService.Append" } },
      { messageRequest: { case: "fileContainingSymbol", value: "stratum.echo.v1.SleepRequest" } },
    ]);
    const protos = files(bySvc);
    expect(protos.map((p) => p.name)).toEqual(["stratum/echo/v1/echo.proto", "google/protobuf/duration.proto"]);
    // A client that has never seen our protos can build a registry from them.
    const byName = new Map(protos.map((p) => [p.name, p]));
    const registry = createFileRegistry(protos[0]!, (name) => byName.get(name));
    const echo = registry.getService("stratum.echo.v1.EchoService");
    expect(echo?.methods.map((m) => m.name)).toEqual(["Echo", "EchoStream", "Fail", "Sleep", "Forward", "Append"]);
    expect(echo?.method["echo"]?.idempotency).toBe(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
    expect(echo?.method["append"]?.idempotency).toBe(MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN);
    expect(registry.getMessage("stratum.echo.v1.SleepRequest")?.field["duration"]?.message?.typeName).toBe("google.protobuf.Duration");
    // Later answers on the same stream name the file but leave out dependencies already sent.
    expect(files(byMethod).map((p) => p.name)).toEqual(["stratum/echo/v1/echo.proto"]);
    expect(files(byMessage).map((p) => p.name)).toEqual(["stratum/echo/v1/echo.proto"]);
  });

  it("file_by_filename, and the error detail types are described too", async () => {
    const server = await h.server();
    const [health, details] = await reflect(server.address, [
      { messageRequest: { case: "fileByFilename", value: "grpc/health/v1/health.proto" } },
      { messageRequest: { case: "fileContainingSymbol", value: "google.rpc.ErrorInfo" } },
    ]);
    expect(files(health)[0]?.service.map((s) => s.name)).toEqual(["Health"]);
    expect(files(details)[0]?.name).toBe("google/rpc/error_details.proto");
  });

  it("unknown symbols and files get an error_response with NOT_FOUND, and the stream carries on", async () => {
    const server = await h.server();
    const [symbol, file, list] = await reflect(server.address, [
      { messageRequest: { case: "fileContainingSymbol", value: "stratum.nope.v1.Nope" } },
      { messageRequest: { case: "fileByFilename", value: "nope.proto" } },
      { messageRequest: { case: "listServices", value: "" } },
    ]);
    expect(symbol?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NOT_FOUND } });
    expect((symbol?.messageResponse.value as v1.ErrorResponse).errorMessage).toContain("stratum.nope.v1.Nope");
    expect(file?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NOT_FOUND } });
    expect(list?.messageResponse.case).toBe("listServicesResponse");
  });

  it("v1alpha answers the same", async () => {
    const server = await h.server();
    const client = h.track(createClient(v1alpha.ServerReflection, server.address));
    const out: v1alpha.ServerReflectionResponse[] = [];
    const requests = iterate<MessageInitShape<typeof v1alpha.ServerReflectionRequestSchema>>([
      { host: "h", messageRequest: { case: "listServices", value: "" } },
      { messageRequest: { case: "fileContainingSymbol", value: "stratum.echo.v1.EchoRequest" } },
    ]);
    for await (const res of client.serverReflectionInfo(requests, { timeoutMs: 5_000 })) out.push(res);
    expect(out[0]?.validHost).toBe("h");
    expect(out[0]?.originalRequest?.messageRequest.case).toBe("listServices");
    expect((out[0]?.messageResponse.value as v1alpha.ListServiceResponse).service.map((s) => s.name).sort()).toEqual(EXPECTED_SERVICES);
    expect(out[1]?.messageResponse.case).toBe("fileDescriptorResponse");
    const first = (out[1]?.messageResponse.value as v1alpha.FileDescriptorResponse).fileDescriptorProto[0]!;
    expect(fromBinary(FileDescriptorProtoSchema, first).name).toBe("stratum/echo/v1/echo.proto");
  });
});

describe("buf curl, a client that has never seen our protos, using reflection only", () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "stratum-bufcurl-"));
  });
  afterAll(() => rm(cwd, { recursive: true, force: true }));

  function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        bufBin,
        ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args],
        // An empty directory: no buf.yaml, no .proto files, nothing but the server to learn from.
        { cwd, env: { ...process.env, BUF_CACHE_DIR: join(cwd, ".cache") }, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr }),
      );
    });
  }

  it("lists services and methods", async () => {
    const server = await h.server();
    const services = await bufCurl(["--reflect", "--list-services", `http://${server.address}`]);
    expect(services.stderr).toBe("");
    expect(services.stdout.trim().split("\n").sort()).toEqual(EXPECTED_SERVICES);
    const methods = await bufCurl(["--reflect", "--list-methods", `http://${server.address}`]);
    expect(methods.stdout).toContain("stratum.echo.v1.EchoService/EchoStream");
    expect(methods.stdout).toContain("grpc.health.v1.Health/Check");
  });

  it("calls a unary method with JSON in and out, over reflection v1 and v1alpha", async () => {
    const server = await h.server();
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const res = await bufCurl([
        "--reflect",
        "--reflect-protocol",
        protocol,
        "-H",
        "x-request-id: from-buf",
        "-d",
        '{"message":"hello from buf","payload":"AAEC"}',
        `http://${server.address}/stratum.echo.v1.EchoService/Echo`,
      ]);
      expect(res.stderr, protocol).toBe("");
      expect(res.code, protocol).toBe(0);
      expect(JSON.parse(res.stdout)).toEqual({ message: "hello from buf", payload: "AAEC", requestId: "from-buf" });
    }
  });

  it("calls a server-streaming method", async () => {
    const server = await h.server();
    const res = await bufCurl(["--reflect", "-d", '{"message":"s","count":3}', `http://${server.address}/stratum.echo.v1.EchoService/EchoStream`]);
    expect(res.code).toBe(0);
    const messages = res.stdout
      .trim()
      .split(/\n(?=\{)/)
      .map((m) => JSON.parse(m) as { message: string; index?: number });
    expect(messages).toEqual([{ message: "s" }, { message: "s", index: 1 }, { message: "s", index: 2 }]);
  });

  it("shows a Stratum error's code, message and its google.rpc.ErrorInfo detail", async () => {
    const server = await h.server();
    const res = await bufCurl([
      "--reflect",
      "-d",
      '{"code":5,"reason":"VM_NOT_FOUND","message":"vm 42 not found","resources":{"vmUuid":"42"}}',
      `http://${server.address}/stratum.echo.v1.EchoService/Fail`,
    ]);
    // buf curl exits with the gRPC code shifted left by 3.
    expect(res.code).toBe(Code.NOT_FOUND << 3);
    const err = JSON.parse(res.stderr) as { code: string; message: string; details: { type: string; value: string }[] };
    expect(err.code).toBe("not_found");
    expect(err.message).toBe("vm 42 not found");
    expect(err.details.map((d) => d.type)).toEqual(["google.rpc.ErrorInfo", "google.rpc.RequestInfo"]);
    // buf curl prints detail values as base64 of the packed message.
    const info = fromBinary(ErrorInfoSchema, Buffer.from(err.details[0]!.value, "base64"));
    expect(info).toMatchObject({ reason: "VM_NOT_FOUND", domain: "stratum.io", metadata: { vmUuid: "42" } });
  });
});
