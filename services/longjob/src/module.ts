import { fileURLToPath } from "node:url";
import { notifyWatchers, watchSubject } from "@stratum/bus";
import { errorMessage } from "@stratum/core";
import { JobExecutor } from "@stratum/jobs";
import { JobControlService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { ServiceModule } from "@stratum/runtime";
import { LONGJOB_ENV } from "./config";
import { noopJob, sleepJob } from "./domain/builtin-types";
import { JobManager } from "./domain/job-manager";
import { JobReconciler } from "./domain/job-reconciler";
import { JobRecorder } from "./domain/job-recorder";
import { TypeRegistry } from "./domain/type-registry";
import { checkJobs, jobControlApi } from "./server/control-handlers";
import { longJobApi } from "./server/job-handlers";
import { JobStore } from "./store/job-store";
import { tables } from "./store/schema";

/**
 * The longjob service: the records of long jobs. A submit is recorded and dispatched to the
 * owner of its target in the service implementing its type; the executors' reports arrive over
 * JetStream and any replica records them; the owner of a job (its UUID on longjob's ring)
 * cancels, reruns and — when an executor dies — resumes, fails or suspends it. Longjob also
 * implements two job types itself (`longjob.noop`, `longjob.sleep`), through the same executor
 * kit as every other service, for tests and benchmarks.
 */
export function longjobModule(): ServiceModule<typeof tables, typeof LONGJOB_ENV> {
  return {
    name: "longjob",
    env: LONGJOB_ENV,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    tables,
    setup(ctx) {
      const { ownership } = ctx;
      const store = new JobStore(ctx.db, ownership.incarnation, ctx.eventsWritten, (rows) => {
        for (const row of rows) notifyWatchers(ctx.bus, watchSubject(ctx.bus, "longjob", "job", String(row.uuid)), row);
      });
      const types = new TypeRegistry(ctx.db);
      const local = { service: "longjob", incarnation: ownership.incarnation, dispatch: (req: Parameters<JobExecutor["dispatch"]>[0]) => executor.dispatch(req) };
      const manager = new JobManager({ store, types, queue: ctx.queue, peers: ctx.peers, view: ctx.view, log: ctx.log, local });
      const recorder = new JobRecorder(ctx.bus, store, ctx.log);
      const reconciler = new JobReconciler({ store, manager, types, ownership, view: ctx.view, log: ctx.log, reportsCaughtUp: () => recorder.caughtUp() });
      // Its own job types, run like any service's; their checkpoints read the jobs table directly.
      const executor = new JobExecutor({
        service: "longjob",
        types: [noopJob, sleepJob],
        bus: ctx.bus,
        queue: ctx.queue,
        log: ctx.log,
        incarnation: ownership.incarnation,
        longjob: ctx.peers("longjob").for(JobControlService),
        checkJobs: async (jobs) => ({ jobs: await checkJobs(store, jobs.map((j) => j.uuid)) }),
      });
      let sweeper: NodeJS.Timeout | undefined;
      return {
        services: [longJobApi(manager, store, types, ctx.bus), jobControlApi(store, types), executor.api],
        async start() {
          await recorder.start();
          executor.start();
          reconciler.start();
          const sweep = () =>
            store
              .sweep(ctx.settings.STRATUM_JOB_RETENTION_MS)
              .then((n) => n > 0 && ctx.log.info("removed finished jobs past their retention", { jobs: n }))
              .catch((e) => ctx.log.warn("job sweep failed", { error: errorMessage(e) }));
          void sweep();
          sweeper = setInterval(sweep, ctx.settings.STRATUM_JOB_SWEEP_INTERVAL_MS);
          sweeper.unref();
        },
        drain: () => executor.drain(),
        async stop() {
          if (sweeper) clearInterval(sweeper);
          reconciler.stop();
          manager.stop();
          executor.stop();
          await recorder.stop();
        },
      };
    },
  };
}
