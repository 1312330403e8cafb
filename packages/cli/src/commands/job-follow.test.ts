/**
 * `--wait` on the commands whose work is a long job elsewhere (backup create|restore|cancel,
 * vm migrate), through the real gRPC client against in-process servers standing in for storage,
 * compute and longjob: the CLI follows the job the call answered with over WatchJob, shows its
 * bytes, and ends with the resource as the job left it.
 */
import { mkdtempSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { VmSchema, VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobProgressSchema, JobSchema, JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { BackupMode, BackupSchema, BackupService, BackupState, type Backup } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { Code, createServer, implement, StratumError, type ServiceImpl } from "@stratum/rpc";
import { run } from "../main";

const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-follow-"));
const VOL = "33333333-3333-4333-8333-333333333333";
const BS = "55555555-5555-4555-8555-555555555555";
const BACKUP = "66666666-6666-4666-8666-666666666666";
const JOB = "77777777-7777-4777-8777-777777777777";
const VM = "88888888-8888-4888-8888-888888888888";
const SOURCE = "11111111-1111-4111-8111-111111111111";
const GIB = 1n << 30n;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function job(revision: number, state: JobState, progress: MessageInitShape<typeof JobProgressSchema> = {}, more: MessageInitShape<typeof JobSchema> = {}): Job {
  return create(JobSchema, { uuid: JOB, type: "storage.backup", revision: BigInt(revision), state, progress: create(JobProgressSchema, progress), ...more });
}

function unimplemented<S extends DescService>(service: S): ServiceImpl<S> {
  const fail = (): never => {
    throw new StratumError(Code.UNIMPLEMENTED, "not in this test");
  };
  return Object.fromEntries(service.methods.map((m) => [m.localName, fail])) as unknown as ServiceImpl<S>;
}

interface World {
  /** What WatchJob plays, then it stays open until the client goes (a job that does not change). */
  watch: Job[];
  /** The backup GetBackup answers (the job's effect on it). */
  backup: Backup;
  /** Calls, in order, by method. */
  calls: string[];
}

/** storage, compute and longjob on one in-process server (the CLI dials each at its own endpoint flag, here the same address). */
async function world(init: Partial<World> & { onWatched?: (index: number) => void } = {}): Promise<World & { address: string }> {
  const w: World = { watch: init.watch ?? [], backup: init.backup ?? create(BackupSchema, { uuid: BACKUP, volumeUuid: VOL, backupStorageUuid: BS, mode: BackupMode.FULL, state: BackupState.CREATING, jobUuid: JOB }), calls: [] };
  const creating = create(BackupSchema, { ...w.backup, state: BackupState.CREATING });
  const backups: ServiceImpl<typeof BackupService> = {
    ...unimplemented(BackupService),
    createBackup(req) {
      w.calls.push("createBackup");
      return { backup: { ...creating, volumeUuid: req.volumeUuid, mode: req.mode }, jobUuid: JOB };
    },
    restoreBackup() {
      w.calls.push("restoreBackup");
      return { backup: { ...w.backup, state: BackupState.RESTORING }, jobUuid: JOB };
    },
    getBackup() {
      w.calls.push("getBackup");
      return { backup: w.backup };
    },
  };
  const jobs: ServiceImpl<typeof LongJobService> = {
    ...unimplemented(LongJobService),
    cancelJob(req) {
      w.calls.push(`cancelJob ${req.uuid}`);
      return { job: job(2, JobState.CANCELING) };
    },
    async *watchJob(req, ctx) {
      w.calls.push(`watchJob ${req.uuid}`);
      for (const [i, j] of w.watch.entries()) {
        yield { job: j };
        init.onWatched?.(i);
      }
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    },
  };
  const vms: ServiceImpl<typeof VmService> = {
    ...unimplemented(VmService),
    migrateVm(req) {
      w.calls.push(`migrateVm ${req.cancelBackupJobUuids.join(",")}`);
      return { vm: { uuid: VM, name: "web-1", state: VmState.RUNNING, hostUuid: SOURCE }, jobUuid: JOB };
    },
    getVm() {
      w.calls.push("getVm");
      return { vm: { uuid: VM, name: "web-1", state: VmState.RUNNING, hostUuid: SOURCE } };
    },
  };
  const server = await createServer({ host: "127.0.0.1", port: 0, services: [implement(BackupService, backups), implement(LongJobService, jobs), implement(VmService, vms)] });
  cleanup.push(() => server.shutdown(0));
  return Object.assign(w, { address: server.address });
}

async function cli(argv: string[], address: string, options: { tty?: boolean; signal?: AbortSignal; onStdout?: (text: string) => void } = {}) {
  let stdout = "";
  let stderr = "";
  const env = { STRATUM_ENDPOINT: address, STRATUM_LONGJOB_ENDPOINT: address, STRATUM_STORAGE_ENDPOINT: address };
  const code = await run(argv, {
    stdout: {
      write: (s: string) => {
        stdout += s;
        options.onStdout?.(stdout);
      },
      isTTY: options.tty ?? false,
    },
    stderr: { write: (s: string) => (stderr += s) },
    env,
    repoRoot: emptyRoot,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { code, stdout, stderr };
}

const T = "\\d+:\\d\\d";

describe("backup … --wait follows the backup's job on longjob", () => {
  it("create --wait: a line per change with bytes done/total, the job's end, then the backup as it ended", async () => {
    const w = await world({
      watch: [job(1, JobState.WAITING), job(2, JobState.RUNNING, { stage: "copy", percent: 25, bytesDone: GIB, bytesTotal: 4n * GIB }), job(3, JobState.SUCCEEDED, { stage: "copy", percent: 100, bytesDone: 4n * GIB, bytesTotal: 4n * GIB })],
      backup: create(BackupSchema, { uuid: BACKUP, volumeUuid: VOL, mode: BackupMode.FULL, state: BackupState.AVAILABLE, sizeBytes: 4n * GIB, jobUuid: JOB }),
    });
    const res = await cli(["backup", "create", VOL, "--storage", BS, "--wait"], w.address);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      new RegExp(`^Waiting  0%  ${T}\nRunning  copy  25%  1 GiB/4 GiB  ${T}\njob ${JOB} Succeeded \\(waited ${T}\\)\nUUID .*\n${BACKUP}\\s+-\\s+${VOL}\\s+Full\\s+Available\\s+4 GiB\\s+${JOB}\n$`),
    );
    expect(w.calls).toEqual(["createBackup", `watchJob ${JOB}`, "getBackup"]);
  });

  it("on a terminal the progress is one line redrawn with a bar; --json puts it on stderr and the final backup on stdout", async () => {
    const watch = [job(2, JobState.RUNNING, { stage: "copy", percent: 50, bytesDone: 2n * GIB, bytesTotal: 4n * GIB }), job(3, JobState.FAILED, { stage: "copy", percent: 50 }, { error: { code: "UNAVAILABLE", reason: "AGENT_UNREACHABLE", message: "agent of host h1 did not answer" } })];
    const failed = create(BackupSchema, { uuid: BACKUP, volumeUuid: VOL, state: BackupState.ERROR, error: "agent of host h1 did not answer", jobUuid: JOB });
    const tty = await cli(["backup", "create", VOL, "--storage", BS, "--wait"], (await world({ watch, backup: failed })).address, { tty: true });
    expect(tty.code).toBe(1);
    expect(tty.stdout).toContain(`\rRunning  copy  [##########..........] 50%  2 GiB/4 GiB  0:00`);
    expect(tty.stdout).toMatch(new RegExp(`\rjob ${JOB} Failed \\(waited ${T}\\): UNAVAILABLE \\(AGENT_UNREACHABLE\\): agent of host h1 did not answer\u001b\\[K\n`));
    expect(tty.stdout).toMatch(/\n\S+\s+-\s+\S+\s+-\s+Error\s+-\s+\S+\n$/);

    const json = await cli(["backup", "create", VOL, "--storage", BS, "--wait", "--json"], (await world({ watch, backup: failed })).address);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ jobUuid: JOB, backup: { uuid: BACKUP, state: "BACKUP_STATE_ERROR", error: "agent of host h1 did not answer" } });
    expect(json.stderr).toMatch(new RegExp(`^Running  copy  50%  2 GiB/4 GiB  ${T}\njob ${JOB} Failed`));
  });

  it("Ctrl-C while waiting exits 130, says how to cancel the backup, and asks nothing more", async () => {
    const ctrlC = new AbortController();
    const w = await world({ watch: [job(2, JobState.RUNNING, { stage: "copy", percent: 10 })] });
    const res = await cli(["backup", "create", VOL, "--storage", BS, "--wait"], w.address, { signal: ctrlC.signal, onStdout: (text) => text.includes("Running") && ctrlC.abort() });
    expect(res.code).toBe(130);
    expect(res.stdout).toMatch(new RegExp(`\nstopped waiting; job ${JOB} goes on \\(Running\\): cancel it with 'stratumctl backup cancel ${BACKUP}', or follow it with 'stratumctl job watch ${JOB}'\n$`));
    expect(w.calls).toEqual(["createBackup", `watchJob ${JOB}`]);
  });

  it("cancel --wait cancels the backup's job and exits 0 once it is Canceled; 1 when the backup finished first", async () => {
    const canceled = await world({ watch: [job(2, JobState.CANCELING), job(3, JobState.CANCELED, {}, { error: { code: "CANCELLED", message: "canceled by request" } })] });
    const res = await cli(["backup", "cancel", BACKUP, "--wait"], canceled.address);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^Canceling  0%  ${T}\njob ${JOB} Canceled \\(waited ${T}\\): CANCELLED: canceled by request\n$`));
    expect(canceled.calls).toEqual(["getBackup", `cancelJob ${JOB}`, `watchJob ${JOB}`]);

    const tooLate = await world({ watch: [job(4, JobState.SUCCEEDED, { percent: 100 })] });
    const late = await cli(["backup", "cancel", BACKUP, "--wait"], tooLate.address);
    expect(late.code).toBe(1);
    expect(late.stdout).toMatch(new RegExp(`job ${JOB} Succeeded \\(waited ${T}\\)\n$`));
  });

  it("restore --wait follows the restore job the call answered with", async () => {
    const w = await world({
      watch: [job(1, JobState.RUNNING, { stage: "write", percent: 75, bytesDone: 3n * GIB, bytesTotal: 4n * GIB }), job(2, JobState.SUCCEEDED, { percent: 100 })],
      backup: create(BackupSchema, { uuid: BACKUP, volumeUuid: VOL, state: BackupState.AVAILABLE, sizeBytes: 4n * GIB, jobUuid: "99999999-9999-4999-8999-999999999999" }),
    });
    const res = await cli(["backup", "restore", BACKUP, "--to", VOL, "--wait"], w.address);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^Running  write  75%  3 GiB/4 GiB  ${T}\njob ${JOB} Succeeded .*\n.*\n${BACKUP}\\s+-\\s+${VOL}\\s+-\\s+Available\\s+4 GiB`));
    expect(w.calls).toEqual(["restoreBackup", `watchJob ${JOB}`, "getBackup"]);
  });
});

