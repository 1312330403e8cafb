import http from "node:http";
import type { AgentSim } from "./agent-sim";
import { CommandError } from "./command-error";
import { parseFaultRule, parseFaultSpec } from "./faults";
import { isJsonObject, optionalString, requireString, type JsonObject } from "./fields";
import type { HeldRequest } from "./holds";
import { parseJsonObject, readBody, sendError, sendJson } from "./http-json";
import type { LatencyConfig } from "./latency";
import type { SimHost, SimHostStartOptions } from "./sim-host";

type Params = Record<string, string>;
type Route = {
  method: string;
  pattern: RegExp;
  keys: string[];
  run: (p: Params, body: JsonObject, url: URL, req: http.IncomingMessage, res: http.ServerResponse) => unknown;
};

/** Longest a `next` long-poll may wait per request; clients loop for longer waits. */
const MAX_WAIT_MS = 120_000;

/**
 * The sim's control endpoint (JSON over HTTP) — the out-of-process twin of the in-process API,
 * for the devstack and cross-process tests. Hosts are addressed by uuid or index. See README.
 */
export class ControlServer {
  private readonly server: http.Server;
  private readonly routes: Route[] = [];
  private port = 0;
  private bindHost = "127.0.0.1";

  constructor(private readonly sim: AgentSim) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.define();
  }

  get url(): string {
    return `http://${this.bindHost}:${this.port}`;
  }

  listen(port: number, host: string): Promise<void> {
    this.bindHost = host;
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        const address = this.server.address();
        this.port = typeof address === "object" && address ? address.port : port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private route(method: string, path: string, run: Route["run"]): void {
    const keys: string[] = [];
    const pattern = new RegExp(`^${path.replace(/:([a-zA-Z]+)/g, (_m, key: string) => {
      keys.push(key);
      return "([^/]+)";
    })}$`);
    this.routes.push({ method, pattern, keys, run });
  }

  private host(p: Params): SimHost {
    const ref = p["host"]!;
    const host = this.sim.find(ref);
    if (!host) throw CommandError.notFound("HOST_NOT_FOUND", `no simulated host ${ref}`);
    return host;
  }

  private define(): void {
    this.route("GET", "/hosts", () => ({
      hosts: this.sim.hosts.map((h, index) => ({
        index, hostUuid: h.uuid, url: h.url, port: h.port, listening: h.listening,
        // What the host will report on host/connect, so a launcher registers no more than that.
        cpuNum: h.state.facts.cpuNum, memoryBytes: h.state.facts.memoryBytes,
      })),
    }));
    this.route("GET", "/state", () => ({ hosts: this.sim.inspect() }));
    this.route("GET", "/hosts/:host/state", (p) => this.host(p).inspect());

    this.route("POST", "/hosts/:host/faults", (p, body) => {
      const fault = this.host(p).injectFault(parseFaultRule(body));
      return { id: fault.id };
    });
    this.route("GET", "/hosts/:host/faults", (p) => ({ faults: this.host(p).listFaults() }));
    this.route("DELETE", "/hosts/:host/faults", (p) => {
      this.host(p).clearFaults();
      return {};
    });
    this.route("DELETE", "/hosts/:host/faults/:id", (p) => {
      if (!this.host(p).removeFault(p["id"]!)) throw CommandError.notFound("FAULT_NOT_FOUND", `no fault ${p["id"]}`);
      return {};
    });

    this.route("PUT", "/latency", (_p, body) => {
      this.sim.setLatency(parseLatency(body));
      return {};
    });
    this.route("PUT", "/hosts/:host/latency", (p, body) => {
      this.host(p).setLatency(parseLatency(body));
      return {};
    });

    this.route("POST", "/hosts/:host/holds", (p, body) => {
      const command = requireString(body, "command");
      const times = body["times"];
      if (times !== undefined && (typeof times !== "number" || !Number.isSafeInteger(times) || times <= 0)) {
        throw CommandError.invalidField("times", "a positive integer");
      }
      const hold = this.host(p).hold(command, { times: times ?? 1 });
      return { holdId: hold.id };
    });
    this.route("GET", "/hosts/:host/holds", (p) => ({ holds: this.host(p).holdTable.list() }));
    this.route("POST", "/holds/:hold/next", async (p, _body, url, req, res) => {
      const hold = this.sim.findHold(p["hold"]!);
      if (!hold) throw CommandError.notFound("HOLD_NOT_FOUND", `no hold ${p["hold"]}`);
      const waitMs = Math.min(Number(url.searchParams.get("timeoutMs") ?? 30_000) || 30_000, MAX_WAIT_MS);
      const gone = new AbortController();
      // The response closing (client gone), not the socket: a keep-alive socket outlives requests.
      res.once("close", () => gone.abort());
      try {
        return describeHeld(await hold.next(waitMs, gone.signal));
      } catch (err) {
        if (err instanceof Error && err.name === "TimeoutError") throw new CommandError(408, "WAIT_TIMEOUT", err.message);
        throw err;
      }
    });
    this.route("DELETE", "/holds/:hold", (p) => {
      const hold = this.sim.findHold(p["hold"]!);
      if (!hold) throw CommandError.notFound("HOLD_NOT_FOUND", `no hold ${p["hold"]}`);
      hold.cancel();
      return {};
    });
    this.route("POST", "/held/:request/release", (p, body) => {
      const held = this.sim.findHeldRequest(p["request"]!);
      if (!held) throw CommandError.notFound("HELD_REQUEST_NOT_FOUND", `no held request ${p["request"]}`);
      held.release(body["fault"] === undefined ? undefined : parseFaultSpec(body["fault"], "fault."));
      return {};
    });

    this.route("POST", "/hosts/:host/volume-tasks/:task/finish", (p, body) => {
      const state = optionalString(body, "state") ?? "succeeded";
      if (state !== "succeeded" && state !== "failed" && state !== "cancelled") {
        throw CommandError.invalidField("state", "succeeded, failed or cancelled");
      }
      const task = this.host(p).finishVolumeTask(p["task"]!, state);
      if (!task) throw CommandError.notFound("VOLUME_TASK_NOT_FOUND", `no volume task ${p["task"]}`);
      return { task };
    });
    this.route("POST", "/hosts/:host/volume-tasks/:task/end-chunk", (p) => {
      const task = this.host(p).endVolumeTaskChunk(p["task"]!);
      if (!task) throw CommandError.notFound("VOLUME_TASK_NOT_FOUND", `no volume task ${p["task"]}`);
      return { task };
    });
    this.route("POST", "/hosts/:host/migrations/:vm/complete", (p) => {
      if (!this.host(p).completeMigration(p["vm"]!)) throw CommandError.notFound("MIGRATION_NOT_FOUND", `no memory copy of vm ${p["vm"]} is running`);
      return {};
    });
    this.route("GET", "/timeline", (_p, _body, url) => {
      const since = url.searchParams.get("since");
      if (since !== null && !/^\d{1,15}$/.test(since)) throw CommandError.invalidField("since", "a non-negative integer (a seq)");
      return { entries: this.sim.timeline(since === null ? undefined : Number(since)) };
    });
    this.route("POST", "/timeline/clear", () => {
      this.sim.clearTimeline();
      return {};
    });
    this.route("POST", "/hosts/:host/stop", async (p) => {
      await this.host(p).stop();
      return {};
    });
    this.route("POST", "/hosts/:host/start", async (p, body) => {
      await this.host(p).start(parseStartOptions(body));
      return {};
    });
    this.route("POST", "/hosts/:host/eips/clear", (p) => ({ cleared: this.host(p).clearEipRules() }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://control");
      const raw = await readBody(req);
      const candidates = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (candidates.length === 0) throw CommandError.notFound("NOT_FOUND", `no control endpoint ${url.pathname}`);
      const route = candidates.find((r) => r.method === req.method);
      if (!route) throw new CommandError(405, "METHOD_NOT_ALLOWED", `${url.pathname} does not accept ${req.method}`);
      const match = route.pattern.exec(url.pathname)!;
      const params: Params = {};
      route.keys.forEach((key, i) => (params[key] = decodeURIComponent(match[i + 1]!)));
      sendJson(res, 200, (await route.run(params, parseJsonObject(raw), url, req, res)) ?? {});
    } catch (err) {
      if (!res.destroyed) sendError(res, err);
    }
  }
}

function describeHeld(req: HeldRequest): Omit<HeldRequest, "release"> {
  const { release: _release, ...rest } = req;
  return rest;
}

/**
 * The body of `POST /hosts/:h/start`. Unknown fields are refused: a misspelt `loseEipRules` would
 * otherwise restart the host with its rules, and the test meant to see them lost would pass for
 * the wrong reason.
 */
function parseStartOptions(body: JsonObject): SimHostStartOptions {
  for (const field of Object.keys(body)) {
    if (field !== "loseEipRules") throw CommandError.badRequest("INVALID_FIELD", `unknown field: ${field} (start takes loseEipRules)`);
  }
  const lose = body["loseEipRules"];
  if (lose === undefined || lose === null) return {};
  if (typeof lose !== "boolean") throw CommandError.invalidField("loseEipRules", "a boolean");
  return { loseEipRules: lose };
}

function parseLatency(body: JsonObject): LatencyConfig {
  const out: LatencyConfig = {};
  const defaultMs = body["defaultMs"];
  if (defaultMs !== undefined) {
    if (typeof defaultMs !== "number" || !(defaultMs >= 0)) throw CommandError.invalidField("defaultMs", "a non-negative number");
    out.defaultMs = defaultMs;
  }
  const commands = body["commands"];
  if (commands !== undefined) {
    if (!isJsonObject(commands)) throw CommandError.invalidField("commands", "an object of command → ms");
    out.commands = {};
    for (const [command, ms] of Object.entries(commands)) {
      if (typeof ms !== "number" || !(ms >= 0)) throw CommandError.invalidField(`commands.${command}`, "a non-negative number");
      out.commands[command] = ms;
    }
  }
  return out;
}
