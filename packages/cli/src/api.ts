/**
 * The CLI's connection to compute: typed clients created on first use (so `--help` or a usage
 * error never dials anything), each call carrying the invocation's deadline and request id (the
 * id is printed with server-side failures so an operator can find the matching log lines), and
 * closed when the command ends so the process can exit.
 *
 * Mutating calls are retried on UNAVAILABLE (a replica died, restarted, or could not reach the
 * resource's owner) with one `client_request_id` for all attempts — the user's `--request-id`,
 * or one the client draws — so compute runs the operation at most once however often it retries.
 */
import type { DescService } from "@bufbuild/protobuf";
import { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { closeClient, createClient, REQUEST_ID_KEY, type CallOptions, type Client, type ClientOptions } from "@stratum/rpc";
import type { Api } from "./commands/command";
import type { Endpoint } from "./endpoint";

/**
 * The CLI's client options: mutating retries (see `ClientOptions.retry`), within the
 * invocation's deadline.
 */
export const CLI_CLIENT_OPTIONS: Readonly<ClientOptions> = Object.freeze({ retry: { mutating: true } });

/** Makes a client: `createClient` by default; tests pass a spy. */
export type Connect = <S extends DescService>(service: S, target: string, options: ClientOptions) => Client<S>;

export interface ApiOptions {
  endpoint: Endpoint;
  timeoutMs: number;
  requestId: string;
  connect?: Connect;
}

/** A client whose every call gets `defaults` (the caller's own options win). */
function withDefaults<S extends DescService>(client: Client<S>, defaults: CallOptions): Client<S> {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(client as Record<string, (request: unknown, options?: CallOptions) => unknown>)) {
    wrapped[name] = (request: unknown, options?: CallOptions) => method(request, { ...defaults, ...options });
  }
  return wrapped as Client<S>;
}

export function openApi(options: ApiOptions): { api: Api; close(): void } {
  const connect: Connect = options.connect ?? createClient;
  const opened: object[] = [];
  const defaults: CallOptions = { timeoutMs: options.timeoutMs, metadata: { [REQUEST_ID_KEY]: options.requestId } };
  const lazy = <S extends DescService>(service: S): (() => Client<S>) => {
    let client: Client<S> | undefined;
    return () => {
      if (!client) {
        const raw = connect(service, options.endpoint.target, CLI_CLIENT_OPTIONS);
        opened.push(raw);
        client = withDefaults(raw, defaults);
      }
      return client;
    };
  };
  const hosts = lazy(HostService);
  const vms = lazy(VmService);
  return {
    api: {
      get hosts() {
        return hosts();
      },
      get vms() {
        return vms();
      },
    },
    close() {
      for (const client of opened) closeClient(client);
      opened.length = 0;
    },
  };
}
