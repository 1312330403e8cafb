/**
 * What validating a CreateVmRequest costs: protovalidate (the rules declared in vm.proto) against
 * the hand-written checks compute ran before, on a valid and an invalid request, plus the one-off
 * cost of compiling a schema's rules and the NUL scan every request now gets.
 *
 *     npx tsx packages/validation/bench/validate.bench.ts
 *
 * Prints ns per validated request (median of 7 rounds) and ends with one summary line.
 */
import { create } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { Violations } from "@stratum/core";
import { CreateVmRequestSchema, ListVmsRequestSchema, type CreateVmRequest } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { nulStringViolations } from "../../rpc/src/codec";
import { MIB, nameField, requestIdField, requestValidator, uuidField } from "../src/index";

const ROUNDS = 7;
const N = 20_000;

const valid = create(CreateVmRequestSchema, {
  name: "web-1",
  cpu: 2,
  memoryBytes: 1024n * MIB,
  hostUuid: "3f1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f",
  uuid: "7a1c2a1e-8b7d-4c3a-9e6f-1b2d3c4a5e6f",
  clientRequestId: "bench-req-000001",
});
const invalid = create(CreateVmRequestSchema, { name: "", cpu: 1000, memoryBytes: 1n, hostUuid: "HOST", clientRequestId: "a b" });

/** The checks compute's createVm handler ran by hand before the rules moved to the proto. */
function handWritten(req: CreateVmRequest): number {
  const v = new Violations();
  nameField(v, "name", req.name);
  v.range("cpu", req.cpu, 1, 512);
  v.range("memory_bytes", req.memoryBytes, 16n * MIB, 16n * 1024n * 1024n * MIB);
  uuidField(v, "host_uuid", req.hostUuid, false);
  uuidField(v, "uuid", req.uuid, false);
  requestIdField(v, "client_request_id", req.clientRequestId);
  return v.violations.length;
}

// What validateMessage uses: protovalidate with the platform RegExp for the schema's patterns.
const ours = requestValidator();
// protovalidate as it comes: patterns through its RE2 port.
const re2 = (() => {
  const v = createValidator();
  return (req: CreateVmRequest) => {
    const r = v.validate(CreateVmRequestSchema, req);
    return r.kind === "invalid" ? r.violations.length : 0;
  };
})();

function nsPer(fn: () => unknown): number {
  for (let i = 0; i < N / 4; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - t0) / N);
  }
  return rounds.sort((a, b) => a - b)[ROUNDS >> 1]!;
}

const t0 = process.hrtime.bigint();
const firstViolations = ours(CreateVmRequestSchema, valid).length;
const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
const t1 = process.hrtime.bigint();
ours(ListVmsRequestSchema, create(ListVmsRequestSchema));
const secondMs = Number(process.hrtime.bigint() - t1) / 1e6;
if (firstViolations !== 0 || ours(CreateVmRequestSchema, invalid).length !== 5 || handWritten(invalid) !== 5 || re2(invalid) !== 5) throw new Error("validators disagree");

const rows: [string, number, number][] = [
  ["hand-written checks", nsPer(() => handWritten(valid)), nsPer(() => handWritten(invalid))],
  ["validateMessage (protovalidate+RegExp)", nsPer(() => ours(CreateVmRequestSchema, valid)), nsPer(() => ours(CreateVmRequestSchema, invalid))],
  ["protovalidate as shipped (RE2 port)", nsPer(() => re2(valid)), nsPer(() => re2(invalid))],
  ["NUL scan (rpc, every request)", nsPer(() => nulStringViolations(CreateVmRequestSchema, valid)), nsPer(() => nulStringViolations(CreateVmRequestSchema, invalid))],
];

console.log(`CreateVmRequest, ns per request (median of ${ROUNDS} x ${N}); node ${process.version}`);
console.log(`${"".padEnd(40)}${"valid".padStart(10)}${"invalid".padStart(10)}`);
for (const [name, ok, bad] of rows) console.log(`${name.padEnd(40)}${ok.toFixed(0).padStart(10)}${bad.toFixed(0).padStart(10)}`);
console.log(`first validation (compiles CreateVmRequest's rules, loads the CEL runtime): ${compileMs.toFixed(1)} ms; of a second message type (ListVmsRequest): ${secondMs.toFixed(1)} ms`);
const [hand, pv] = [rows[0]![1], rows[1]![1]];
console.log(`summary: validateMessage (protovalidate) ${pv.toFixed(0)} ns vs hand-written ${hand.toFixed(0)} ns per valid CreateVmRequest (${(pv / hand).toFixed(1)}x, +${((pv - hand) / 1000).toFixed(1)} µs per call)`);
