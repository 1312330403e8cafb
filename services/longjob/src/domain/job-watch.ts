import { watchResource, watchSubject, type Bus } from "@stratum/bus";
import { rowMapper } from "@stratum/db";
import type { JobStore } from "../store/job-store";
import { jobs, type JobRow } from "../store/schema";
import { isFinal } from "./job-state";

const toRow = rowMapper(jobs);

/**
 * A job's changes until its final state (the kit's `watchResource`): the store sends each change's
 * row to the job's watch subject right after its commit, so a watcher reads Postgres only at the
 * start and after a quiet spell.
 */
export function watchJob(bus: Bus, store: JobStore, uuid: string, signal: AbortSignal): AsyncGenerator<JobRow> {
  return watchResource<JobRow>({
    nc: bus.nc,
    subject: watchSubject(bus, "longjob", "job", uuid),
    read: () => store.get(uuid),
    fromEvent: (json) => toRow(json),
    revision: (j) => j.revision,
    done: (j) => isFinal(j.state),
    kind: "job",
    uuid,
    signal,
  });
}
