import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { mutationOf, serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid, uuidForRequest } from "@stratum/validation";
import type { Bus } from "@stratum/bus";
import { randomUUID } from "node:crypto";
import type { JobManager } from "../domain/job-manager";
import { watchJob } from "../domain/job-watch";
import type { TypeRegistry } from "../domain/type-registry";
import type { JobStore } from "../store/job-store";
import { JOB_STATE_FROM_PROTO, jobToProto } from "./convert";

/**
 * LongJobService: the handlers only call the domain. The kit validates each request (limits in
 * longjob.proto), routes mutations to the owner of the job's UUID and answers retried request ids.
 * Reads and watches are answered by any replica, from Postgres and the job's events.
 */
export function longJobApi(manager: JobManager, store: JobStore, types: TypeRegistry, bus: Bus): ServiceApi {
  return serviceApi(
    LongJobService,
    {
      async submitJob(req) {
        const job = await manager.submit({ uuid: req.uuid, type: req.type, targetUuid: req.targetUuid, parameters: req.parameters ?? {}, clientRequestId: req.clientRequestId });
        return { job: jobToProto(job) };
      },
      async getJob(req) {
        return { job: jobToProto(await manager.get(req.uuid)) };
      },
      async listJobs(req) {
        const state = JOB_STATE_FROM_PROTO.get(req.state);
        const afterSeq = decodePageToken(req.pageToken, jobFilters(req));
        const limit = pageSize(req.pageSize);
        const rows = await store.list({ ...(state ? { state } : {}), ...(req.type ? { type: req.type } : {}), ...(req.targetUuid ? { targetUuid: req.targetUuid } : {}), afterSeq, limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { jobs: page.map(jobToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, jobFilters(req)) : "" };
      },
      async *watchJob(req, ctx) {
        for await (const row of watchJob(bus, store, req.uuid, ctx.signal)) yield { job: jobToProto(row) };
      },
      async cancelJob(req, ctx) {
        return { job: jobToProto(await manager.cancel(req.uuid, ctx.signal)) };
      },
      async rerunJob(req, ctx) {
        // The new job's UUID comes from the request id, so a retry reaches the same row.
        const newUuid = req.clientRequestId ? uuidForRequest("job", req.clientRequestId) : randomUUID();
        return { job: jobToProto(await manager.rerun(req.uuid, newUuid, req.clientRequestId, ctx.signal)) };
      },
      async deleteJob(req) {
        await manager.delete(req.uuid);
        return {};
      },
      async listJobTypes() {
        return { types: await types.list() };
      },
    },
    {
      submitJob: {
        // The job's UUID is chosen before routing, so the submit runs on its owner: derived from
        // the request id when there is one, so a retry reaches the same owner and the same row.
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("job", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listJobs: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, jobFilters(r)) },
      cancelJob: mutationOf(),
      rerunJob: mutationOf(),
      deleteJob: mutationOf(),
    },
  );
}

/** The filters of a listing, which its page tokens are bound to. */
function jobFilters(r: { state: number; type: string; targetUuid: string }) {
  return { state: r.state, type: r.type, targetUuid: r.targetUuid };
}
