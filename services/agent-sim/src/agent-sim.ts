import { defaultCommands } from "./commands/index";
import type { CommandTable, HostDirectory } from "./commands/types";
import { ControlServer } from "./control-server";
import type { HeldRequest, Hold } from "./holds";
import type { HostSnapshot } from "./host-state";
import { mergeLatency, type LatencyConfig } from "./latency";
import { SimHost, type SimHostOptions } from "./sim-host";
import type { TaskCacheOptions } from "./task-cache";
import { Timeline, type TimelineEntry } from "./timeline";

export interface AgentSimOptions {
  /** How many hosts, or one options object per host. Default 1. */
  hosts?: number | SimHostOptions[];
  /** Address every endpoint binds to. Default `127.0.0.1`. */
  bindHost?: string;
  /** Host `i` listens on `basePort + i`; omitted: free ports. */
  basePort?: number;
  /** Agent idle keep-alive close (CherryPy `socket_timeout`). Default 10,000 ms. */
  socketTimeoutMs?: number;
  /** Network delay of the idle-close FIN (see `AgentHttpServerOptions`). Default 0. */
  closeNoticeDelayMs?: number;
  /** Sim-wide latency: a number is the default for every command. */
  latency?: number | LatencyConfig;
  /** Control endpoint port: a number (0 = free port) starts it; omitted or false: none. */
  controlPort?: number | false;
  /** Extra commands, or replacements for built-in ones, on every host. */
  commands?: CommandTable;
  /** Task-id memory per host. Default 10,000 entries, 10 minutes. */
  taskCache?: TaskCacheOptions;
  /** Default duration of a volume task. Default 5,000 ms. */
  volumeTaskDurationMs?: number;
  /** Time a cancelled volume task takes to exit. Default 0. */
  volumeTaskCancelDelayMs?: number;
  /** Bytes a byte-counting volume task moves per chunk. Default 64 MiB. */
  chunkBytes?: number;
  /** Memory copy time of a migration that names none. Default 0: at once. */
  migrateDurationMs?: number;
  /** Entries the timeline keeps. Default 100,000. */
  timelineLimit?: number;
}

/**
 * A set of simulated hypervisor agents in one process, plus an optional control endpoint.
 * Tests drive it in-process; the devstack runs it through the CLI (`src/main.ts`).
 */
export class AgentSim implements HostDirectory {
  private readonly hostList: SimHost[] = [];
  private globalLatency: LatencyConfig;
  private control: ControlServer | undefined;
  private readonly commands: CommandTable;
  private readonly events: Timeline;

  private constructor(private readonly options: AgentSimOptions) {
    const latency = options.latency;
    this.globalLatency = typeof latency === "number" ? { defaultMs: latency } : (latency ?? {});
    this.commands = { ...defaultCommands, ...options.commands };
    this.events = new Timeline(options.timelineLimit);
  }

  static async start(options: AgentSimOptions = {}): Promise<AgentSim> {
    const sim = new AgentSim(options);
    try {
      const specs = typeof options.hosts === "number" || options.hosts === undefined
        ? Array.from({ length: options.hosts ?? 1 }, () => ({}))
        : options.hosts;
      for (const spec of specs) await sim.addHost(spec);
      if (options.controlPort !== undefined && options.controlPort !== false) {
        sim.control = new ControlServer(sim);
        await sim.control.listen(options.controlPort, options.bindHost ?? "127.0.0.1");
      }
      return sim;
    } catch (err) {
      await sim.close();
      throw err;
    }
  }

  get hosts(): readonly SimHost[] {
    return this.hostList;
  }

  /** The control endpoint's base URL, if it was started. */
  get controlUrl(): string | undefined {
    return this.control?.url;
  }

  /** Adds (and starts) one more host. */
  async addHost(options: SimHostOptions = {}): Promise<SimHost> {
    const index = this.hostList.length;
    const port = options.port ?? (this.options.basePort === undefined ? 0 : this.options.basePort + index);
    const host = new SimHost(
      {
        bindHost: this.options.bindHost ?? "127.0.0.1",
        commands: this.commands,
        hosts: this,
        globalLatency: () => this.globalLatency,
        taskCache: this.options.taskCache ?? {},
        timeline: this.events,
      },
      {
        ...options,
        port,
        socketTimeoutMs: options.socketTimeoutMs ?? this.options.socketTimeoutMs ?? 10_000,
        ...pick("closeNoticeDelayMs", options.closeNoticeDelayMs ?? this.options.closeNoticeDelayMs),
        ...pick("volumeTaskDurationMs", options.volumeTaskDurationMs ?? this.options.volumeTaskDurationMs),
        ...pick("volumeTaskCancelDelayMs", options.volumeTaskCancelDelayMs ?? this.options.volumeTaskCancelDelayMs),
        ...pick("chunkBytes", options.chunkBytes ?? this.options.chunkBytes),
        ...pick("migrateDurationMs", options.migrateDurationMs ?? this.options.migrateDurationMs),
      },
    );
    if (this.find(host.uuid)) throw new Error(`duplicate host uuid ${host.uuid}`);
    this.hostList.push(host);
    await host.start();
    return host;
  }

  /** A host by index, uuid or agent URL; throws if there is none. */
  host(ref: number | string): SimHost {
    const host = this.find(ref);
    if (!host) throw new Error(`no simulated host ${String(ref)}`);
    return host;
  }

  /** A host by index, uuid or agent URL (trailing slash ignored). */
  find(ref: number | string): SimHost | undefined {
    if (typeof ref === "number") return this.hostList[ref];
    const url = ref.replace(/\/+$/, "");
    return this.hostList.find((h) => h.uuid === ref || h.url === url) ?? (/^\d+$/.test(ref) ? this.hostList[Number(ref)] : undefined);
  }

  /** Merges into the sim-wide latency. */
  setLatency(patch: LatencyConfig): void {
    this.globalLatency = mergeLatency(this.globalLatency, patch);
  }

  inspect(): HostSnapshot[] {
    return this.hostList.map((h) => h.inspect());
  }

  /**
   * A copy of the timeline: every host's command arrivals, volume task starts and exits, and
   * migration copies, in the order they happened (entries with seq > `since` only, when given).
   */
  timeline(since?: number): TimelineEntry[] {
    return this.events.list(since);
  }

  /** Forgets the timeline's entries (seq keeps counting, so cursors stay valid). */
  clearTimeline(): void {
    this.events.clear();
  }

  /** Shorthand for `host(ref).hold(command, options)`. */
  hold(ref: number | string, command: string, options: { times?: number } = {}): Hold {
    return this.host(ref).hold(command, options);
  }

  /** An unreleased held request on any host, by id. */
  findHeldRequest(requestId: string): HeldRequest | undefined {
    for (const host of this.hostList) {
      const req = host.holdTable.findRequest(requestId);
      if (req) return req;
    }
    return undefined;
  }

  findHold(holdId: string): Hold | undefined {
    for (const host of this.hostList) {
      const hold = host.holdTable.get(holdId);
      if (hold) return hold;
    }
    return undefined;
  }

  /** Stops every host and the control endpoint; held and hung requests end with their connections. */
  async close(): Promise<void> {
    await Promise.all([...this.hostList.map((h) => h.stop()), this.control?.close()]);
  }
}

function pick<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Starts a sim: `const sim = await startAgentSim({ hosts: 3, socketTimeoutMs: 1000 })`. */
export function startAgentSim(options: AgentSimOptions = {}): Promise<AgentSim> {
  return AgentSim.start(options);
}
