/**
 * The CLI's connections to compute, longjob, storage, network and the broker: typed clients created on first use (so `--help`
 * or a usage error never dials anything), each at its own service's endpoint, each unary call
 * carrying the invocation's deadline and every call its request id (the id is printed with
 * server-side failures so an operator can find the matching log lines) and the Ctrl-C signal,
 * and closed when the command ends so the process can exit. Streams (WatchJob) get no deadline:
 * `--wait` follows a job for as long as it runs, and `--timeout` bounds each call, not the job.
 *
 * A failed call's error is remembered with the service it came from (`serviceOf`), so the message
 * of a command that talks to two services (`backup create --wait`: storage, then longjob) names
 * the one that failed and its address, not the command's main one.
 *
 * Mutating calls are retried on UNAVAILABLE (a replica died, restarted, or could not reach the
 * resource's owner) with one `client_request_id` for all attempts — the user's `--request-id`,
 * or one the client draws — so compute runs the operation at most once however often it retries.
 */
import type { DescService } from "@bufbuild/protobuf";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { BackupService } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import { BrokerService } from "@stratum/proto/stratum/broker/v1/broker_pb";
import { bearerToken, closeClient, createClient, REQUEST_ID_KEY, type CallOptions, type Client, type ClientOptions } from "@stratum/rpc";
import type { Api } from "./commands/command";
import type { Endpoint, ServiceName } from "./endpoint";

/**
 * The CLI's client options: mutating retries (see `ClientOptions.retry`), within the
 * invocation's deadline.
 */
export const CLI_CLIENT_OPTIONS: Readonly<ClientOptions> = Object.freeze({ retry: { mutating: true } });

/** Makes a client: `createClient` by default; tests pass a spy. */
export type Connect = <S extends DescService>(service: S, target: string, options: ClientOptions) => Client<S>;

export interface ApiOptions {
  /** Each service's endpoint, asked for when its first client is made. */
  endpointFor: (service: ServiceName) => Endpoint;
  timeoutMs: number;
  requestId: string;
  connect?: Connect;
  /** Cancels every call (Ctrl-C). */
  signal?: AbortSignal;
  /** The bearer token of broker calls, asked for when the broker's client is made. */
  brokerToken?: () => string;
}

/**
 * A client whose every call gets `defaults` (the caller's own options win); streams get no
 * deadline. Errors are passed to `failed` before they are thrown.
 */
function withDefaults<S extends DescService>(service: S, client: Client<S>, defaults: CallOptions, failed: (error: unknown) => void): Client<S> {
  const streamDefaults: CallOptions = { ...defaults };
  delete streamDefaults.timeoutMs;
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(client as Record<string, (request: unknown, options?: CallOptions) => unknown>)) {
    const streaming = service.methods.find((m) => m.localName === name)?.methodKind === "server_streaming";
    if (streaming) {
      wrapped[name] = (request: unknown, options?: CallOptions) =>
        (async function* () {
          try {
            yield* method(request, { ...streamDefaults, ...options }) as AsyncIterable<unknown>;
          } catch (e) {
            failed(e);
            throw e;
          }
        })();
      continue;
    }
    wrapped[name] = async (request: unknown, options?: CallOptions) => {
      try {
        return await method(request, { ...defaults, ...options });
      } catch (e) {
        failed(e);
        throw e;
      }
    };
  }
  return wrapped as Client<S>;
}

export interface OpenedApi {
  api: Api;
  /** The service whose call threw `error`, if it came from one of this api's clients. */
  serviceOf(error: unknown): ServiceName | undefined;
  close(): void;
}

export function openApi(options: ApiOptions): OpenedApi {
  const connect: Connect = options.connect ?? createClient;
  const opened: object[] = [];
  const failures = new WeakMap<object, ServiceName>();
  const defaults: CallOptions = {
    timeoutMs: options.timeoutMs,
    metadata: { [REQUEST_ID_KEY]: options.requestId },
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const lazy = <S extends DescService>(name: ServiceName, service: S, clientOptions: () => ClientOptions = () => CLI_CLIENT_OPTIONS): (() => Client<S>) => {
    let client: Client<S> | undefined;
    return () => {
      if (!client) {
        const raw = connect(service, options.endpointFor(name).target, clientOptions());
        opened.push(raw);
        client = withDefaults(service, raw, defaults, (e) => {
          if (typeof e === "object" && e !== null && !failures.has(e)) failures.set(e, name);
        });
      }
      return client;
    };
  };
  const hosts = lazy("compute", HostService);
  const vms = lazy("compute", VmService);
  const jobs = lazy("longjob", LongJobService);
  const storage = lazy("storage", StorageService);
  const backups = lazy("storage", BackupService);
  const networks = lazy("network", NetworkService);
  const eips = lazy("network", EipService);
  // Every broker call acts for the tenant its token maps to.
  const broker = lazy("broker", BrokerService, () => {
    const token = options.brokerToken?.();
    return token === undefined ? CLI_CLIENT_OPTIONS : { ...CLI_CLIENT_OPTIONS, interceptors: [bearerToken(token)] };
  });
  return {
    serviceOf: (e) => (typeof e === "object" && e !== null ? failures.get(e) : undefined),
    api: {
      get storage() {
        return storage();
      },
      get backups() {
        return backups();
      },
      get hosts() {
        return hosts();
      },
      get vms() {
        return vms();
      },
      get jobs() {
        return jobs();
      },
      get networks() {
        return networks();
      },
      get eips() {
        return eips();
      },
      get broker() {
        return broker();
      },
    },
    close() {
      for (const client of opened) closeClient(client);
      opened.length = 0;
    },
  };
}
