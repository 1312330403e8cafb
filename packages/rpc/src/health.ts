/**
 * The standard gRPC health service (`grpc.health.v1.Health`), so that Kubernetes gRPC probes,
 * grpc-health-probe, Envoy and load balancers can tell a serving replica from a draining one
 * without knowing anything about Stratum.
 */
import { Code } from "@stratum/core";
import { StratumError } from "@stratum/core";
import { implement, type ServiceRegistration } from "./service";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  Health,
} from "@stratum/proto/grpc/health/v1/health_pb";

export { ServingStatus };

type Listener = (service: string, status: ServingStatus) => void;

/**
 * Serving status per service name; `""` is the whole server. Services flip to NOT_SERVING while
 * draining (shutdown) or when a dependency they cannot work without is down.
 */
export class HealthRegistry {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly listeners = new Set<Listener>();
  private readonly closers = new Set<() => void>();
  private shutDown = false;

  /** Sets a service's status and tells every watcher. Ignored after `shutdown()`: a draining server stays NOT_SERVING. */
  set(service: string, status: ServingStatus): void {
    if (this.shutDown) return;
    this.update(service, status);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** A snapshot of every known service's status. */
  all(): ReadonlyMap<string, ServingStatus> {
    return new Map(this.statuses);
  }

  /**
   * Marks everything NOT_SERVING, then ends every Watch stream. Called first on server shutdown,
   * so load balancers stop sending traffic while in-flight calls finish, and so that long-lived
   * Watch streams do not hold a graceful shutdown open until it is forced.
   */
  shutdown(): void {
    if (this.shutDown) return;
    for (const service of this.statuses.keys()) this.update(service, ServingStatus.NOT_SERVING);
    this.shutDown = true;
    for (const close of [...this.closers]) close();
  }

  private update(service: string, status: ServingStatus): void {
    const previous = this.statuses.get(service);
    this.statuses.set(service, status);
    if (previous === status) return;
    for (const listener of [...this.listeners]) listener(service, status);
  }

  /** @internal Used by Watch. */
  watch(service: string, listener: (status: ServingStatus) => void, onClose: () => void): () => void {
    const l: Listener = (name, status) => {
      if (name === service) listener(status);
    };
    this.listeners.add(l);
    this.closers.add(onClose);
    if (this.shutDown) queueMicrotask(onClose);
    return () => {
      this.listeners.delete(l);
      this.closers.delete(onClose);
    };
  }
}

/** The `grpc.health.v1.Health` implementation backed by `registry`. */
export function healthService(registry: HealthRegistry): ServiceRegistration {
  return implement(Health, {
    check(req) {
      const status = registry.get(req.service);
      if (status === undefined) {
        throw new StratumError(Code.NOT_FOUND, `unknown service "${req.service}"`, {
          reason: "HEALTH_SERVICE_UNKNOWN",
          resources: { service: req.service },
        });
      }
      return { status };
    },

    list() {
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const [service, status] of registry.all()) statuses[service] = { status };
      return { statuses };
    },

    async *watch(req, ctx) {
      // Latest-value semantics, like grpc-go: a slow watcher gets the current status, not a backlog.
      let pending: ServingStatus = registry.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
      let sent: ServingStatus | undefined;
      let closed = false;
      let wake: (() => void) | undefined;
      const unsubscribe = registry.watch(
        req.service,
        (status) => {
          pending = status;
          wake?.();
        },
        () => {
          closed = true;
          wake?.();
        },
      );
      const onAbort = (): void => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        while (!ctx.signal.aborted) {
          if (pending !== sent) {
            sent = pending;
            yield { status: sent };
            continue;
          }
          if (closed) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        unsubscribe();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  });
}
