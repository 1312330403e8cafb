import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import {
  AddHostRequestSchema,
  ChangeHostStateRequestSchema,
  DeleteHostRequestSchema,
  GetHostRequestSchema,
  HostState,
  HostStatus,
  ListHostsRequestSchema,
  ReconnectHostRequestSchema,
} from "@stratum/proto/stratum/compute/v1/host_pb";
import {
  CreateVmRequestSchema,
  DestroyVmRequestSchema,
  GetVmRequestSchema,
  ListVmsRequestSchema,
  RebootVmRequestSchema,
  StartVmRequestSchema,
  StopVmRequestSchema,
  VmState,
} from "@stratum/proto/stratum/compute/v1/vm_pb";
import { describe, expect, it } from "vitest";
import { UUID_PATTERN } from "./ids";
import { PATTERN_DESCRIPTIONS, assertValid, precompileRules, validateMessage } from "./protovalidate";

const UUID = "3f1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f";
const MIB = 1024n * 1024n;
const goodVm = { name: "web-1", cpu: 2, memoryBytes: 1024n * MIB };
const goodHost = { name: "h1", agentUrl: "http://10.0.0.5:7070", cpuCapacity: 64, memoryCapacityBytes: 256n * 1024n * MIB };

interface Case {
  what: string;
  schema: DescMessage;
  init: object;
  /** field -> description; {} for a valid request. */
  expect: Record<string, string>;
}

function c<Desc extends DescMessage>(what: string, schema: Desc, init: MessageInitShape<Desc>, expected: Record<string, string>): Case {
  return { what, schema, init, expect: expected };
}

/** Every rule compute's handlers enforced by hand, now declared in vm.proto / host.proto. */
const cases: Case[] = [
  c("a good CreateVm", CreateVmRequestSchema, { ...goodVm, hostUuid: UUID, uuid: UUID, clientRequestId: "req-1" }, {}),
  c("CreateVm at the bounds", CreateVmRequestSchema, { name: "x".repeat(128), cpu: 512, memoryBytes: 16n * MIB }, {}),
  c("CreateVm at the upper memory bound", CreateVmRequestSchema, { ...goodVm, cpu: 1, memoryBytes: 16n * 1024n * 1024n * MIB }, {}),
  c("CreateVm with nothing set", CreateVmRequestSchema, {}, { name: "is required", cpu: "must be between 1 and 512", memory_bytes: "must be between 16777216 and 17592186044416" }),
  c("a blank name", CreateVmRequestSchema, { ...goodVm, name: "  \t" }, { name: "is required" }),
  c("a 129-character name", CreateVmRequestSchema, { ...goodVm, name: "x".repeat(129) }, { name: "must be at most 128 characters" }),
  c("128 non-BMP characters are 128 characters", CreateVmRequestSchema, { ...goodVm, name: "😀".repeat(128) }, {}),
  c("513 cpus", CreateVmRequestSchema, { ...goodVm, cpu: 513 }, { cpu: "must be between 1 and 512" }),
  c("memory 1 byte short of 16 MiB", CreateVmRequestSchema, { ...goodVm, memoryBytes: 16n * MIB - 1n }, { memory_bytes: "must be between 16777216 and 17592186044416" }),
  c("memory above 16 TiB", CreateVmRequestSchema, { ...goodVm, memoryBytes: 16n * 1024n * 1024n * MIB + 1n }, { memory_bytes: "must be between 16777216 and 17592186044416" }),
  c("an uppercase host_uuid", CreateVmRequestSchema, { ...goodVm, hostUuid: UUID.toUpperCase() }, { host_uuid: "must be a lowercase UUID" }),
  c("a uuid that is not one", CreateVmRequestSchema, { ...goodVm, uuid: "vm-1" }, { uuid: "must be a lowercase UUID" }),
  c("a uuid with a trailing newline", CreateVmRequestSchema, { ...goodVm, uuid: `${UUID}\n` }, { uuid: "must be a lowercase UUID" }),
  c("a request id with a space", CreateVmRequestSchema, { ...goodVm, clientRequestId: "a b" }, { client_request_id: "must be printable ASCII without spaces" }),
  c("a request id with non-ASCII", CreateVmRequestSchema, { ...goodVm, clientRequestId: "réq" }, { client_request_id: "must be printable ASCII without spaces" }),
  c("a 129-character request id", CreateVmRequestSchema, { ...goodVm, clientRequestId: "r".repeat(129) }, { client_request_id: "must be at most 128 characters" }),
  c("a 128-character request id", CreateVmRequestSchema, { ...goodVm, clientRequestId: "r".repeat(128) }, {}),

  c("GetVm without uuid", GetVmRequestSchema, {}, { uuid: "is required" }),
  c("GetVm with a bad uuid", GetVmRequestSchema, { uuid: "not-a-uuid" }, { uuid: "must be a lowercase UUID" }),
  c("StartVm with a bad uuid and request id", StartVmRequestSchema, { uuid: "x", clientRequestId: " " }, { uuid: "must be a lowercase UUID", client_request_id: "must be printable ASCII without spaces" }),
  c("StopVm without uuid", StopVmRequestSchema, { force: true }, { uuid: "is required" }),
  c("RebootVm without uuid", RebootVmRequestSchema, {}, { uuid: "is required" }),
  c("DestroyVm with a bad request id", DestroyVmRequestSchema, { uuid: UUID, clientRequestId: "r".repeat(200) }, { client_request_id: "must be at most 128 characters" }),
  c("a good ListVms", ListVmsRequestSchema, { state: VmState.RUNNING, hostUuid: UUID, name: "web", pageSize: 1000 }, {}),
  c("an empty ListVms", ListVmsRequestSchema, {}, {}),
  c("ListVms with bad filters", ListVmsRequestSchema, { state: 42 as VmState, hostUuid: "H", name: "n".repeat(129), pageSize: 1001 }, {
    state: "must be one of the defined enum values",
    host_uuid: "must be a lowercase UUID",
    name: "must be at most 128 characters",
    page_size: "must be less than or equal to 1000",
  }),

  c("a good AddHost", AddHostRequestSchema, { ...goodHost, uuid: UUID, clientRequestId: "add-1" }, {}),
  c("AddHost with nothing set", AddHostRequestSchema, {}, {
    name: "is required",
    agent_url: "is required",
    cpu_capacity: "must be between 1 and 100000",
    memory_capacity_bytes: "must be between 67108864 and 1125899906842624",
  }),
  c("AddHost over the limits", AddHostRequestSchema, { ...goodHost, cpuCapacity: 100_001, memoryCapacityBytes: 1024n ** 5n + 1n, agentUrl: `http://x/${"p".repeat(2048)}` }, {
    cpu_capacity: "must be between 1 and 100000",
    memory_capacity_bytes: "must be between 67108864 and 1125899906842624",
    agent_url: "must be at most 2048 characters",
  }),
  c("AddHost at the upper bounds", AddHostRequestSchema, { ...goodHost, cpuCapacity: 100_000, memoryCapacityBytes: 1024n ** 5n }, {}),
  c("AddHost with a bad uuid and request id", AddHostRequestSchema, { ...goodHost, uuid: "h", clientRequestId: "a\tb" }, { uuid: "must be a lowercase UUID", client_request_id: "must be printable ASCII without spaces" }),
  c("GetHost without uuid", GetHostRequestSchema, {}, { uuid: "is required" }),
  c("ReconnectHost with a bad uuid", ReconnectHostRequestSchema, { uuid: "ABC" }, { uuid: "must be a lowercase UUID" }),
  c("DeleteHost without uuid", DeleteHostRequestSchema, {}, { uuid: "is required" }),
  c("ChangeHostState without state", ChangeHostStateRequestSchema, { uuid: UUID }, { state: "is required" }),
  c("ChangeHostState with an unknown state", ChangeHostStateRequestSchema, { uuid: UUID, state: 9 as HostState }, { state: "must be one of the defined enum values" }),
  c("a good ChangeHostState", ChangeHostStateRequestSchema, { uuid: UUID, state: HostState.MAINTENANCE }, {}),
  c("ListHosts with bad filters", ListHostsRequestSchema, { status: 7 as HostStatus, pageSize: 5000 }, { status: "must be one of the defined enum values", page_size: "must be less than or equal to 1000" }),
  c("a good ListHosts", ListHostsRequestSchema, { status: HostStatus.CONNECTED, pageSize: 10, pageToken: "abc" }, {}),
];

