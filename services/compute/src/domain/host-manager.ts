import { isFenced } from "@stratum/agent-client";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { errorMessage, Code, StratumError, type Logger } from "@stratum/core";
import type { HostAgents, HostCallBound } from "../clients/agents";
import type { HostStore } from "../store/host-store";
import type { VmStore } from "../store/vm-store";
import type { HostRow, HostStateValue } from "../store/schema";

export interface HostSpec {
  uuid: string;
  name: string;
  agentUrl: string;
  cpuCapacity: number;
  memoryCapacity: number;
  clientRequestId: string;
}

export interface HostManagerDeps {
  hosts: HostStore;
  vms: VmStore;
  agents: HostAgents;
  queue: ChainTaskQueue;
  log: Logger;
  /**
   * Told once a reconnected host's VM states are synced: its EIP reconcile (network's
   * ReconcileHostEips), marked durably by the Connected write, is due now.
   */
  reconnected?: (hostUuid: string) => void;
}

/** Default period of the owner's pings to each host's agent. */
export const DEFAULT_PING_INTERVAL_MS = 5_000;

/**
 * Hosts: add (with the agent handshake), operator state, delete, and the connection tracking done
 * by the replica that owns each host: a ping every interval, Disconnected when it fails, an
 * automatic reconnect (handshake) when it answers again or when the agent restarted. Host
 * mutations run under `host-<uuid>`, and pings are coalesced there: a ping that finds another one
 * still pending shares it instead of piling up behind a slow agent.
 *
 * The pinger's agent calls (ping and handshake) are bounded by one ping interval (or their
 * command's policy when that is shorter), not by the policy alone (`host/connect`: 30 s):
 * - A ping that has not answered when the next one is due has missed its round: the host is
 *   marked Disconnected after one hung ping, i.e. within one interval + one interval, and the
 *   next round's verdict is never stale by more than that.
 * - The pinger's handshake runs inside `host-<uuid>` (so its Connected/Disconnected write and the
 *   VM state sync are ordered with delete, state changes and explicit reconnects, as every host
 *   mutation is), but a hung one then holds that queue only until its one-interval deadline: an
 *   operator call or the next round waits at most that long, and the next round shakes hands
 *   again. The other design — the handshake outside the queue with a single-flight guard — would
 *   free the queue but not the guard: an agent that recovers while the first handshake still
 *   hangs (a hang is not undone by the agent recovering) would be reconnected only when that
 *   handshake's full 30 s ran out, and its result would need re-ordering against the mutations
 *   that ran meanwhile.
 * An explicit ReconnectHost keeps the policy's deadline (and the caller's): the operator asked
 * for this handshake and waits for its real outcome.
 */
export class HostManager {
  #timer: NodeJS.Timeout | undefined;
  #listing = false;
  /** The pinger's period, and the bound of each of its agent calls (see the class comment). */
  #pingIntervalMs = DEFAULT_PING_INTERVAL_MS;

  constructor(private readonly d: HostManagerDeps) {}

