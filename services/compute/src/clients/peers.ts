import type { JsonObject } from "@bufbuild/protobuf";
import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import { isFinalJobState } from "@stratum/jobs";
import type { Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import type { VolumeTask } from "@stratum/proto/stratum/storage/v1/volume_pb";

/** Deadline of a quick call to longjob or storage (a read, a submit, a cancel). */
const PEER_CALL_TIMEOUT_MS = 10_000;
/** What a long-poll's deadline adds to the wait it asks for: the answer comes by then, never a timeout. */
const WAIT_MARGIN_MS = 15_000;
/** Largest page of ListVolumes. */
const VOLUME_PAGE = 1_000;

/** The other services a migration talks to: longjob (its job, the backups to cancel) and storage (the VM's volumes and their tasks). */
export interface MigrationPeers {
  /** The job as longjob has it, or undefined when longjob knows no such job. */
  job(uuid: string): Promise<Job | undefined>;
  /** Asks longjob to cancel a job; the job as the cancel left it (Canceling, or the final state it had reached). */
  cancelJob(uuid: string, clientRequestId: string): Promise<Job>;
  /** Follows a job (WatchJob, event-driven) until it is Succeeded, Failed or Canceled: the job then. */
  finalJob(uuid: string, signal: AbortSignal): Promise<Job>;
  /** Submits a job; a retry with the same `clientRequestId` and `uuid` returns the first job. */
  submitJob(s: { uuid: string; type: string; targetUuid: string; parameters: JsonObject; clientRequestId: string }): Promise<Job>;
  /** The uuids of the volumes attached to the VM. */
  vmVolumes(vmUuid: string): Promise<string[]>;
  /** Waits (up to `timeoutMs`) until no task of `kinds` runs on the volumes; the ones still running when not. */
  /** `hostUuid`: where the VM runs, so storage need not locate its disks through compute again. */
  waitVolumeTasks(volumeUuids: string[], kinds: string[], timeoutMs: number, signal?: AbortSignal, hostUuid?: string): Promise<{ exited: boolean; running: VolumeTask[] }>;
}

/** {@link MigrationPeers} over the kit's routers to longjob and storage replicas. */
export function migrationPeers(longjob: ServiceRouter<typeof LongJobService>, storage: ServiceRouter<typeof StorageService>): MigrationPeers {
  return {
    async job(uuid) {
      try {
        return (await longjob.call(uuid, (c) => c.getJob({ uuid }, { timeoutMs: PEER_CALL_TIMEOUT_MS }))).job;
      } catch (e) {
        if (e instanceof StratumError && e.code === Code.NOT_FOUND) return undefined;
        throw e;
      }
    },
    async cancelJob(uuid, clientRequestId) {
      const { job } = await longjob.call(uuid, (c) => c.cancelJob({ uuid, clientRequestId }, { timeoutMs: PEER_CALL_TIMEOUT_MS }));
      return job!;
    },
    async finalJob(uuid, signal) {
      return longjob.call(uuid, async (c) => {
        for await (const m of c.watchJob({ uuid }, { signal })) if (m.job && isFinalJobState(m.job.state)) return m.job;
        throw new StratumError(Code.UNAVAILABLE, `the watch of job ${uuid} ended before the job did`, { reason: "WATCH_ENDED", resources: { jobUuid: uuid } });
      });
    },
    async submitJob(s) {
      const { job } = await longjob.call(s.uuid, (c) => c.submitJob(s, { timeoutMs: PEER_CALL_TIMEOUT_MS }));
      return job!;
    },
    async vmVolumes(vmUuid) {
      const uuids: string[] = [];
      let pageToken = "";
      do {
        const page = await storage.call(vmUuid, (c) => c.listVolumes({ vmUuid, pageSize: VOLUME_PAGE, pageToken }, { timeoutMs: PEER_CALL_TIMEOUT_MS }));
        uuids.push(...page.volumes.map((v) => v.uuid));
        pageToken = page.nextPageToken;
      } while (pageToken);
      return uuids;
    },
    async waitVolumeTasks(volumeUuids, kinds, timeoutMs, signal, hostUuid) {
      const r = await storage.call(volumeUuids[0]!, (c) =>
        c.waitVolumeTasks({ volumeUuids, kinds, timeoutMs, hostUuid: hostUuid ?? "" }, { timeoutMs: timeoutMs + WAIT_MARGIN_MS, ...(signal ? { signal } : {}) }),
      );
      return { exited: r.exited, running: r.running };
    },
  };
}
