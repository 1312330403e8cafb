import { errorMessage } from "@stratum/core";
import { mapPgError } from "@stratum/db";
import type { ComputeDb } from "./db";

/** What one drain did: VMs released, VMs left for a later one. */
export interface DrainResult {
  released: number;
  left: number;
}

/**
 * `compute.volume_releases`, the durable marks of VMs whose volumes storage has to release. A
 * drain takes up to `limit` marks locked (SKIP LOCKED: replicas draining at once share the work,
 * and a create retried for a marked VM waits for the release to end, see `clearReleases`), asks
 * storage once for all of them, and deletes the marks of those it released, in one transaction.
 */
export class VolumeReleaseStore {
  constructor(private readonly handle: ComputeDb) {}

  async drain(limit: number, release: (vmUuids: string[]) => Promise<void>): Promise<DrainResult> {
    try {
      return await this.handle.sql.begin(async (tx) => {
        const rows = await tx`SELECT vm_uuid FROM compute.volume_releases ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
        const uuids = rows.map((r) => r.vm_uuid as string);
        if (uuids.length === 0) return { released: 0, left: 0 };
        const done: string[] = [];
        const failed = new Map<string, string>();
        try {
          await release(uuids);
          done.push(...uuids);
        } catch (e) {
          if (uuids.length === 1) failed.set(uuids[0]!, errorMessage(e));
          else {
            // One VM the batch could not release (a backup running on its root volume) must not
            // hold back the others: each on its own, then.
            for (const uuid of uuids) {
              await release([uuid]).then(() => void done.push(uuid), (err: unknown) => void failed.set(uuid, errorMessage(err)));
            }
          }
        }
        if (done.length > 0) await tx`DELETE FROM compute.volume_releases WHERE vm_uuid = ANY(${done}::uuid[])`;
        if (failed.size > 0) {
          const ids = [...failed.keys()];
          await tx`UPDATE compute.volume_releases AS r SET attempts = r.attempts + 1, last_error = x.error
            FROM unnest(${ids}::uuid[], ${ids.map((id) => failed.get(id)!)}::text[]) AS x(uuid, error) WHERE r.vm_uuid = x.uuid`;
        }
        return { released: done.length, left: failed.size };
      });
    } catch (e) {
      throw mapPgError(e, { operation: "release vm volumes" });
    }
  }

  /** The marks still pending (tests and operators: what storage still owes). */
  async pending(): Promise<Array<{ vmUuid: string; attempts: number; lastError: string }>> {
    const rows = await this.handle.sql`SELECT vm_uuid, attempts, last_error FROM compute.volume_releases ORDER BY created_at`;
    return rows.map((r) => ({ vmUuid: r.vm_uuid as string, attempts: r.attempts as number, lastError: r.last_error as string }));
  }
}