  /**
   * Registers a host and connects it. If the handshake fails the host is not kept — the caller
   * gets the agent's error (naming the URL and command) and nothing changed — because a host
   * added with a wrong URL would otherwise sit Disconnected until someone deletes it.
   * The capacity offered may not exceed what the agent reports: the host would accept VMs its
   * hypervisor cannot run. (A retry with the same client request id is answered by the serving
   * chain with the first outcome.)
   */
  add(spec: HostSpec, signal?: AbortSignal): Promise<HostRow> {
    return this.#serialized(spec.uuid, "add-host", signal, async () => {
      const row = await this.d.hosts.insert({
        uuid: spec.uuid,
        name: spec.name,
        agentUrl: spec.agentUrl,
        cpuCapacity: spec.cpuCapacity,
        memoryCapacity: spec.memoryCapacity,
        clientRequestId: spec.clientRequestId || null,
      });
      try {
        const facts = await this.d.agents.connect(row, signal);
        assertAgentHas(spec, facts);
        const connected = await this.d.hosts.setStatus(row.uuid, "Connected", { lastError: "", agentBootId: facts.bootId, seen: true, added: true, fence: row.fence });
        return written(connected, row.uuid);
      } catch (e) {
        await this.d.hosts.deleteIfEmpty(row.uuid);
        throw e;
      }
    });
  }

  /**
   * Runs the handshake now, then the VM state sync; the host is recorded Disconnected and the
   * agent's error thrown if the handshake fails.
   */
  reconnect(uuid: string, signal?: AbortSignal): Promise<HostRow> {
    return this.#serialized(uuid, "reconnect-host", signal, async () => {
      const { row, error } = await this.#handshake(await this.get(uuid), signal);
      if (error !== undefined) throw error;
      await this.#syncAfterConnect(row);
      return row;
    });
  }

  changeState(uuid: string, state: HostStateValue, signal?: AbortSignal): Promise<HostRow> {
    return this.#serialized(uuid, "change-host-state", signal, async () => {
      const row = await this.d.hosts.setState(uuid, state);
      if (!row) throw StratumError.notFound("host", uuid);
      return row;
    });
  }

  /** Deletes a host; refused with FAILED_PRECONDITION `HOST_HAS_VMS` while VMs are placed on it. */
  delete(uuid: string, signal?: AbortSignal): Promise<void> {
    return this.#serialized(uuid, "delete-host", signal, async () => {
      const outcome = await this.d.hosts.deleteIfEmpty(uuid);
      if (outcome === "not-found") throw StratumError.notFound("host", uuid);
      if (outcome === "has-vms") {
        const n = await this.d.hosts.vmCount(uuid);
        throw new StratumError(Code.FAILED_PRECONDITION, `host ${uuid} still has ${n} VM(s): destroy or migrate them first`, { reason: "HOST_HAS_VMS", resources: { hostUuid: uuid } });
      }
    });
  }

  async get(uuid: string): Promise<HostRow> {
    const row = await this.d.hosts.get(uuid);
    if (!row) throw StratumError.notFound("host", uuid);
    return row;
  }

  /** Starts pinging, every `intervalMs`, the hosts that `owns` says this replica owns. */
  startPinging(owns: (hostUuid: string) => boolean, intervalMs = DEFAULT_PING_INTERVAL_MS): void {
    this.#pingIntervalMs = intervalMs;
    // A round that cannot even list the hosts (Postgres away) is logged and the next one tries
    // again: an unhandled rejection here would take the whole replica down.
    this.#timer = setInterval(() => this.pingOwned(owns).catch((e) => this.d.log.warn("host ping round failed", { error: errorMessage(e) })), intervalMs);
    this.#timer.unref();
  }

  stopPinging(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One round of pings over the owned hosts (exposed so tests can drive it without waiting).
   * Each host's ping is started, not awaited: a host whose agent hangs must not delay the others'
   * next round, and a ping still pending for a host absorbs the next one (dedup).
   */
  async pingOwned(owns: (hostUuid: string) => boolean): Promise<void> {
    if (this.#listing) return; // the previous round is still reading the host list
    this.#listing = true;
    let uuids: string[];
    try {
      uuids = (await this.d.hosts.allUuids()).filter(owns);
    } finally {
      this.#listing = false;
    }
    for (const uuid of uuids) {
      this.ping(uuid).catch((e) => this.d.log.warn("host ping failed", { hostUuid: uuid, error: errorMessage(e) }));
    }
  }

  /**
   * Pings one host (or, when it is not Connected, shakes hands with it), coalesced with a ping
   * already pending for it; each agent call is bounded by one ping interval.
   */
  ping(uuid: string): Promise<HostRow | undefined> {
    return this.d.queue.submit({
      signature: `host-${uuid}`,
      name: "ping-host",
      dedupKey: "ping",
      run: async () => {
        const host = await this.d.hosts.get(uuid);
        if (!host) return undefined; // deleted meanwhile
        if (host.status !== "Connected") return this.#connect(host);
        try {
          const reply = await this.d.agents.ping(host, undefined, { atMostMs: this.#pingIntervalMs });
          // A new boot id means the agent restarted and lost its session: shake hands again.
          if (host.agentBootId && reply.bootId && reply.bootId !== host.agentBootId) return this.#connect(host);
          const seen = await this.d.hosts.setStatus(uuid, "Connected", { seen: true, fence: host.fence });
          return seen === "fenced" ? undefined : seen;
        } catch (e) {
          // Refused as fenced, or written meanwhile: another replica has the host now.
          if (isFenced(e)) return undefined;
          return this.#setStatus(host, "Disconnected", errorMessage(e)).catch((w) => (isHostTaken(w) ? undefined : Promise.reject(w)));
        }
      },
    });
  }

  /**
   * The agent handshake of a known host (a reconnect: its agent answered again, or restarted):
   * the host recorded Connected with its EIP reconcile marked (the agent may have lost its rules,
   * or kept stale ones), or Disconnected with the agent's error.
   */
  async #handshake(host: HostRow, signal?: AbortSignal, bound?: HostCallBound): Promise<{ row: HostRow; error?: unknown }> {
    try {
      const facts = await this.d.agents.connect(host, signal, bound);
      return { row: await this.#setStatus(host, "Connected", "", facts.bootId, true) };
    } catch (error) {
      return { row: await this.#setStatus(host, "Disconnected", errorMessage(error)), error };
    }
  }

  /**
   * A handshake by the pinger, then the VM state sync; a failure is recorded, not thrown. Its
   * deadline is one ping interval, so a hung agent holds `host-<uuid>` no longer than that and
   * the next round tries again (see the class comment).
   */
  async #connect(host: HostRow): Promise<HostRow> {
    const { row, error } = await this.#handshake(host, undefined, { atMostMs: this.#pingIntervalMs });
    if (error === undefined) await this.#syncAfterConnect(row);
    return row;
  }

  /**
   * The VM state sync, then the EIP reconcile is kicked (network then compares the agent's rules
   * with the VMs as synced); a failed sync is logged, since the host itself is connected.
   */
  async #syncAfterConnect(host: HostRow): Promise<void> {
    await this.#syncVms(host).catch((e) => this.d.log.warn("vm state sync failed", { hostUuid: host.uuid, error: errorMessage(e) }));
    this.d.reconnected?.(host.uuid);
  }

  /**
   * After a (re)connect, the host may run something else than the database says: the agent or the
   * hypervisor restarted, or a VM stopped while the host was unreachable. ZStack's VM state sync:
   * a Running VM the agent does not run is recorded Stopped (with why), a Stopped one it runs is
   * recorded Running. VMs in the middle of an operation are left to it. The database is read
   * before the agent, so a VM that turns Running in between was already running on the agent;
   * and each change is conditional, so an operation that moved the VM meanwhile wins.
   */
  async #syncVms(host: HostRow): Promise<void> {
    const placed = await this.d.vms.placedOn(host.uuid);
    if (placed.length === 0) return;
    const actual = new Map((await this.d.agents.vms(host)).vms.map((v) => [v.vmUuid, v.state]));
    for (const vm of placed) {
      const onAgent = actual.get(vm.uuid);
      let to: "Running" | "Stopped" | undefined;
      let why = "";
      if (vm.state === "Running" && onAgent !== "running") {
        to = "Stopped";
        why = `found ${onAgent ?? "missing"} on host ${host.uuid} when its agent reconnected`;
      } else if (vm.state === "Stopped" && onAgent === "running") {
        to = "Running";
      }
      if (!to) continue;
      const moved = await this.d.vms.transition(vm.uuid, vm.state, to, why);
      if (!moved) continue;
      this.d.log.warn("vm state synced from its host", { vmUuid: vm.uuid, hostUuid: host.uuid, from: vm.state, to, agentState: onAgent ?? "missing" });
    }
  }

  /** Records the outcome of talking to the host, as read in `host` (its fence): see `written`. */
  async #setStatus(host: HostRow, status: "Connected" | "Disconnected", lastError: string, agentBootId?: string, reconcileEips = false): Promise<HostRow> {
    const row = written(await this.d.hosts.setStatus(host.uuid, status, { lastError, seen: status === "Connected", fence: host.fence, reconcileEips, ...(agentBootId ? { agentBootId } : {}) }), host.uuid);
    // Its event went into the outbox with the change (HostStore.setStatus).
    if (host.status !== status) this.d.log.info("host status changed", { hostUuid: host.uuid, from: host.status, to: status, lastError });
    return row;
  }

  #serialized<T>(uuid: string, name: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    return this.d.queue.submit({ signature: `host-${uuid}`, name, run }, signal ? { signal } : undefined);
  }
}


