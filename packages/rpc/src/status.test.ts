import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Metadata } from "@grpc/grpc-js";
import { ErrorInfoSchema } from "@stratum/proto/google/rpc/error_details_pb";
import { StatusSchema } from "@stratum/proto/google/rpc/status_pb";
import { describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { StratumError } from "@stratum/core";
import { STATUS_DETAILS_KEY, errorFromServiceError, errorFromStatus, statusFromError, toGrpcStatus } from "./status";

describe("status", () => {
  it("StratumError -> google.rpc.Status -> StratumError keeps code, message, reason, resources, violations", () => {
    const original = new StratumError(Code.FAILED_PRECONDITION, "vm v1 is running", {
      reason: "VM_RUNNING",
      resources: { vmUuid: "v1" },
      violations: [{ field: "state", description: "must be Stopped" }],
      cause: new Error("secret"),
    });
    const back = errorFromStatus(statusFromError(original, "r1"));
    expect(back).toMatchObject({ code: original.code, message: original.message, reason: "VM_RUNNING", resources: { vmUuid: "v1" } });
    expect(back.violations).toEqual(original.violations);
  });

  it("the cause never goes on the wire", () => {
    const err = StratumError.from(new Error("password=hunter2"));
    const status = toGrpcStatus(err, "r2");
    expect(status.details).toBe("internal error");
    expect(Buffer.from(status.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer).toString("latin1")).not.toContain("hunter2");
  });

  it("errorFromServiceError ignores details whose code disagrees with the status line", () => {
    const details = create(StatusSchema, {
      code: Code.NOT_FOUND,
      message: "forged",
      details: [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "FORGED", domain: "x" }))],
    });
    const metadata = new Metadata();
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(toBinary(StatusSchema, details)));
    const err = errorFromServiceError({ code: Code.UNAVAILABLE, details: "connection refused", metadata });
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, message: "connection refused", reason: "UNAVAILABLE" });
  });

  it("errorFromServiceError keeps plain gRPC errors' code and message, and passes StratumErrors through", () => {
    const err = errorFromServiceError({ code: Code.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata: new Metadata() });
    expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED, message: "Deadline exceeded", reason: "DEADLINE_EXCEEDED" });
    const s = new StratumError(Code.ABORTED, "x");
    expect(errorFromServiceError(s)).toBe(s);
  });
});
