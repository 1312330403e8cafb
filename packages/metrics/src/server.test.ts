import { afterEach, describe, expect, it } from "vitest";
import { Counter, Registry } from "prom-client";
import { startMetricsServer, type MetricsServer } from "./server";
import { parseMetrics, valueOf } from "./test-support";

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe("startMetricsServer", () => {
  it("serves GET /metrics in the Prometheus text format, 404 elsewhere, 405 for other methods", async () => {
    const registry = new Registry();
    const hits = new Counter({ name: "test_hits_total", help: "hits", registers: [registry] });
    hits.inc(3);
    const server = await startMetricsServer({ host: "127.0.0.1", port: 0, registry });
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);

    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(valueOf(parseMetrics(await res.text()), "test_hits_total")).toBe(3);

    hits.inc();
    expect(valueOf(parseMetrics(await (await fetch(`${server.url}?x=1`)).text()), "test_hits_total")).toBe(4);
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metricsx`)).status).toBe(404);
    const post = await fetch(server.url, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("answers 500 naming the cause when a collector fails, and keeps serving", async () => {
    const registry = new Registry();
    new Counter({ name: "test_broken_total", help: "broken", registers: [registry], collect() { throw new Error("collector bug"); } });
    const server = await startMetricsServer({ host: "127.0.0.1", port: 0, registry });
    servers.push(server);
    const res = await fetch(server.url);
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("collector bug");
    expect((await fetch(server.url)).status).toBe(500);
  });

  it("refuses bad options naming them, and fails to start on a port in use", async () => {
    const registry = new Registry();
    await expect(startMetricsServer({ host: "127.0.0.1", port: 70_000, registry })).rejects.toThrow(/port must be an integer in 0\.\.65535/);
    await expect(startMetricsServer({ host: "", port: 0, registry })).rejects.toThrow(/host must be a non-empty string/);
    await expect(startMetricsServer({ host: "127.0.0.1", port: 0, registry: {} as never })).rejects.toThrow(/registry must be a prom-client Registry/);
    const first = await startMetricsServer({ host: "127.0.0.1", port: 0, registry });
    servers.push(first);
    await expect(startMetricsServer({ host: "127.0.0.1", port: first.port, registry })).rejects.toThrow(/EADDRINUSE/);
  });
});
