import { Code, StratumError } from "@stratum/core";
import { findPgError, holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import { intToIp } from "../domain/ipv4";
import type { NetworkDb } from "./db";
import { ipAddresses, leases, type IpAddressRow, type IpHolderKindValue, type IpRangeRow } from "./schema";

const toAddress = rowMapper(ipAddresses);

/** One holder's address to hand out: a given one (`ipInt`), or the next free one. */
export interface AddressAsk {
  holderUuid: string;
  holderKind: IpHolderKindValue;
  vmUuid: string | null;
  l3NetworkUuid: string;
  ipInt?: number;
}

/** What one ask got: its address (the one it held already, for a retry), or why none. */
export type AddressOutcome = { holderUuid: string; address: IpAddressRow } | { holderUuid: string; error: StratumError };

/** Smallest window of addresses one search statement looks at; it doubles while it finds too few. */
const MIN_WINDOW = 256;
/** Rounds of "find free, insert, some lost to a racing allocator" before giving up on an ask. */
const MAX_ROUNDS = 8;

type Sql = postgres.Sql | postgres.TransactionSql;

/**
 * Address allocation on `network.ip_addresses`. No lock: candidates are read free and inserted
 * with `ON CONFLICT DO NOTHING`; the primary key (network, address) lets exactly one of racing
 * allocators (on any replica) have an address, and a loser tries the next free ones. A search
 * starts at the range's cursor (one past its last hand-out), so a busy network is not rescanned
 * from its start by every allocation. Every write needs this replica's lease.
 */
export class IpStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;

  constructor(
    handle: NetworkDb,
    private readonly actor: () => string,
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: actor };
  }

  get sql(): postgres.Sql {
    return this.#sql;
  }

  /**
   * Hands out the addresses of a batch of asks on one network, in its ranges (`ranges`, ordered
   * by start). Idempotent per holder: one that holds an address already gets it back.
   */
  async allocate(asks: readonly AddressAsk[], ranges: readonly IpRangeRow[], q: Sql = this.#sql): Promise<AddressOutcome[]> {
    const out = new Map<string, AddressOutcome>();
    try {
      for (const a of await this.#held(q, asks.map((a) => a.holderUuid))) out.set(a.holderUuid, { holderUuid: a.holderUuid, address: a });
      const fresh = asks.filter((a) => !out.has(a.holderUuid));
      for (const a of fresh.filter((a) => a.ipInt !== undefined)) out.set(a.holderUuid, await this.#allocateGiven(q, a, ranges));
      let free = fresh.filter((a) => a.ipInt === undefined);
      let exhausted = false;
      for (let round = 0; free.length > 0 && round < MAX_ROUNDS; round++) {
        const candidates = await this.#findFree(q, free[0]!.l3NetworkUuid, ranges, free.length);
        if (candidates.length === 0) {
          exhausted = true;
          break;
        }
        const tried = free.slice(0, candidates.length);
        const got = await this.#insert(q, tried.map((a, i) => ({ ask: a, ipInt: candidates[i]!.ipInt, rangeUuid: candidates[i]!.rangeUuid })));
        for (const a of got) out.set(a.holderUuid, { holderUuid: a.holderUuid, address: a });
        await this.#advanceCursors(q, got);
        // Lost to a racing allocator (its address taken meanwhile), or its holder got one meanwhile (a racing retry).
        for (const a of await this.#held(q, tried.filter((t) => !out.has(t.holderUuid)).map((t) => t.holderUuid))) out.set(a.holderUuid, { holderUuid: a.holderUuid, address: a });
        free = free.filter((a) => !out.has(a.holderUuid));
      }
      for (const a of free) {
        // Every round lost its candidates to racing allocators: not a full network, a retry may win.
        if (!exhausted) {
          out.set(a.holderUuid, { holderUuid: a.holderUuid, error: new StratumError(Code.ABORTED, `racing allocations on L3 network ${a.l3NetworkUuid} took every candidate address; retry`, { reason: "IP_ALLOCATION_CONTENDED", resources: { l3NetworkUuid: a.l3NetworkUuid, holderUuid: a.holderUuid } }) });
          continue;
        }
        out.set(a.holderUuid, {
          holderUuid: a.holderUuid,
          error: new StratumError(Code.RESOURCE_EXHAUSTED, `L3 network ${a.l3NetworkUuid} has no free address left in its IP ranges`, {
            reason: "NO_FREE_IP",
            resources: { l3NetworkUuid: a.l3NetworkUuid, holderUuid: a.holderUuid },
          }),
        });
      }
    } catch (e) {
      if (e instanceof StratumError) throw e;
      throw mapPgError(e, { operation: "allocate IP addresses" });
    }
    return asks.map((a) => out.get(a.holderUuid)!);
  }

  /** Gives back the addresses of these holders; the rows given back. */
  async release(holderUuids: readonly string[], q: Sql = this.#sql): Promise<IpAddressRow[]> {
    if (holderUuids.length === 0) return [];
    const sql = q as postgres.Sql;
    try {
      const rows = await sql`DELETE FROM network.ip_addresses WHERE holder_uuid = ANY(${[...holderUuids]}::uuid[]) AND ${leaseHeld(sql, this.#lease)} RETURNING *`;
      if (rows.length === 0 && !(await holdsLease(this.#sql, this.#lease))) throw leaseLost(this.actor());
      return rows.map((r) => toAddress(r as Record<string, unknown>));
    } catch (e) {
      throw mapPgError(e, { operation: "release IP addresses" });
    }
  }

  /** The NIC addresses of these VMs. */
  async ofVms(vmUuids: readonly string[]): Promise<IpAddressRow[]> {
    const rows = await this.#sql`SELECT * FROM network.ip_addresses WHERE vm_uuid = ANY(${[...vmUuids]}::uuid[]) AND holder_kind = 'Nic'`;
    return rows.map((r) => toAddress(r as Record<string, unknown>));
  }

  async ofHolder(holderUuid: string): Promise<IpAddressRow | undefined> {
    const [row] = await this.#held(this.#sql, [holderUuid]);
    return row;
  }

  /**
   * Moves a holder to another address of its network (`ipInt`, or the next free one): one UPDATE
   * of its row, so it holds exactly one address at every moment and the old one is free once the
   * statement commits. Undefined when it holds no address.
   */
  async move(holderUuid: string, ranges: readonly IpRangeRow[], ipInt?: number): Promise<IpAddressRow | undefined> {
    const sql = this.#sql;
    const current = await this.ofHolder(holderUuid);
    if (!current) return undefined;
    if (ipInt === current.ipInt) return current;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let target: { ipInt: number; rangeUuid: string };
      if (ipInt !== undefined) {
        const range = rangeOf(ranges, ipInt);
        if (!range) throw notInRange(current.l3NetworkUuid, ipInt);
        target = { ipInt, rangeUuid: range.uuid };
      } else {
        const [free] = await this.#findFree(sql, current.l3NetworkUuid, ranges, 1);
        if (!free) throw new StratumError(Code.RESOURCE_EXHAUSTED, `L3 network ${current.l3NetworkUuid} has no free address left in its IP ranges`, { reason: "NO_FREE_IP", resources: { l3NetworkUuid: current.l3NetworkUuid } });
        target = free;
      }
      try {
        const [raw] = await sql`
          UPDATE network.ip_addresses SET ip_int = ${target.ipInt}, ip = ${intToIp(target.ipInt)}, range_uuid = ${target.rangeUuid}
          WHERE holder_uuid = ${holderUuid} AND ${leaseHeld(sql, this.#lease)} RETURNING *`;
        if (!raw) throw leaseLost(this.actor());
        return toAddress(raw as Record<string, unknown>);
      } catch (e) {
        if (findPgError(e)?.constraint_name !== "ip_addresses_pkey") throw mapPgError(e, { operation: "change NIC address" });
        if (ipInt !== undefined) throw await this.#inUse(current.l3NetworkUuid, ipInt);
        // Taken by a racing allocator between the search and the update: the next free one.
      }
    }
    throw new StratumError(Code.ABORTED, `could not move ${holderUuid} to a free address: racing allocations took every candidate; retry`, { reason: "IP_ALLOCATION_CONTENDED" });
  }

  async #allocateGiven(q: Sql, a: AddressAsk, ranges: readonly IpRangeRow[]): Promise<AddressOutcome> {
    const range = rangeOf(ranges, a.ipInt!);
    if (!range) return { holderUuid: a.holderUuid, error: notInRange(a.l3NetworkUuid, a.ipInt!) };
    const [got] = await this.#insert(q, [{ ask: a, ipInt: a.ipInt!, rangeUuid: range.uuid }]);
    if (got) return { holderUuid: a.holderUuid, address: got };
    const [mine] = await this.#held(q, [a.holderUuid]);
    if (mine) return { holderUuid: a.holderUuid, address: mine };
    return { holderUuid: a.holderUuid, error: await this.#inUse(a.l3NetworkUuid, a.ipInt!) };
  }

  async #inUse(l3NetworkUuid: string, ipInt: number): Promise<StratumError> {
    const [holder] = await this.#sql`SELECT holder_kind, holder_uuid FROM network.ip_addresses WHERE l3_network_uuid = ${l3NetworkUuid} AND ip_int = ${ipInt}`;
    const by = holder ? ` by ${String(holder.holder_kind).toLowerCase()} ${holder.holder_uuid}` : "";
    return new StratumError(Code.FAILED_PRECONDITION, `address ${intToIp(ipInt)} of L3 network ${l3NetworkUuid} is held${by}`, {
      reason: "IP_IN_USE",
      resources: { l3NetworkUuid, ip: intToIp(ipInt), ...(holder ? { holderUuid: String(holder.holder_uuid) } : {}) },
    });
  }

  async #held(q: Sql, holderUuids: readonly string[]): Promise<IpAddressRow[]> {
    if (holderUuids.length === 0) return [];
    const sql = q as postgres.Sql;
    const rows = await sql`SELECT * FROM network.ip_addresses WHERE holder_uuid = ANY(${[...holderUuids]}::uuid[])`;
    return rows.map((r) => toAddress(r as Record<string, unknown>));
  }

  /** Inserts what no one holds yet; the rows inserted (a lost race or a holder with an address already inserts nothing). */
  async #insert(q: Sql, picks: ReadonlyArray<{ ask: AddressAsk; ipInt: number; rangeUuid: string }>): Promise<IpAddressRow[]> {
    if (picks.length === 0) return [];
    const sql = q as postgres.Sql;
    const rows = await sql`
      INSERT INTO network.ip_addresses (l3_network_uuid, ip_int, ip, range_uuid, holder_kind, holder_uuid, vm_uuid)
      SELECT x.l3, x.ip_int, x.ip, x.range_uuid, x.kind::network.ip_holder_kind, x.holder, x.vm
      FROM unnest(${picks.map((p) => p.ask.l3NetworkUuid)}::uuid[], ${picks.map((p) => p.ipInt)}::bigint[], ${picks.map((p) => intToIp(p.ipInt))}::text[],
                  ${picks.map((p) => p.rangeUuid)}::uuid[], ${picks.map((p) => p.ask.holderKind)}::text[], ${picks.map((p) => p.ask.holderUuid)}::uuid[],
                  ${picks.map((p) => p.ask.vmUuid)}::uuid[]) AS x(l3, ip_int, ip, range_uuid, kind, holder, vm)
      WHERE ${leaseHeld(sql, this.#lease)}
      ON CONFLICT DO NOTHING
      RETURNING *`;
    if (rows.length === 0 && !(await holdsLease(this.#sql, this.#lease))) throw leaseLost(this.actor());
    return rows.map((r) => toAddress(r as Record<string, unknown>));
  }

  /**
   * Up to `n` free addresses of the ranges, each range searched from its cursor to its end and
   * then from its start, in windows that double while they find too few.
   */
  async #findFree(q: Sql, l3NetworkUuid: string, ranges: readonly IpRangeRow[], n: number): Promise<Array<{ ipInt: number; rangeUuid: string }>> {
    const sql = q as postgres.Sql;
    const found: Array<{ ipInt: number; rangeUuid: string }> = [];
    for (const r of ranges) {
      for (const [from, to] of [[r.cursorInt, r.endInt], [r.startInt, r.cursorInt - 1]] as const) {
        let window = Math.max(MIN_WINDOW, n * 2);
        for (let lo = from; lo <= to && found.length < n; lo += window, window *= 2) {
          const hi = Math.min(to, lo + window - 1);
          const rows = await sql`
            SELECT g::bigint AS ip_int FROM generate_series(${lo}::bigint, ${hi}::bigint) AS g
            WHERE NOT EXISTS (SELECT 1 FROM network.ip_addresses a WHERE a.l3_network_uuid = ${l3NetworkUuid} AND a.ip_int = g)
            ORDER BY g LIMIT ${n - found.length}`;
          for (const row of rows) found.push({ ipInt: Number(row.ip_int), rangeUuid: r.uuid });
        }
        if (found.length >= n) return found;
      }
    }
    return found;
  }

  /** Moves each range's cursor past the highest address just handed out of it (a hint: never fenced, never wrong). */
  async #advanceCursors(q: Sql, got: readonly IpAddressRow[]): Promise<void> {
    const top = new Map<string, number>();
    for (const a of got) top.set(a.rangeUuid, Math.max(top.get(a.rangeUuid) ?? -1, a.ipInt));
    if (top.size === 0) return;
    const sql = q as postgres.Sql;
    await sql`
      UPDATE network.ip_ranges AS r SET cursor_int = CASE WHEN x.top + 1 > r.end_int THEN r.start_int ELSE x.top + 1 END
      FROM unnest(${[...top.keys()]}::uuid[], ${[...top.values()]}::bigint[]) AS x(uuid, top) WHERE r.uuid = x.uuid`;
  }
}

function rangeOf(ranges: readonly IpRangeRow[], ipInt: number): IpRangeRow | undefined {
  return ranges.find((r) => r.startInt <= ipInt && ipInt <= r.endInt);
}

function notInRange(l3NetworkUuid: string, ipInt: number): StratumError {
  return new StratumError(Code.INVALID_ARGUMENT, `address ${intToIp(ipInt)} is in no IP range of L3 network ${l3NetworkUuid}`, {
    reason: "IP_NOT_IN_RANGE",
    resources: { l3NetworkUuid, ip: intToIp(ipInt) },
  });
}
