import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { StratumError, codeName } from "@stratum/core";
import { observeOutcome, type ServerInterceptor } from "@stratum/rpc";
import { RPC_SECONDS } from "./buckets";

type RpcLabel = "grpc_service" | "grpc_method";

/** The RPC server metrics of one registry; feed them with {@link rpcMetricsInterceptor}. */
export interface RpcMetrics {
  readonly handled: Counter<RpcLabel | "grpc_code">;
  readonly handling: Histogram<RpcLabel>;
  readonly inFlight: Gauge<RpcLabel>;
}

/** Registers the RPC server metrics on `registry` (once per registry: names are unique there). */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  const registers = [registry];
  return {
    handled: new Counter({
      name: "stratum_rpc_server_handled_total",
      help: "RPCs completed by this replica, by gRPC service, method and status code (OK on success).",
      labelNames: ["grpc_service", "grpc_method", "grpc_code"],
      registers,
    }),
    handling: new Histogram({
      name: "stratum_rpc_server_handling_seconds",
      help: "Time from a call entering the interceptor chain to its outcome (a stream: to its end), in seconds.",
      labelNames: ["grpc_service", "grpc_method"],
      buckets: RPC_SECONDS,
      registers,
    }),
    inFlight: new Gauge({
      name: "stratum_rpc_server_in_flight",
      help: "RPCs this replica is handling right now.",
      labelNames: ["grpc_service", "grpc_method"],
      registers,
    }),
  };
}

/**
 * A server interceptor that counts every call by service, method and outcome code and times it.
 * Put it first in `interceptors` (outermost) so it also sees calls the later interceptors refuse
 * (validation, not-owner, fencing) with the code the client gets. The code of a failure is
 * `StratumError.from(error).code`: what the server sends for that error.
 */
export function rpcMetricsInterceptor(metrics: RpcMetrics): ServerInterceptor {
  return (next) => (call) => {
    const labels = { grpc_service: call.service.typeName, grpc_method: call.method.name };
    const started = performance.now();
    metrics.inFlight.inc(labels);
    return observeOutcome(
      call.method,
      () => next(call),
      (error) => {
        metrics.inFlight.dec(labels);
        const grpc_code = error === undefined ? "OK" : codeName(StratumError.from(error).code);
        metrics.handled.inc({ ...labels, grpc_code });
        metrics.handling.observe(labels, (performance.now() - started) / 1000);
      },
    );
  };
}
