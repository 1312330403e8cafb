import { Agent } from "undici";

/** Default cap on idle keep-alive reuse: half of the agent's 10 s socket timeout (CherryPy). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface AgentDispatcherOptions {
  /**
   * How long an idle connection may be kept for reuse. MUST stay below the agent's socket
   * timeout (10–15 s on real agents), with margin for timer slack and network delay.
   *
   * Why: an agent closes a keep-alive connection after it has been idle for its socket timeout
   * and does not say so (CherryPy sends no `Keep-Alive: timeout=` header). A client that keeps the
   * connection longer reuses it just as the agent closes it and the request dies with
   * ECONNRESET / "other side closed" (ZStack TIC-5970, seed 002). With the cap below the agent's
   * timeout the client is always the side that closes an idle connection, so it never sends on
   * one the agent is closing. undici detects a close that has already *arrived* before reusing a
   * socket, but not one still in flight — only the cap removes that race.
   */
  keepAliveTimeoutMs?: number;
  /** Connections per agent (origin). Bounded so one busy host cannot take every socket. Default 8. */
  connectionsPerHost?: number;
  /** TCP connect timeout. Default 5,000 ms. */
  connectTimeoutMs?: number;
}

/**
 * One undici `Agent` for every agent host: it keeps one `Pool` per origin, so each host gets its
 * own bounded set of keep-alive connections.
 *
 * Eviction (verified in undici 7's `lib/dispatcher/client-h1.js`): when a connection becomes idle
 * undici arms a native timer of `keepAliveTimeout` (`TIMEOUT_KEEP_ALIVE`, deliberately not its
 * coarse "fast" timers) and destroys the socket when it fires, removing it from the pool — so no
 * separate evictor is needed, unlike Apache HttpAsyncClient in the ZStack fix. A server
 * `Keep-Alive: timeout=` hint would override `keepAliveTimeout` (minus
 * `keepAliveTimeoutThreshold`), but only up to `keepAliveMaxTimeout`, which we set to the cap too,
 * so no hint can stretch reuse past it. Before reusing an idle socket undici also yields one
 * event-loop turn to notice a FIN/RST that already arrived.
 *
 * Per-request `headersTimeout`/`bodyTimeout` are disabled here: the client enforces one deadline
 * per call (undici's 300 s defaults would cut a 15-minute migration short).
 */
export function createAgentDispatcher(options: AgentDispatcherOptions = {}): Agent {
  const keepAlive = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  if (!Number.isFinite(keepAlive) || keepAlive <= 0) throw new RangeError("keepAliveTimeoutMs must be a positive number");
  return new Agent({
    keepAliveTimeout: keepAlive,
    keepAliveMaxTimeout: keepAlive,
    connections: options.connectionsPerHost ?? 8,
    pipelining: 1,
    connect: { timeout: options.connectTimeoutMs ?? 5_000 },
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}
