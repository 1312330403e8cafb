/**
 * StratumError <-> `google.rpc.Status`, the richer gRPC error model.
 *
 * The gRPC status line (code + message) is all most clients read, but a caller that wants to
 * react (retry, re-route, tell the user which field is wrong) needs structure. The standard way
 * is a serialized `google.rpc.Status` in the `grpc-status-details-bin` trailer, whose `details`
 * hold `google.rpc.ErrorInfo` (reason, domain, metadata = resource ids) and `google.rpc.BadRequest`
 * (field violations). grpc-go's `status.FromError`, grpcurl, buf curl and Python's
 * `grpc_status.rpc_status` all decode it, so Stratum errors are readable from any language.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { BadRequestSchema, ErrorInfoSchema, RequestInfoSchema } from "@stratum/proto/google/rpc/error_details_pb";
import { StatusSchema, type Status } from "@stratum/proto/google/rpc/status_pb";
import { Code, codeName } from "@stratum/core";
import { ERROR_DOMAIN, StratumError, type FieldViolation } from "@stratum/core";

/** The trailer that carries the binary `google.rpc.Status` (the gRPC convention, not ours). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/**
 * The google.rpc.Status a StratumError is sent as: same code and message, plus ErrorInfo (always),
 * BadRequest (when there are violations) and RequestInfo (when the request id is known, so a
 * user can quote it and an operator can find the server's log lines).
 */
export function statusFromError(err: StratumError, requestId?: string): Status {
  const details: Any[] = [
    anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: { ...err.resources } })),
  ];
  if (err.violations.length > 0) {
    const fieldViolations = err.violations.map((v) => ({ field: v.field, description: v.description }));
    details.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations })));
  }
  if (requestId) details.push(anyPack(RequestInfoSchema, create(RequestInfoSchema, { requestId })));
  return create(StatusSchema, { code: err.code, message: err.message, details });
}

/**
 * The grpc-js status object a handler error is sent as. Anything that is not a StratumError
 * becomes INTERNAL "internal error" (see `StratumError.from`): its message may hold SQL, paths
 * or stack frames, so it stays in the server's log.
 */
export function toGrpcStatus(err: StratumError, requestId?: string, trailers?: Metadata): StatusObject {
  const metadata = trailers?.clone() ?? new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(toBinary(StatusSchema, statusFromError(err, requestId))));
  return { code: err.code as number, details: err.message, metadata };
}

/** Rebuilds the StratumError a server sent, from its google.rpc.Status. */
export function errorFromStatus(status: Status, cause?: unknown): StratumError {
  let reason: string | undefined;
  let resources: Record<string, string> | undefined;
  const violations: FieldViolation[] = [];
  for (const detail of status.details) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info) {
      reason = info.reason;
      resources = { ...info.metadata };
      continue;
    }
    const badRequest = anyUnpack(detail, BadRequestSchema);
    if (badRequest) {
      for (const v of badRequest.fieldViolations) violations.push({ field: v.field, description: v.description });
    }
  }
  const code = status.code as Code;
  return new StratumError(code, status.message || codeName(code), {
    ...(reason ? { reason } : {}),
    ...(resources ? { resources } : {}),
    violations,
    ...(cause === undefined ? {} : { cause }),
  });
}

interface ServiceErrorLike {
  code: number;
  details?: string;
  message?: string;
  metadata?: Metadata;
}

function isServiceErrorLike(value: unknown): value is ServiceErrorLike {
  return typeof value === "object" && value !== null && typeof (value as { code?: unknown }).code === "number";
}

/**
 * The StratumError for anything a grpc-js call rejected with. The `grpc-status-details-bin`
 * trailer wins when present and consistent with the status code (the gRPC rule: details that
 * disagree with the status line are ignored); otherwise the code and message are kept as is.
 * The grpc-js error stays as the `cause`.
 */
export function errorFromServiceError(err: unknown): StratumError {
  if (err instanceof StratumError) return err;
  if (!isServiceErrorLike(err) || !Number.isInteger(err.code) || err.code < 0 || err.code > 16) return StratumError.from(err);
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (raw instanceof Uint8Array) {
    try {
      const status = fromBinary(StatusSchema, raw);
      if (status.code === err.code) return errorFromStatus(status, err);
    } catch {
      // Undecodable details: fall back to the status line below.
    }
  }
  const code = err.code as Code;
  return new StratumError(code, err.details || codeName(code), { cause: err });
}