/**
 * The host row a status write returned. NOT_FOUND when the host is gone; UNAVAILABLE
 * `HOST_TAKEN_OVER` when another replica wrote it since this one read it (ownership moved during
 * the call): a retry reaches its owner.
 */
function written(row: HostRow | undefined | "fenced", uuid: string): HostRow {
  if (row === "fenced") {
    throw new StratumError(Code.UNAVAILABLE, `host ${uuid} was changed by another replica meanwhile; retry`, { reason: "HOST_TAKEN_OVER", resources: { hostUuid: uuid } });
  }
  if (!row) throw StratumError.notFound("host", uuid);
  return row;
}

function isHostTaken(e: unknown): boolean {
  return e instanceof StratumError && e.reason === "HOST_TAKEN_OVER";
}


/** FAILED_PRECONDITION `HOST_CAPACITY_EXCEEDS_AGENT` when the spec offers more than the agent has. */
function assertAgentHas(spec: HostSpec, facts: { cpuNum: number; memoryBytes: number }): void {
  const over: string[] = [];
  if (spec.cpuCapacity > facts.cpuNum) over.push(`${spec.cpuCapacity} CPU (the agent reports ${facts.cpuNum})`);
  if (spec.memoryCapacity > facts.memoryBytes) over.push(`${spec.memoryCapacity} bytes of memory (the agent reports ${facts.memoryBytes})`);
  if (over.length === 0) return;
  throw new StratumError(Code.FAILED_PRECONDITION, `host ${spec.uuid} cannot offer ${over.join(" and ")}`, {
    reason: "HOST_CAPACITY_EXCEEDS_AGENT",
    resources: { hostUuid: spec.uuid, agentCpu: String(facts.cpuNum), agentMemoryBytes: String(facts.memoryBytes) },
  });
}
