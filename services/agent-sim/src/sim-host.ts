import { createHash, randomUUID } from "node:crypto";
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentHttpServer, type ConnectionStats } from "./agent-http-server";
import { CommandError } from "./command-error";
import type { CommandHandler, CommandTable, HostDirectory, HostView } from "./commands/types";
import { FenceTable, parseFence, type Fence } from "./fences";
import { FaultTable, type FaultRule, type FaultSpec, type InjectedFault } from "./faults";
import type { JsonObject } from "./fields";
import { HoldTable, type Hold } from "./holds";
import { HostState, type HostSnapshot } from "./host-state";
import { parseJsonObject, readBody, sendError, sendJson } from "./http-json";
import { mergeLatency, resolveLatency, type LatencyConfig } from "./latency";
import {
  AGENT_VERSION, AgentErrorCode, DEFAULT_SIM_CPU_NUM, DEFAULT_SIM_MEMORY_BYTES, FENCING_TOKEN_HEADER, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN,
  type HostFacts,
} from "./protocol";
import { TaskCache, type CommandOutcome, type TaskCacheOptions, type TaskOwner } from "./task-cache";
import { Timeline } from "./timeline";
import type { VolumeTask } from "./volume-tasks";
import { DEFAULT_VOLUME_TASK_CHUNK_BYTES } from "@stratum/agent-protocol";

/** Per-host settings; anything omitted comes from the sim-wide options. */
export interface SimHostOptions {
  uuid?: string;
  /** Listen port; 0 or omitted picks a free one (unless the sim has a `basePort`). */
  port?: number;
  /** CPUs the host reports on `host/connect` (a positive integer). Default {@link DEFAULT_SIM_CPU_NUM}. */
  cpuNum?: number;
  /** Memory the host reports on `host/connect`, in bytes (a positive integer). Default {@link DEFAULT_SIM_MEMORY_BYTES}. */
  memoryBytes?: number;
  hypervisorType?: string;
  socketTimeoutMs?: number;
  closeNoticeDelayMs?: number;
  latency?: LatencyConfig;
  volumeTaskDurationMs?: number;
  volumeTaskCancelDelayMs?: number;
  /** Bytes a byte-counting volume task (one with `sizeBytes`) moves per chunk. Default 64 MiB. */
  chunkBytes?: number;
  /** Memory copy time of a `vm/migrate` that names no `durationMs`. Default 0: at once. */
  migrateDurationMs?: number;
}

/** How {@link SimHost.start} brings the agent back. */
export interface SimHostStartOptions {
  /** The host lost its elastic-IP rules while down (VMs and vNICs kept). Default false. */
  loseEipRules?: boolean;
}

/** What a host needs from the sim that owns it. */
export interface SimHostContext {
  readonly bindHost: string;
  readonly commands: CommandTable;
  readonly hosts: HostDirectory;
  readonly globalLatency: () => LatencyConfig;
  readonly taskCache: TaskCacheOptions;
  /** Where the host logs what happens (the sim's, shared by its hosts). */
  readonly timeline: Timeline;
}

/** Where a request's pipeline ended, for the command log. */
type Ending = number | "reset" | "hang" | "closed";
type PipelineEnd = { outcome: Ending; deduplicated: boolean; fault?: string };

/**
 * One simulated hypervisor agent: its own HTTP endpoint on its own port, its own state, and the
 * knobs tests turn (faults, holds, latency). Requests go through one pipeline:
 *
 *   parse → task-id dedup → hold → `before` fault → latency → handler → `after` fault → reply
 *
 * so every command gets the same realistic failure modes without handler code.
 */
export class SimHost implements HostView {
  readonly uuid: string;
  readonly state: HostState;
  readonly volumeTaskDurationMs: number;
  readonly chunkBytes: number;
  readonly migrateDurationMs: number;
  private readonly http: AgentHttpServer;
  private readonly faults = new FaultTable();
  private readonly fences = new FenceTable();
  private readonly holds: HoldTable;
  private tasks: TaskCache;
  private latency: LatencyConfig;
  private closing = new AbortController();
  private listenPort: number;
  private boundPort = 0;