describe("compute requests, by the rules their protos declare", () => {
  it.each(cases)("$what", ({ schema, init, expect: expected }) => {
    const violations = validateMessage(schema, create(schema, init as never));
    expect(Object.fromEntries(violations.map((v) => [v.field, v.description]))).toEqual(expected);
    // One violation per field: a caller fixes its request in one round trip, without duplicates.
    expect(violations.length).toBe(Object.keys(expected).length);
  });

  it("assertValid throws one INVALID_ARGUMENT listing every violation", () => {
    let err: unknown;
    try {
      assertValid(CreateVmRequestSchema, create(CreateVmRequestSchema, { cpu: 0, memoryBytes: 1n }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StratumError);
    expect((err as StratumError).code).toBe(Code.INVALID_ARGUMENT);
    expect((err as StratumError).violations.map((v) => v.field)).toEqual(["name", "cpu", "memory_bytes"]);
    expect(() => assertValid(CreateVmRequestSchema, create(CreateVmRequestSchema, goodVm))).not.toThrow();
  });
});

describe("precompileRules", () => {
  it("compiles every request type of the services (so a broken rule fails at start-up, not on a request)", async () => {
    const { VmService } = await import("@stratum/proto/stratum/compute/v1/vm_pb");
    const { HostService } = await import("@stratum/proto/stratum/compute/v1/host_pb");
    const seen: string[] = [];
    precompileRules([VmService, HostService], (schema) => (seen.push(schema.typeName), []));
    expect(seen).toHaveLength(VmService.methods.length + HostService.methods.length);
    expect(seen).toContain("stratum.compute.v1.CreateVmRequest");
    expect(() => precompileRules([VmService, HostService])).not.toThrow();
  });
});

describe("PATTERN_DESCRIPTIONS", () => {
  it("names the UUID pattern the hand-written checks use", () => {
    expect(PATTERN_DESCRIPTIONS[UUID_PATTERN.source]).toBe("must be a lowercase UUID");
  });
});
