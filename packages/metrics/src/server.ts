import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { errorMessage } from "@stratum/core";

export interface MetricsServerOptions {
  /** Interface to listen on, e.g. `0.0.0.0` for Prometheus on another host, `127.0.0.1` for tests. */
  host: string;
  /** TCP port; 0 picks a free one (read it back from the result). */
  port: number;
  registry: Registry;
}

export interface MetricsServer {
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` in the Prometheus text format on a port of its own, apart from gRPC, so
 * a scrape never competes with the service's calls and works while gRPC is draining. Any other
 * path is 404; another method on /metrics is 405.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port, registry } = options;
  if (typeof host !== "string" || host === "") throw new TypeError("metrics server: host must be a non-empty string");
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new TypeError(`metrics server: port must be an integer in 0..65535, got ${String(port)}`);
  if (registry === null || typeof registry !== "object" || typeof registry.metrics !== "function") throw new TypeError("metrics server: registry must be a prom-client Registry");

  const server = createServer((req, res) => void answer(registry, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    port: bound,
    url: `http://${hostPart}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function answer(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?", 1)[0];
  if (path !== "/metrics") {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: metrics are at /metrics\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
    return;
  }
  try {
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (e) {
    res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`metrics collection failed: ${errorMessage(e)}\n`);
  }
}