describe("vm migrate --wait", () => {
  it("follows the migration job; a failure (a backup cancel refused) exits 1 naming it, and shows the VM still on its source", async () => {
    const w = await world({
      watch: [
        job(1, JobState.RUNNING, { stage: "cancel-backups" }, { type: "compute.migrate" }),
        job(2, JobState.FAILED, { stage: "cancel-backups" }, { type: "compute.migrate", error: { code: "FAILED_PRECONDITION", reason: "BACKUP_CANCEL_FAILED", message: `cancel of backup job ${BACKUP} failed: it is Succeeded` } }),
      ],
    });
    const res = await cli(["vm", "migrate", VM, "--cancel-backup", BACKUP, "--wait"], w.address);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(new RegExp(`^Running  cancel-backups  0%  ${T}\njob ${JOB} Failed \\(waited ${T}\\): FAILED_PRECONDITION \\(BACKUP_CANCEL_FAILED\\): cancel of backup job ${BACKUP} failed: it is Succeeded\n`));
    expect(res.stdout).toMatch(new RegExp(`\n${VM}\\s+web-1\\s+Running\\s+.*${SOURCE}\n$`));
    expect(w.calls).toEqual([`migrateVm ${BACKUP}`, `watchJob ${JOB}`, "getVm"]);
  });
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("errors name the service whose call failed", () => {
  it("backup cancel with longjob down says longjob and its address, not storage's", async () => {
    const w = await world();
    const port = await closedPort();
    const res = await cli(["backup", "cancel", BACKUP, "--longjob-endpoint", `127.0.0.1:${port}`, "--timeout", "2"], w.address);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^error: (cannot reach longjob at 127\\.0\\.0\\.1:${port}|no answer from longjob at 127\\.0\\.0\\.1:${port})`));
    expect(w.calls).toEqual(["getBackup"]);
  });
});
