import { createServer } from "node:net";

/**
 * Ports this process handed out recently. The kernel may give the same ephemeral port to two
 * back-to-back `listen(0)` calls once the first probe socket is closed, and two servers started
 * in parallel (NATS and Postgres in the global setup) would then race for it. Remembering what we
 * handed out rules that out within one process; across processes the servers' own bind retry
 * covers the remaining window.
 */
const recentlyHandedOut = new Set<number>();
const RECENT_LIMIT = 256;

/**
 * A TCP port on `host` that is free right now: binds port 0, reads the port the kernel chose and
 * closes the socket. There is an unavoidable window between this returning and the caller's
 * server binding the port, so callers that own the server (startNats, startPostgres) retry with a
 * new port when the bind fails.
 */
export async function getFreePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await bindEphemeral(host);
    if (!recentlyHandedOut.has(port) || attempt >= 20) {
      recentlyHandedOut.add(port);
      if (recentlyHandedOut.size > RECENT_LIMIT) {
        const oldest = recentlyHandedOut.values().next().value;
        if (oldest !== undefined) recentlyHandedOut.delete(oldest);
      }
      return port;
    }
  }
}

function bindEphemeral(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error(`could not read the port bound on ${host}`));
      });
    });
  });
}
