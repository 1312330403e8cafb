import { StratumError } from "@stratum/core";
import { LEASE_NOT_HELD, leaseHeld, leaseLost, TurnBatcher, type LeaseHolder } from "@stratum/db";
import type { ComputeDb } from "./db";
import type { VmRow } from "./schema";
import type { NewVm } from "./vm-store";

/** A VM to place on any host that fits (see VmStore.insertPlaced), and the request placing it. */
type PlacementRequest = NewVm & { requestId: string | null };

interface Pending {
  vm: PlacementRequest;
  resolve(row: VmRow | undefined): void;
  reject(error: unknown): void;
}

interface FreeHost {
  uuid: string;
  cpu: number;
  memory: number;
}

const MAX_BATCH = 256;

/**
 * Places the VMs of concurrent creates in one transaction per event-loop turn: lock the eligible
 * hosts, assign each VM to the host with the most free memory that still fits it (counting what
 * the batch already took), reserve the sums, insert the VMs. The row locks and the capacity
 * checks on `hosts` make this exact whatever other replicas do; the batch only saves round trips
 * (five for the batch instead of one or more per VM), which is what a burst of creates costs.
 * The batch's VMs then reach VmResourcesBatcher in the same turn: one CreateRootVolumes call, and
 * one AllocateNicIps call for those with NICs.
 *
 * A batch of one, or a batch whose insert fails (a duplicate id), goes through `single` — the
 * one-statement placement — per VM, so each caller gets its own outcome.
 */
export class PlacementBatcher {
  /** One batch at a time: batches lock the same host rows, so a second would only wait. */
  readonly #batcher = new TurnBatcher<Pending>((pending) => this.#flush(pending), (p, e) => p.reject(e));

  constructor(
    private readonly sql: ComputeDb["sql"],
    private readonly toRow: (raw: Record<string, unknown>) => VmRow,
    private readonly single: (vm: PlacementRequest) => Promise<VmRow | undefined>,
    private readonly lease: LeaseHolder,
    private readonly eventsWritten: () => void,
  ) {}

  place(vm: PlacementRequest): Promise<VmRow | undefined> {
    return new Promise((resolve, reject) => this.#batcher.submit({ vm, resolve, reject }));
  }

  async #flush(pending: Pending[]): Promise<Pending[]> {
    const batch = pending.slice(0, MAX_BATCH);
    const later = pending.slice(MAX_BATCH);
    if (batch.length === 1) {
      await this.#one(batch[0]!);
      return later;
    }
    let rows: Map<string, VmRow>;
    try {
      rows = await this.#placeAll(batch.map((p) => p.vm));
    } catch (e) {
      if (e instanceof StratumError && e.reason === LEASE_NOT_HELD) {
        for (const p of batch) p.reject(e);
        return later;
      }
      // One bad row (a duplicate id) fails the whole statement: sort it out VM by VM.
      await Promise.all(batch.map((p) => this.#one(p)));
      return later;
    }
    for (const p of batch) p.resolve(rows.get(p.vm.uuid));
    return later;
  }

  #one(p: Pending): Promise<void> {
    return this.single(p.vm).then(p.resolve, p.reject);
  }

  async #placeAll(vms: PlacementRequest[]): Promise<Map<string, VmRow>> {
    return this.sql.begin(async (tx) => {
      // Fenced like every owner write: without its lease this replica locks and places nothing.
      const free: FreeHost[] = (
        await tx`
          SELECT uuid, cpu_capacity - cpu_used AS cpu, memory_capacity - memory_used AS memory
          FROM compute.hosts WHERE status = 'Connected' AND state = 'Enabled' AND ${leaseHeld(tx, this.lease)}
          ORDER BY uuid FOR UPDATE`
      ).map((h) => ({ uuid: h.uuid as string, cpu: Number(h.cpu), memory: Number(h.memory) }));
      if (free.length === 0) {
        const [held] = await tx`SELECT ${leaseHeld(tx, this.lease)} AS ok`;
        if (held?.ok !== true) throw leaseLost(this.lease.holder());
      }
      const placed: Array<{ vm: PlacementRequest; host: FreeHost }> = [];
      for (const vm of vms) {
        let best: FreeHost | undefined;
        for (const h of free) if (h.cpu >= vm.cpu && h.memory >= vm.memory && (!best || h.memory > best.memory)) best = h;
        if (!best) continue; // no capacity for this one: its caller gets undefined
        best.cpu -= vm.cpu;
        best.memory -= vm.memory;
        placed.push({ vm, host: best });
      }
      if (placed.length === 0) return new Map();
      const perHost = new Map<string, { cpu: number; memory: number }>();
      for (const { vm, host } of placed) {
        const sum = perHost.get(host.uuid) ?? { cpu: 0, memory: 0 };
        sum.cpu += vm.cpu;
        sum.memory += vm.memory;
        perHost.set(host.uuid, sum);
      }
      const hostIds = [...perHost.keys()];
      await tx`
        UPDATE compute.hosts AS h SET cpu_used = h.cpu_used + x.cpu, memory_used = h.memory_used + x.memory
        FROM unnest(${hostIds}::uuid[], ${hostIds.map((id) => perHost.get(id)!.cpu)}::int[], ${hostIds.map((id) => perHost.get(id)!.memory)}::bigint[]) AS x(uuid, cpu, memory)
        WHERE h.uuid = x.uuid`;
      // Their Created events are written once storage gave them root volumes (VmStore.finishCreates);
      // a release left pending for one of these uuids (a rolled-back create, retried) is dropped.
      // (And a pending NIC release, for those with NICs: only they can have one.)
      const withNics = placed.filter((p) => (p.vm.nicCount ?? 0) > 0).map((p) => p.vm.uuid);
      const inserted = await tx`
        WITH cleared AS (DELETE FROM compute.volume_releases WHERE vm_uuid = ANY(${placed.map((p) => p.vm.uuid)}::uuid[]))
        ${withNics.length > 0 ? tx`, nics_cleared AS (DELETE FROM compute.nic_releases WHERE vm_uuid = ANY(${withNics}::uuid[]))` : tx``}
        INSERT INTO compute.vms (uuid, name, state, host_uuid, cpu, memory, client_request_id, last_actor, op_request, nic_count)
        SELECT x.uuid, x.name, 'Created', x.host_uuid, x.cpu, x.memory, x.client_request_id, ${this.lease.holder()}, x.client_request_id, x.nic_count
        FROM unnest(
          ${placed.map((p) => p.vm.uuid)}::uuid[], ${placed.map((p) => p.vm.name)}::text[], ${placed.map((p) => p.host.uuid)}::uuid[],
          ${placed.map((p) => p.vm.cpu)}::int[], ${placed.map((p) => p.vm.memory)}::bigint[],
          ${placed.map((p) => p.vm.clientRequestId)}::text[], ${placed.map((p) => p.vm.nicCount ?? 0)}::int[]
        ) AS x(uuid, name, host_uuid, cpu, memory, client_request_id, nic_count)
        RETURNING *`;
      const rows = new Map<string, VmRow>();
      for (const raw of inserted) {
        const row = this.toRow(raw as Record<string, unknown>);
        rows.set(row.uuid, row);
      }
      return rows;
    });
  }
}