  constructor(private readonly ctx: SimHostContext, options: SimHostOptions & { socketTimeoutMs: number }) {
    this.uuid = options.uuid ?? randomUUID();
    this.listenPort = options.port ?? 0;
    this.volumeTaskDurationMs = options.volumeTaskDurationMs ?? 5_000;
    this.chunkBytes = positiveInt("chunkBytes", options.chunkBytes, DEFAULT_VOLUME_TASK_CHUNK_BYTES);
    this.migrateDurationMs = nonNegativeInt("migrateDurationMs", options.migrateDurationMs, 0);
    this.latency = options.latency ?? {};
    this.holds = new HoldTable(this.uuid);
    this.tasks = new TaskCache(ctx.taskCache);
    this.state = new HostState(this.makeFacts(options), {
      ...(options.volumeTaskCancelDelayMs === undefined ? {} : { cancelDelayMs: options.volumeTaskCancelDelayMs }),
    });
    this.observe(ctx.timeline);
    this.http = new AgentHttpServer((req, res) => void this.handle(req, res), {
      socketTimeoutMs: options.socketTimeoutMs,
      ...(options.closeNoticeDelayMs === undefined ? {} : { closeNoticeDelayMs: options.closeNoticeDelayMs }),
    });
  }

  /** The agent URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  get url(): string {
    return `http://${this.ctx.bindHost}:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  get listening(): boolean {
    return this.http.server.listening;
  }

  /** Open client connections right now. */
  get connectionCount(): number {
    return this.http.connectionCount;
  }

  /** Client connections of this host (see {@link ConnectionStats}). */
  get connectionStats(): ConnectionStats {
    return this.http.connectionStats;
  }

  /**
   * Starts (or restarts, on the same port) the agent. A restart is a new agent process: new boot
   * id, and the task-id memory is gone (repeats of earlier task ids run again), while VMs and
   * rules survive (they live in the hypervisor, not the agent) — unless `loseEipRules`: the host
   * came back without its elastic-IP rules, like a rebooted host whose NAT table was not restored
   * (VMs and vNICs are kept). The rules go before the agent listens, so no command sees them.
   * Refused while the agent runs: a start that did nothing must not look like a lost NAT table
   * (use {@link clearEipRules} for that).
   */
  async start(options: SimHostStartOptions = {}): Promise<void> {
    if (this.listening) {
      if (options.loseEipRules === true) {
        throw CommandError.conflict("HOST_RUNNING", `host ${this.uuid} is running: stop it before a start that loses its EIP rules, or clear them`);
      }
      return;
    }
    if (options.loseEipRules === true) this.clearEipRules();
    if (this.closing.signal.aborted) this.closing = new AbortController();
    if (this.boundPort !== 0) {
      this.state.facts.bootId = randomUUID();
      this.state.facts.startedAt = new Date().toISOString();
      this.tasks = new TaskCache(this.ctx.taskCache);
    }
    this.boundPort = await this.http.listen(this.boundPort || this.listenPort, this.ctx.bindHost);
  }

  /**
   * Stops the agent as if its process died: connections are destroyed, in-flight requests never
   * answer, new connections are refused, running volume tasks fail. VMs and rules are kept, as
   * the hypervisor keeps them.
   */
  async stop(): Promise<void> {
    this.closing.abort();
    this.state.volumeTasks.stop();
    this.state.migrations.stop();
    await this.http.close();
  }

  /**
   * Drops every elastic-IP rule of the host now, without a restart (a flushed NAT table); VMs and
   * vNICs stay. Returns how many rules there were.
   */
  clearEipRules(): number {
    const count = this.state.eips.size;
    this.state.eips.clear();
    return count;
  }

  inspect(): HostSnapshot {
    return this.state.snapshot(this.url, this.http.connectionStats, this.fences.stats);
  }

  /** Injects a fault on this host (see {@link FaultRule}); `clear()` on the result removes it. */
  injectFault(rule: FaultRule): InjectedFault {
    return this.faults.add(rule);
  }

  listFaults(): ReturnType<FaultTable["list"]> {
    return this.faults.list();
  }

