import type { ConnectionStats } from "./agent-http-server";
import type { FencingStats } from "./fences";
import type { JsonObject } from "./fields";
import { MigrationRunner } from "./migrations";
import type { VmMigrateStatusReply } from "@stratum/agent-protocol";
import type { HostFacts } from "./protocol";
import { VolumeTaskRunner, type VolumeTask, type VolumeTaskRunnerOptions } from "./volume-tasks";

export type VmState = "running" | "stopped";

/** A VM defined on a host. Stopped VMs stay defined (a later start resumes them); destroy removes. */
export interface VmRecord {
  vmUuid: string;
  state: VmState;
  cpuNum: number;
  memoryBytes: number;
  /** The full start command body, as sent (agents receive far more than they interpret). */
  spec: JsonObject;
  startedAt?: string;
  /** Host uuid the VM migrated from, if it arrived by migration. */
  migratedFrom?: string;
}

/** A vNIC attached to a VM on this host. Part of the VM: moves with it on migration, goes on destroy. */
export interface NicRule {
  nicUuid: string;
  vmUuid: string;
  mac?: string;
  ip?: string;
  l3NetworkUuid?: string;
  appliedAt: string;
}

/**
 * An elastic-IP rule (NAT vip ⇄ guest ip) applied on this host, keyed by eip uuid. Host-level:
 * it is NOT touched by VM stop/migrate/destroy — removing it is the management plane's job, which
 * is exactly what the EIP race tests check.
 */
export interface EipRule {
  eipUuid: string;
  vip: string;
  guestIp: string;
  nicUuid: string;
  vmUuid?: string;
  appliedAt: string;
}

/** Per-command counters. `executed` counts real runs: a deduplicated repeat does not run. */
export interface CommandStats {
  received: number;
  executed: number;
  deduplicated: number;
  faulted: number;
}

export interface CommandLogEntry {
  seq: number;
  at: string;
  command: string;
  taskId?: string;
  /** The `x-request-id` the caller sent: the request this command served. */
  requestId?: string;
  /** The `x-fencing-token` the caller sent, `<resource>=<token>`. */
  fence?: string;
  /** HTTP status answered, or what happened instead. */
  outcome: number | "reset" | "hang" | "closed";
  deduplicated: boolean;
  fault?: string;
}

/** A read-only copy of a host's state, for tests and the control endpoint. */
export interface HostSnapshot {
  hostUuid: string;
  url: string;
  facts: HostFacts;
  connection: { hostUuid?: string; connectedAt: string; count: number } | undefined;
  vms: VmRecord[];
  nics: NicRule[];
  eips: EipRule[];
  volumeTasks: VolumeTask[];
  /** The last migration of each VM that left this host. */
  migrations: VmMigrateStatusReply[];
  commands: Record<string, CommandStats>;
  /** Client connections: accepted, closed by the agent's idle timeout, open now, requests that raced an idle close. */
  connections: ConnectionStats;
  /** What fencing refused, and how often two senders acted on one resource at once. */
  fencing: FencingStats;
  /** The most recent commands (bounded), oldest first. */
  log: CommandLogEntry[];
}

const LOG_LIMIT = 500;

/** The mutable state of one simulated host. Handlers change it; nothing else does. */
export class HostState {
  readonly vms = new Map<string, VmRecord>();
  readonly nics = new Map<string, NicRule>();
  readonly eips = new Map<string, EipRule>();
  readonly volumeTasks: VolumeTaskRunner;
  readonly migrations = new MigrationRunner();
  readonly stats = new Map<string, CommandStats>();
  connection: HostSnapshot["connection"];
  private readonly log: CommandLogEntry[] = [];
  private seq = 0;

  constructor(readonly facts: HostFacts, volumeTaskOptions: VolumeTaskRunnerOptions = {}) {
    this.volumeTasks = new VolumeTaskRunner(volumeTaskOptions);
  }

  statsOf(command: string): CommandStats {
    let s = this.stats.get(command);
    if (!s) {
      s = { received: 0, executed: 0, deduplicated: 0, faulted: 0 };
      this.stats.set(command, s);
    }
    return s;
  }

  record(entry: Omit<CommandLogEntry, "seq" | "at">): void {
    this.log.push({ seq: ++this.seq, at: new Date().toISOString(), ...entry });
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
  }

  /** Removes a VM and the vNICs that belong to it; returns them (migration moves them). */
  takeVm(vmUuid: string): { vm: VmRecord; nics: NicRule[] } | undefined {
    const vm = this.vms.get(vmUuid);
    if (!vm) return undefined;
    this.vms.delete(vmUuid);
    const nics = [...this.nics.values()].filter((n) => n.vmUuid === vmUuid);
    for (const n of nics) this.nics.delete(n.nicUuid);
    return { vm, nics };
  }

  snapshot(url: string, connections: HostSnapshot["connections"], fencing: FencingStats): HostSnapshot {
    const clone = <T>(v: T): T => structuredClone(v);
    return {
      hostUuid: this.facts.hostUuid,
      url,
      facts: clone(this.facts),
      connection: clone(this.connection),
      vms: clone([...this.vms.values()]),
      nics: clone([...this.nics.values()]),
      eips: clone([...this.eips.values()]),
      volumeTasks: this.volumeTasks.list(),
      migrations: this.migrations.list(),
      commands: Object.fromEntries([...this.stats].map(([k, v]) => [k, { ...v }])),
      connections: { ...connections },
      fencing: { ...fencing },
      log: clone(this.log),
    };
  }
}
