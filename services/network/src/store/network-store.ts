import { holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import type { NetworkDb } from "./db";
import { ipAddresses, ipRanges, l3Networks, leases, type IpAddressRow, type IpRangeRow, type L3NetworkRow } from "./schema";

const toNetwork = rowMapper(l3Networks);
const toRange = rowMapper(ipRanges);
const toAddress = rowMapper(ipAddresses);

const CONSTRAINTS = {
  constraints: {
    l3_networks_pkey: { reason: "L3_NETWORK_ALREADY_EXISTS", message: "an L3 network with this uuid already exists" },
    l3_networks_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another L3 network" },
    ip_ranges_pkey: { reason: "IP_RANGE_ALREADY_EXISTS", message: "an IP range with this uuid already exists" },
    ip_ranges_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another IP range" },
  },
};

export interface NewL3Network {
  uuid: string;
  name: string;
  cidr: string;
  networkInt: number;
  prefixLength: number;
  gateway: string;
  dns: string[];
  public: boolean;
  clientRequestId: string | null;
}

export interface NewIpRange {
  uuid: string;
  l3NetworkUuid: string;
  startInt: number;
  endInt: number;
  clientRequestId: string | null;
}

/** Why a delete wrote nothing: it holds addresses, or it is not there (gone already). */
export type DeleteOutcome = "deleted" | "in-use" | "absent";

/**
 * Queries on `network.l3_networks` and `network.ip_ranges`. Every write needs this replica's
 * lease (a replica paused past it cannot write beside its successor); a delete is refused in its
 * own statement while an address of the network (range) is held, so no allocation can slip in
 * between a check and the delete.
 */
export class NetworkStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;

  constructor(
    handle: NetworkDb,
    private readonly actor: () => string,
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: actor };
  }

  async create(n: NewL3Network): Promise<L3NetworkRow> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO network.l3_networks (uuid, name, cidr, network_int, prefix_length, gateway, dns, public, client_request_id)
        SELECT ${n.uuid}, ${n.name}, ${n.cidr}, ${n.networkInt}, ${n.prefixLength}, ${n.gateway}, ${n.dns}::text[], ${n.public}, ${n.clientRequestId}
        WHERE ${leaseHeld(sql, this.#lease)}
        RETURNING *`;
      if (!raw) throw leaseLost(this.actor());
      return toNetwork(raw as Record<string, unknown>);
    } catch (e) {
      throw mapPgError(e, { operation: "create L3 network", resources: { l3NetworkUuid: n.uuid }, ...CONSTRAINTS });
    }
  }

  async get(uuid: string): Promise<L3NetworkRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM network.l3_networks WHERE uuid = ${uuid}`;
    return raw ? toNetwork(raw as Record<string, unknown>) : undefined;
  }

  async getMany(uuids: readonly string[]): Promise<Map<string, L3NetworkRow>> {
    const rows = await this.#sql`SELECT * FROM network.l3_networks WHERE uuid = ANY(${[...uuids]}::uuid[])`;
    return new Map(rows.map((r) => toNetwork(r as Record<string, unknown>)).map((n) => [n.uuid, n]));
  }

  async list(f: { public?: boolean; afterSeq: number; limit: number }): Promise<L3NetworkRow[]> {
    const sql = this.#sql;
    const rows = await sql`
      SELECT * FROM network.l3_networks WHERE seq > ${f.afterSeq} ${f.public === undefined ? sql`` : sql`AND public = ${f.public}`}
      ORDER BY seq LIMIT ${f.limit}`;
    return rows.map((r) => toNetwork(r as Record<string, unknown>));
  }

  /** Deletes the network and its ranges unless an address of it is held. */
  async delete(uuid: string): Promise<DeleteOutcome> {
    const sql = this.#sql;
    try {
      return await sql.begin(async (tx) => {
        const q = tx as unknown as postgres.Sql;
        const [row] = await q`
          DELETE FROM network.l3_networks AS n WHERE n.uuid = ${uuid} AND ${leaseHeld(q, this.#lease)}
            AND NOT EXISTS (SELECT 1 FROM network.ip_addresses a WHERE a.l3_network_uuid = n.uuid)
          RETURNING uuid`;
        if (row) {
          await q`DELETE FROM network.ip_ranges WHERE l3_network_uuid = ${uuid}`;
          return "deleted";
        }
        return this.#whyNotDeleted(q, await q`SELECT 1 FROM network.l3_networks WHERE uuid = ${uuid}`);
      });
    } catch (e) {
      throw mapPgError(e, { operation: "delete L3 network", resources: { l3NetworkUuid: uuid } });
    }
  }

  /**
   * Adds a range, unless it overlaps another range of the network: the check and the insert are
   * one statement, and the network's ranges are added one at a time (its owner's queue).
   * Undefined when it overlaps.
   */
  async addRange(r: NewIpRange): Promise<IpRangeRow | undefined> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO network.ip_ranges (uuid, l3_network_uuid, start_int, end_int, cursor_int, client_request_id)
        SELECT ${r.uuid}, ${r.l3NetworkUuid}, ${r.startInt}, ${r.endInt}, ${r.startInt}, ${r.clientRequestId}
        WHERE ${leaseHeld(sql, this.#lease)}
          AND NOT EXISTS (SELECT 1 FROM network.ip_ranges o WHERE o.l3_network_uuid = ${r.l3NetworkUuid} AND o.start_int <= ${r.endInt} AND o.end_int >= ${r.startInt})
        RETURNING *`;
      if (raw) return toRange(raw as Record<string, unknown>);
      if (!(await holdsLease(sql, this.#lease))) throw leaseLost(this.actor());
      return undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "add IP range", resources: { ipRangeUuid: r.uuid, l3NetworkUuid: r.l3NetworkUuid }, ...CONSTRAINTS });
    }
  }

  async ranges(l3NetworkUuid: string): Promise<IpRangeRow[]> {
    const rows = await this.#sql`SELECT * FROM network.ip_ranges WHERE l3_network_uuid = ${l3NetworkUuid} ORDER BY start_int`;
    return rows.map((r) => toRange(r as Record<string, unknown>));
  }

  async range(uuid: string): Promise<IpRangeRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM network.ip_ranges WHERE uuid = ${uuid}`;
    return raw ? toRange(raw as Record<string, unknown>) : undefined;
  }

  /** The range of `l3NetworkUuid` that overlaps [start, end], if any: what an overlapping add names. */
  async overlapping(l3NetworkUuid: string, startInt: number, endInt: number): Promise<IpRangeRow | undefined> {
    const [raw] = await this.#sql`
      SELECT * FROM network.ip_ranges WHERE l3_network_uuid = ${l3NetworkUuid} AND start_int <= ${endInt} AND end_int >= ${startInt} ORDER BY start_int LIMIT 1`;
    return raw ? toRange(raw as Record<string, unknown>) : undefined;
  }

  async deleteRange(uuid: string): Promise<DeleteOutcome> {
    const sql = this.#sql;
    try {
      const [row] = await sql`
        DELETE FROM network.ip_ranges AS r WHERE r.uuid = ${uuid} AND ${leaseHeld(sql, this.#lease)}
          AND NOT EXISTS (SELECT 1 FROM network.ip_addresses a WHERE a.range_uuid = r.uuid)
        RETURNING uuid`;
      if (row) return "deleted";
      return this.#whyNotDeleted(sql, await sql`SELECT 1 FROM network.ip_ranges WHERE uuid = ${uuid}`);
    } catch (e) {
      throw mapPgError(e, { operation: "delete IP range", resources: { ipRangeUuid: uuid } });
    }
  }

  /** Held addresses of a network in address order, after `afterIp`. */
  async addresses(l3NetworkUuid: string, afterIpInt: number, limit: number): Promise<IpAddressRow[]> {
    const rows = await this.#sql`
      SELECT * FROM network.ip_addresses WHERE l3_network_uuid = ${l3NetworkUuid} AND ip_int > ${afterIpInt} ORDER BY ip_int LIMIT ${limit}`;
    return rows.map((r) => toAddress(r as Record<string, unknown>));
  }

  async #whyNotDeleted(q: postgres.Sql, exists: postgres.RowList<postgres.Row[]>): Promise<DeleteOutcome> {
    if (exists.length === 0) return "absent";
    if (!(await holdsLease(q, this.#lease))) throw leaseLost(this.actor());
    return "in-use";
  }
}
