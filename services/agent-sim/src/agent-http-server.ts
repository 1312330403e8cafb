import http from "node:http";
import type { Socket } from "node:net";

export interface AgentHttpServerOptions {
  /**
   * Idle time after which the agent closes a keep-alive connection (CherryPy's `socket_timeout`).
   * Measured from the end of the last response (or from accept). Never advertised to clients.
   */
  socketTimeoutMs: number;
  /**
   * How long after the agent closes an idle connection the client learns of it — the network
   * delay of the FIN. During this window the agent already treats the connection as closed: a
   * request that reaches it is answered with a TCP RST, as a real kernel does for data arriving
   * at a closed socket. 0 (the default) is loopback: the FIN is visible at once.
   */
  closeNoticeDelayMs?: number;
}

export interface ConnectionStats {
  accepted: number;
  idleClosed: number;
  open: number;
  racedIdleClose: number;
}

interface SocketState {
  active: number;
  timer: NodeJS.Timeout | undefined;
  /** The agent has closed this connection (its FIN may still be "in flight"). */
  closed: boolean;
}

/**
 * An HTTP server that closes idle keep-alive connections the way CherryPy does, which Node's own
 * keep-alive handling does not:
 *
 * - Node's `server.keepAliveTimeout` also sends `Keep-Alive: timeout=N` on every response, which
 *   lets a client (undici does) learn the timeout and stop reusing connections in time. CherryPy
 *   sends no such header, so the client cannot learn it, and only a client-side keep-alive cap
 *   protects it. We set `keepAliveTimeout = 0` (no header, no Node timer) and time idle sockets
 *   ourselves.
 * - The close is a real close (`destroy()`): a request racing it hits a closed socket and is
 *   reset, which is the failure the client's cap must prevent (ZStack seed 002).
 *
 * The idle timer of a socket is armed on accept and whenever its last in-flight response ends,
 * and disarmed when a request arrives.
 */
export class AgentHttpServer {
  readonly server: http.Server;
  private readonly sockets = new Map<Socket, SocketState>();
  private socketTimeoutMs: number;
  private readonly closeNoticeDelayMs: number;
  private accepted = 0;
  private idleClosed = 0;
  private raced = 0;

  constructor(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, options: AgentHttpServerOptions) {
    this.socketTimeoutMs = options.socketTimeoutMs;
    this.closeNoticeDelayMs = options.closeNoticeDelayMs ?? 0;
    this.server = http.createServer();
    // 0 disables both Node's keep-alive timer and its `Keep-Alive: timeout=` response header.
    this.server.keepAliveTimeout = 0;
    this.server.on("connection", (socket: Socket) => this.onConnection(socket));
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      const state = this.sockets.get(req.socket);
      if (state?.closed) {
        // The request reached a connection the agent had already closed: RST, as a kernel would.
        this.raced += 1;
        req.socket.resetAndDestroy();
        return;
      }
      if (state) {
        state.active += 1;
        this.disarm(state);
        res.once("close", () => {
          state.active -= 1;
          if (state.active === 0 && !req.socket.destroyed) this.arm(req.socket, state);
        });
      }
      handler(req, res);
    });
  }

  /** Number of open client connections (tests use it to see idle closes). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /**
   * Connections accepted since start, closed by the agent for idleness, open now, and requests
   * that raced an idle close (reached a connection the agent had closed, and were reset).
   */
  get connectionStats(): ConnectionStats {
    return { accepted: this.accepted, idleClosed: this.idleClosed, open: this.sockets.size, racedIdleClose: this.raced };
  }

  setSocketTimeout(ms: number): void {
    this.socketTimeoutMs = ms;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const address = this.server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /** Stops listening and destroys every connection, in flight or idle. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        this.destroyAll();
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.destroyAll();
    });
  }

  private destroyAll(): void {
    for (const [socket, state] of this.sockets) {
      this.disarm(state);
      socket.destroy();
    }
    this.sockets.clear();
  }

  private onConnection(socket: Socket): void {
    this.accepted += 1;
    const state: SocketState = { active: 0, timer: undefined, closed: false };
    this.sockets.set(socket, state);
    socket.once("close", () => {
      this.disarm(state);
      this.sockets.delete(socket);
    });
    this.arm(socket, state);
  }

  private arm(socket: Socket, state: SocketState): void {
    this.disarm(state);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (state.active > 0 || socket.destroyed) return;
      this.idleClosed += 1;
      if (this.closeNoticeDelayMs <= 0) {
        socket.destroy();
        return;
      }
      state.closed = true;
      const notice = setTimeout(() => socket.destroy(), this.closeNoticeDelayMs);
      socket.once("close", () => clearTimeout(notice));
    }, this.socketTimeoutMs);
  }

  private disarm(state: SocketState): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
  }
}