  removeFault(id: string): boolean {
    return this.faults.remove(id);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Holds the next `times` (default 1) requests for `command` (`*`: any) until released. */
  hold(command: string, options: { times?: number } = {}): Hold {
    return this.holds.add(command, options.times);
  }

  /** The holds of this host, for lookups by id from the control endpoint. */
  get holdTable(): HoldTable {
    return this.holds;
  }

  /** Merges into this host's latency (host settings win over the sim-wide ones). */
  setLatency(patch: LatencyConfig): void {
    this.latency = mergeLatency(this.latency, patch);
  }

  setSocketTimeout(ms: number): void {
    this.http.setSocketTimeout(ms);
  }

  finishVolumeTask(taskUuid: string, state?: "succeeded" | "failed" | "cancelled"): VolumeTask | undefined {
    return this.state.volumeTasks.finish(taskUuid, state);
  }

  waitForVolumeTaskExit(taskUuid: string): Promise<VolumeTask> {
    return this.state.volumeTasks.waitForExit(taskUuid);
  }

  /** Ends the chunk in progress of a byte task now (see `VolumeTaskRunner.endChunk`). */
  endVolumeTaskChunk(taskUuid: string): VolumeTask | undefined {
    return this.state.volumeTasks.endChunk(taskUuid);
  }

  /** Ends the running memory copy of `vmUuid` now, as if its time had come: the VM moves (if it still can). */
  completeMigration(vmUuid: string): boolean {
    return this.state.migrations.complete(vmUuid);
  }

  /** Aborts the running memory copy of `vmUuid`, as `vm/migrate/abort` does. */
  abortMigration(vmUuid: string): boolean {
    return this.state.migrations.abort(vmUuid);
  }

  /** Logs this host's volume tasks and migration copies on the sim's timeline as they happen. */
  private observe(timeline: Timeline): void {
    const tasks = this.state.volumeTasks.events;
    tasks.on("start", (t) => timeline.append(this.uuid, { event: "volume-task-start", taskUuid: t.taskUuid, volumeUuid: t.volumeUuid, kind: t.kind }));
    tasks.on("exit", (t) => timeline.append(this.uuid, { event: "volume-task-exit", taskUuid: t.taskUuid, volumeUuid: t.volumeUuid, kind: t.kind, state: t.state }));
    const copies = this.state.migrations.events;
    copies.on("copy-start", (m) => timeline.append(this.uuid, { event: "migrate-copy-start", vmUuid: m.vmUuid, volumeUuids: [...m.volumeUuids] }));
    copies.on("copy-end", (m) => {
      if (m.state !== "copying") timeline.append(this.uuid, { event: "migrate-copy-end", vmUuid: m.vmUuid, outcome: m.state });
    });
  }

  private makeFacts(options: SimHostOptions): HostFacts {
    return {
      hostUuid: this.uuid,
      hypervisorType: options.hypervisorType ?? "KVM",
      agentVersion: AGENT_VERSION,
      cpuNum: capacity("cpuNum", options.cpuNum, DEFAULT_SIM_CPU_NUM),
      cpuSockets: 2,
      memoryBytes: capacity("memoryBytes", options.memoryBytes, DEFAULT_SIM_MEMORY_BYTES),
      osDistribution: "stratum-sim",
      osVersion: "1.0",
      bootId: randomUUID(),
      startedAt: new Date().toISOString(),
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const command = (req.url ?? "/").split("?")[0]!.replace(/^\/+/, "");
    let body: JsonObject;
    let taskId: string | undefined;
    let requestId: string | undefined;
    let fence: Fence | undefined;
    let handler: CommandHandler | undefined;
    try {
      // Known before anything can fail, so even a refused request names the request it came from.
      const requestIdHeader = req.headers[REQUEST_ID_HEADER];
      if (typeof requestIdHeader === "string" && REQUEST_ID_PATTERN.test(requestIdHeader)) requestId = requestIdHeader;
      const raw = await readBody(req);
      handler = Object.hasOwn(this.ctx.commands, command) ? this.ctx.commands[command] : undefined;
      if (!handler) throw CommandError.notFound(AgentErrorCode.UNKNOWN_COMMAND, `unknown command: ${command}`);
      if (req.method !== "POST") throw new CommandError(405, AgentErrorCode.METHOD_NOT_ALLOWED, `${command} needs POST, got ${req.method}`);
      body = parseJsonObject(raw);
      const header = req.headers[TASK_ID_HEADER];
      if (header !== undefined) {
        if (typeof header !== "string" || !TASK_ID_PATTERN.test(header)) {
          throw CommandError.badRequest(AgentErrorCode.INVALID_TASK_ID, `invalid ${TASK_ID_HEADER} header`);
        }
        taskId = header;
      }
      if (requestIdHeader !== undefined && requestId === undefined) {
        // The agent logs it: a malformed one must not forge a log line, and is refused like a bad task id.
        throw CommandError.badRequest(AgentErrorCode.INVALID_REQUEST_ID, `invalid ${REQUEST_ID_HEADER} header`);
      }
      fence = parseFence(req.headers[FENCING_TOKEN_HEADER]);
    } catch (err) {
      if (req.socket.destroyed) return;
      sendError(res, err);
      this.state.record({ command, ...(requestId === undefined ? {} : { requestId }), outcome: err instanceof CommandError ? err.status : 500, deduplicated: false });
      return;
    }
    this.state.statsOf(command).received += 1;
    this.ctx.timeline.append(this.uuid, { event: "command", command, ...(taskId === undefined ? {} : { taskId }) });
    try {
      const ending = await this.fenced(fence, res, () => this.run(req, res, command, handler, body, taskId, requestId));
      if (ending !== undefined) this.state.record({ command, ...(taskId === undefined ? {} : { taskId }), ...(requestId === undefined ? {} : { requestId }), ...(fence ? { fence: `${fence.resource}=${fence.token}` } : {}), outcome: ending.outcome, deduplicated: ending.deduplicated, ...(ending.fault ? { fault: ending.fault } : {}) });
    } catch (err) {
      if (this.closing.signal.aborted) {
        // The sim is closing (an aborted sleep): the connection is already gone.
        req.socket.destroy();
        this.state.record({ command, ...(taskId === undefined ? {} : { taskId }), ...(requestId === undefined ? {} : { requestId }), outcome: "closed", deduplicated: false });
        return;
      }
      // A bug in a handler (say, an answer JSON cannot encode) is a 500 for this request, as a
      // real agent's would be, never a crash of every simulated host.
      process.emitWarning(`agent-sim: ${command} failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent && !req.socket.destroyed) sendError(res, new CommandError(500, AgentErrorCode.INTERNAL, `${command} failed inside the agent`));
      else req.socket.destroy();
      this.state.record({ command, ...(taskId === undefined ? {} : { taskId }), ...(requestId === undefined ? {} : { requestId }), outcome: 500, deduplicated: false });
    }
  }

  /**
   * Fencing first, before the task-id cache: a stale owner's repeat of a task it started is
   * refused like any of its commands. A newer token waits here for older commands still running.
   */
  private async fenced(fence: Fence | undefined, res: http.ServerResponse, run: () => Promise<PipelineEnd | undefined>): Promise<PipelineEnd | undefined> {
    if (!fence) return run();
    let leave: () => void;
    try {
      leave = await this.fences.enter(fence);
    } catch (err) {
      sendError(res, err);
      return { outcome: err instanceof CommandError ? err.status : 500, deduplicated: false };
    }
    // A command whose caller hung up (it timed out) stops counting as running: a newer owner
    // does not wait behind a hypervisor call nobody waits for.
    res.once("close", leave);
    try {
      return await run();
    } finally {
      leave();
    }
  }

  private async run(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    command: string,
    handler: CommandHandler,
    body: JsonObject,
    taskId: string | undefined,
    requestId: string | undefined,
  ): Promise<{ outcome: Ending; deduplicated: boolean; fault?: string } | undefined> {
    const stats = this.state.statsOf(command);
    const signal = this.closing.signal;

    // 1. Task-id dedup: a repeat is answered from the first execution, waiting for it if needed.
    let owner: TaskOwner | undefined;
    // A task id names one request: the same id with another body is a caller's bug, and answering
    // it with the first request's result would hide that the second never ran.
    const fingerprint = taskId === undefined ? "" : createHash("sha1").update(canonicalJson(body)).digest("base64url");
    while (taskId !== undefined) {
      const claim = this.tasks.claim(taskId, command, fingerprint);
      if (claim.kind === "owner") {
        owner = claim;
        break;
      }
      if (claim.command !== command) {
        const err = CommandError.conflict(AgentErrorCode.TASK_ID_CONFLICT, `task id ${taskId} was used for ${claim.command}, not ${command}`);
        sendError(res, err);
        return { outcome: err.status, deduplicated: false };
      }
      if (claim.fingerprint !== fingerprint) {
        const err = CommandError.conflict(AgentErrorCode.TASK_ID_CONFLICT, `task id ${taskId} was used for another ${command} request (different body)`);
        sendError(res, err);
        return { outcome: err.status, deduplicated: false };
      }
      const first = await untilClosed(claim.outcome, signal);
      if (first === CLOSED) return { outcome: "closed", deduplicated: true };
      if (first === undefined) continue; // the first was dropped before running: run it now
      stats.deduplicated += 1;
      sendJson(res, first.status, first.body);
      return { outcome: first.status, deduplicated: true };
    }

    try {
      // 2. Hold: the test decides when (and with which fault) this request proceeds.
      let fault: FaultSpec | undefined;
      let released = false;
      const hold = this.holds.match(command);
      if (hold) {
        const { release } = hold.capture(command, taskId, structuredClone(body), signal);
        const result = await release;
        if (!result.released) {
          return { outcome: "closed", deduplicated: false };
        }
        fault = result.fault;
        released = true;
      }
      if (!released) fault = this.faults.take(command);
      if (fault) stats.faulted += 1;

      // 3. Faults that hit before the command runs: it does not run, its task id is forgotten.
      if (fault && (fault.phase ?? "before") === "before") {
        switch (fault.kind) {
          case "reset":
            req.socket.resetAndDestroy();
            return { outcome: "reset", deduplicated: false, fault: "reset" };
          case "hang":
            // Stuck before running: a repeat with the same task id waits on it, as on a real agent.
            await untilClosed(new Promise<never>(() => {}), signal);
            return { outcome: "hang", deduplicated: false, fault: "hang" };
          case "http500": {
            sendJson(res, fault.status ?? 500, injectedErrorBody(fault, command));
            return { outcome: fault.status ?? 500, deduplicated: false, fault: "http500" };
          }
          case "slow":
            await delay(fault.delayMs ?? 0, signal);
            break;
        }
      }

      // 4. Run the command.
      await delay(resolveLatency(command, this.latency, this.ctx.globalLatency()), signal);
      stats.executed += 1;
      let outcome: CommandOutcome;
      try {
        const result = await handler({ command, body, taskId, requestId, host: this, hosts: this.ctx.hosts });
        outcome = { status: 200, body: result ?? {} };
      } catch (err) {
        outcome = err instanceof CommandError
          ? { status: err.status, body: err.toBody() }
          : { status: 500, body: { error: { code: AgentErrorCode.INTERNAL, message: err instanceof Error ? err.message : String(err) } } };
      }
      owner?.settle(outcome);

      // 5. Faults that hit after the command ran: the reply is lost or replaced; the cache keeps the real answer.
      if (fault && fault.phase === "after") {
        switch (fault.kind) {
          case "reset":
            req.socket.resetAndDestroy();
            return { outcome: "reset", deduplicated: false, fault: "reset" };
          case "hang":
            await untilClosed(new Promise<never>(() => {}), signal);
            return { outcome: "hang", deduplicated: false, fault: "hang" };
          case "http500":
            sendJson(res, fault.status ?? 500, injectedErrorBody(fault, command));
            return { outcome: fault.status ?? 500, deduplicated: false, fault: "http500" };
          case "slow":
            await delay(fault.delayMs ?? 0, signal);
            break;
        }
      }
      sendJson(res, outcome.status, outcome.body);
      return { outcome: outcome.status, deduplicated: false, ...(fault ? { fault: fault.kind } : {}) };
    } finally {
      // Whatever ended the pipeline (fault, sim stop), an unsettled task id must not block repeats forever.
      owner?.drop();
    }
  }
}

const CLOSED = Symbol("closed");

/** A host's capacity fact: what the operator configured, or the default; anything else is refused at once. */
function capacity(field: "cpuNum" | "memoryBytes", value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`simulated host ${field} must be a positive integer, got ${value}`);
  return value;
}


function positiveInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`simulated host ${field} must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`simulated host ${field} must be a non-negative integer, got ${value}`);
  return value;
}

/** Sleeps `ms` (rejecting when the host stops); 0 does not wait a timer tick. */
async function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await sleep(ms, undefined, { signal });
  else signal.throwIfAborted();
}

/** Resolves with `promise`, or with CLOSED when the host stops (so no pipeline outlives it). */
function untilClosed<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof CLOSED> {
  if (signal.aborted) return Promise.resolve(CLOSED);
  return new Promise((resolve) => {
    const onAbort = (): void => resolve(CLOSED);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve(CLOSED);
      },
    );
  });
}

function injectedErrorBody(fault: FaultSpec, command: string): unknown {
  return { error: { code: AgentErrorCode.INJECTED_FAULT, message: fault.message ?? `injected ${fault.status ?? 500} on ${command}` } };
}

/** JSON with object keys sorted, so two bodies that differ only in key order fingerprint alike. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
