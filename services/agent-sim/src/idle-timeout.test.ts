import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startAgentSim, type AgentSim } from "./index";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** A raw keep-alive HTTP/1.1 connection, so the test sees exactly what the agent sends and when it closes. */
class RawConnection {
  readonly socket: net.Socket;
  private buffer = "";
  private waiters: Array<() => void> = [];
  readonly closed: Promise<{ at: number; error: string | undefined }>;

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      for (const w of this.waiters.splice(0)) w();
    });
    let error: string | undefined;
    this.socket.on("error", (err: NodeJS.ErrnoException) => (error = err.code));
    this.closed = new Promise((resolve) => this.socket.on("close", () => resolve({ at: Date.now(), error })));
  }

  connected(): Promise<void> {
    return new Promise((resolve) => this.socket.once("connect", () => resolve()));
  }

  send(command: string, body: unknown = {}): void {
    const json = JSON.stringify(body);
    this.socket.write(`POST /${command} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  }

  /** Resolves with the head and body of the next complete response. */
  async response(): Promise<{ head: string; body: string; at: number }> {
    for (;;) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = this.buffer.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.slice(end + 4, end + 4 + length);
          this.buffer = this.buffer.slice(end + 4 + length);
          return { head, body, at: Date.now() };
        }
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("idle keep-alive close (like CherryPy socket_timeout)", () => {
  it("keeps the connection alive without advertising the timeout, then closes it after the socket timeout", async () => {
    sim = await startAgentSim({ socketTimeoutMs: 300 });
    const conn = new RawConnection(sim.host(0).port);
    conn.send("host/ping");
    const res = await conn.response();
    expect(res.head).toMatch(/^HTTP\/1\.1 200/);
    expect(res.head).toMatch(/\r\nconnection: keep-alive/i);
    expect(res.head).not.toMatch(/keep-alive:/i); // no `Keep-Alive: timeout=` header: the client cannot learn the timeout
    const closed = await conn.closed;
    const idle = closed.at - res.at;
    expect(idle).toBeGreaterThanOrEqual(280);
    expect(idle).toBeLessThan(800);
    expect(closed.error).toBeUndefined(); // a clean FIN, not a reset
  });

  it("each request re-arms the timer: a connection used more often than the timeout stays open", async () => {
    sim = await startAgentSim({ socketTimeoutMs: 300 });
    const conn = new RawConnection(sim.host(0).port);
    for (let i = 0; i < 5; i++) {
      conn.send("host/ping");
      await conn.response();
      await sleep(150);
    }
    expect(conn.socket.destroyed).toBe(false); // 750 ms on one connection, never 300 ms idle
    expect(sim.host(0).connectionCount).toBe(1);
    await conn.closed;
    await vi.waitFor(() => expect(sim!.host(0).connectionCount).toBe(0));
  });

  it("does not close a connection while its request is still running", async () => {
    sim = await startAgentSim({ socketTimeoutMs: 200, latency: { commands: { "host/ping": 400 } } });
    const conn = new RawConnection(sim.host(0).port);
    conn.send("host/ping");
    expect((await conn.response()).head).toMatch(/^HTTP\/1\.1 200/);
  });

  it("closes a connection that never sends a request", async () => {
    sim = await startAgentSim({ socketTimeoutMs: 200 });
    const conn = new RawConnection(sim.host(0).port);
    await conn.connected();
    const opened = Date.now();
    const closed = await conn.closed;
    expect(closed.at - opened).toBeGreaterThanOrEqual(180);
  });

  it("a request that reaches a connection the agent has closed is reset (close notice in flight)", async () => {
    sim = await startAgentSim({ socketTimeoutMs: 200, closeNoticeDelayMs: 300 });
    const conn = new RawConnection(sim.host(0).port);
    conn.send("host/ping");
    await conn.response();
    await sleep(300); // the agent closed at 200 ms; its FIN reaches us only at 500 ms
    conn.send("host/ping");
    const closed = await conn.closed;
    expect(closed.error).toBe("ECONNRESET");
    expect(sim.host(0).inspect().commands["host/ping"]!.received).toBe(1);
  });
});
