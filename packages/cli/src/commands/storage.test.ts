import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { create, type DescService } from "@bufbuild/protobuf";
import { VmSchema } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobSchema, JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupSchema, BackupState, BackupStorageSchema, DeleteBackupResponseSchema } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { ListVolumeTasksResponseSchema } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { PrimaryStorageSchema, VolumeKind, VolumeSchema, VolumeState, VolumeTaskSchema } from "@stratum/proto/stratum/storage/v1/volume_pb";
import type { CallOptions } from "@stratum/rpc";
import type { Connect } from "../api";
import { run } from "../main";

const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-storage-"));
const VOL = "33333333-3333-4333-8333-333333333333";
const PS = "44444444-4444-4444-8444-444444444444";
const BS = "55555555-5555-4555-8555-555555555555";
const BACKUP = "66666666-6666-4666-8666-666666666666";
const JOB = "77777777-7777-4777-8777-777777777777";
const VM = "88888888-8888-4888-8888-888888888888";
const GIB = 1n << 30n;

interface Recorded {
  service: string;
  target: string;
  method: string;
  request: unknown;
}

const volume = create(VolumeSchema, { uuid: VOL, name: "data-1", primaryStorageUuid: PS, kind: VolumeKind.DATA, sizeBytes: 10n * GIB, state: VolumeState.IN_USE, vmUuid: VM });
const backup = create(BackupSchema, { uuid: BACKUP, name: "nightly", volumeUuid: VOL, backupStorageUuid: BS, mode: BackupMode.FULL, state: BackupState.CREATING, jobUuid: JOB });

/** Answers by method name; a method without an answer is a test bug, loudly. */
const ANSWERS: Record<string, (request: never) => unknown> = {
  addPrimaryStorage: () => ({ primaryStorage: create(PrimaryStorageSchema, { uuid: PS, name: "ceph-1", totalCapacityBytes: 100n * GIB, usedBytes: 25n * GIB }) }),
  listPrimaryStorages: () => ({ primaryStorages: [create(PrimaryStorageSchema, { uuid: PS, name: "ceph-1", totalCapacityBytes: 100n * GIB, usedBytes: 25n * GIB })], nextPageToken: "" }),
  addBackupStorage: () => ({ backupStorage: create(BackupStorageSchema, { uuid: BS, name: "s3", totalCapacityBytes: 1n << 40n }) }),
  createVolume: () => ({ volume }),
  resizeVolume: () => ({ volume }),
  attachVolume: () => ({ volume }),
  listVolumes: () => ({ volumes: [], nextPageToken: "" }),
  listVolumeTasks: () => create(ListVolumeTasksResponseSchema, { tasks: [create(VolumeTaskSchema, { taskUuid: BACKUP, volumeUuid: VOL, kind: "backup", state: "running", hostUuid: VM, bytesDone: GIB, bytesTotal: 4n * GIB })] }),
  createBackup: () => ({ backup, jobUuid: JOB }),
  getBackup: () => ({ backup }),
  listBackups: () => ({ backups: [backup], nextPageToken: "" }),
  deleteBackup: () => create(DeleteBackupResponseSchema, { backups: [create(BackupSchema, { ...backup, state: BackupState.DELETED })] }),
  cancelJob: () => ({ job: create(JobSchema, { uuid: JOB, state: JobState.CANCELING, revision: 3n }) }),
  migrateVm: () => ({ vm: create(VmSchema, { uuid: VM, name: "web-1" }), jobUuid: JOB }),
};

function fake() {
  const calls: Recorded[] = [];
  const connect = ((service: DescService, target: string) => {
    const client: Record<string, unknown> = {};
    for (const m of service.methods) {
      client[m.localName] = async (request: unknown, _options?: CallOptions) => {
        calls.push({ service: service.typeName.split(".").at(-1)!, target, method: m.localName, request });
        const answer = ANSWERS[m.localName];
        if (!answer) throw new Error(`no answer scripted for ${m.localName}`);
        return answer(request as never);
      };
    }
    return client;
  }) as Connect;
  return { connect, calls };
}

async function cli(argv: string[], f = fake(), env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, repoRoot: emptyRoot, connect: f.connect });
  return { code, stdout, stderr, calls: f.calls };
}

describe("storage usage errors: exit 2, the flag named, nothing sent", () => {
  it.each([
    [["volume", "create", "--name", "d", "--size", "10GB", "--storage", PS], /^error: invalid --size: "10GB" is ambiguous: write 10GiB/],
    [["volume", "create", "--name", "d", "--size", "10 parsecs", "--storage", PS], /^error: invalid --size: "10 parsecs" has an unknown unit "parsecs"/],
    [["volume", "create", "--name", "d", "--size", "10GiB"], /^error: missing required flag --storage\n/],
    [["volume", "create", "--name", "d", "--size", "10GiB", "--storage", PS, "--kind", "swap"], /^error: invalid --kind "swap": must be one of root, data\n/],
    [["volume", "resize", VOL], /^error: missing required flag --size\n/],
    [["volume", "resize", VOL, "--size", "-1G"], /^error: flag --size needs a value \(SIZE\)/],
    [["volume", "attach", VOL], /^error: missing required flag --vm\n/],
    [["volume", "list", "--state", "busy"], /^error: invalid --state "busy": must be one of available, in_use, deleted, restoring\n/],
    [["volume", "tasks"], /^error: missing argument VOLUME…\n/],
    [["volume", "tasks", VOL, "--kind", "Backup!"], /^error: invalid --kind "Backup!": must be a lower-case word/],
    [["primary-storage", "add", "--name", "p", "--capacity", "1.5"], /^error: invalid --capacity: "1.5" is not a whole number of bytes\n/],
    [["backup-storage", "add", "--name", "b"], /^error: missing required flag --capacity\n/],
    [["backup", "create", VOL], /^error: missing required flag --storage\n/],
    [["backup", "create", VOL, "--storage", BS, "--incremental=yes"], /^error: flag --incremental takes no value \(got "yes"\)/],
    [["backup", "create", VOL, "--storge", BS], /^error: unknown flag --storge for 'backup create' \(did you mean --storage\?\)/],
    [["backup", "list", "--state", "done"], /^error: invalid --state "done": must be one of creating, available, error, canceled, restoring, deleting, deleted\n/],
    [["backup", "delete", BACKUP, "--cascade", "--cascade"], /^error: flag --cascade given more than once\n/],
    [["backup", "restor", BACKUP], /^error: unknown command "backup restor" \(did you mean restore\?\)/],
    [["backup", "get", BACKUP, "--storage-endpoint", "nowhere"], /^error: --storage-endpoint: "nowhere" is not HOST:PORT/],
    [["vm", "migrate", VM, "--backup-wait-ms", "30s"], /^error: invalid --backup-wait-ms "30s": must be a whole number/],
    [["vm", "migrate", VM, "--cancel-backup"], /^error: flag --cancel-backup needs a value \(JOB\)/],
  ])("%j", async (argv, message) => {
    const res = await cli(argv);
    expect(res.stderr).toMatch(message);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.calls).toEqual([]);
  });
});

describe("storage commands", () => {
  it("go to storage's endpoint; backup cancel asks storage for the job and cancels it on longjob", async () => {
    const env = { STRATUM_ENDPOINT: "10.0.0.1:7101", STRATUM_LONGJOB_ENDPOINT: "10.0.0.2:7401", STRATUM_STORAGE_ENDPOINT: "10.0.0.3:7301" };
    const f = fake();
    expect((await cli(["volume", "list"], f, env)).code).toBe(0);
    const cancel = await cli(["backup", "cancel", BACKUP], f, env);
    expect(cancel.stderr).toBe("");
    expect(cancel.stdout).toBe(`backup ${BACKUP}: job ${JOB} Canceling\n`);
    expect((await cli(["volume", "list", "--storage-endpoint", "10.0.0.4:7301"], f, env)).code).toBe(0);
    expect(f.calls.map((c) => [c.service, c.target, c.method])).toEqual([
      ["StorageService", "10.0.0.3:7301", "listVolumes"],
      ["BackupService", "10.0.0.3:7301", "getBackup"],
      ["LongJobService", "10.0.0.2:7401", "cancelJob"],
      ["StorageService", "10.0.0.4:7301", "listVolumes"],
    ]);
    expect(f.calls[2]!.request).toEqual({ uuid: JOB });
  });

  it("volume create converts human sizes and defaults to a data volume; prints sizes for people", async () => {
    const res = await cli(["volume", "create", "--name", "data-1", "--size", "10GiB", "--storage", PS]);
    expect(res.code).toBe(0);
    expect(res.calls[0]!.request).toEqual({ name: "data-1", sizeBytes: 10n * GIB, primaryStorageUuid: PS, kind: VolumeKind.DATA, clientRequestId: "", uuid: "" });
    expect(res.stdout).toBe(`UUID${" ".repeat(34)}NAME    KIND  SIZE    STATE   VM${" ".repeat(36)}STORAGE\n${VOL}  data-1  Data  10 GiB  In Use  ${VM}  ${PS}\n`);
    const root = await cli(["volume", "create", "--name", "r", "--size", "512MiB", "--storage", PS, "--kind", "root"]);
    expect(root.calls[0]!.request).toMatchObject({ sizeBytes: 512n << 20n, kind: VolumeKind.ROOT });
  });

  it("resize, attach and tasks send what was typed", async () => {
    expect((await cli(["volume", "resize", VOL, "--size", "1.5TiB"])).calls[0]!.request).toEqual({ uuid: VOL, sizeBytes: 3n << 39n, clientRequestId: "" });
    expect((await cli(["volume", "attach", VOL, "--vm", VM])).calls[0]!.request).toEqual({ uuid: VOL, vmUuid: VM, clientRequestId: "" });
    const tasks = await cli(["volume", "tasks", VOL, BS, "--kind", "backup", "--kind", "restore"]);
    expect(tasks.calls[0]!.request).toEqual({ volumeUuids: [VOL, BS], kinds: ["backup", "restore"] });
    expect(tasks.stdout).toMatch(new RegExp(`\n${BACKUP}\\s+${VOL}\\s+backup\\s+running\\s+${VM}\\s+1 GiB/4 GiB \\(25%\\)\\s+-\n$`));
  });

  it("an empty volume list says so on stderr and prints nothing", async () => {
    const res = await cli(["volume", "list", "--vm", VM, "--state", "in_use"]);
    expect(res).toMatchObject({ code: 0, stdout: "", stderr: "no volumes found\n" });
    expect(res.calls[0]!.request).toEqual({ primaryStorageUuid: "", state: VolumeState.IN_USE, vmUuid: VM, pageSize: 0, pageToken: "" });
  });

  it("primary storage shows used/total with the share; --json keeps exact bytes as strings", async () => {
    const list = await cli(["primary-storage", "list"]);
    expect(list.stdout).toMatch(new RegExp(`\n${PS}\\s+ceph-1\\s+shared\\s+25 GiB/100 GiB \\(25%\\)\n$`));
    const add = await cli(["primary-storage", "add", "--name", "ceph-1", "--capacity", "100G", "--json"]);
    expect(add.calls[0]!.request).toEqual({ name: "ceph-1", totalCapacityBytes: 100n * GIB, hostUuid: "", clientRequestId: "", uuid: "" });
    expect(JSON.parse(add.stdout)).toMatchObject({ uuid: PS, totalCapacityBytes: "107374182400", usedBytes: "26843545600", hostUuid: "" });
  });

  it("backup create sends the mode, prints the backup and its job; --json is the response with jobUuid", async () => {
    const res = await cli(["backup", "create", VOL, "--storage", BS, "--incremental", "--name", "nightly"]);
    expect(res.calls[0]!.request).toEqual({ volumeUuid: VOL, backupStorageUuid: BS, mode: BackupMode.INCREMENTAL, name: "nightly", clientRequestId: "", uuid: "" });
    expect(res.stdout).toMatch(new RegExp(`\n${BACKUP}\\s+nightly\\s+${VOL}\\s+Full\\s+Creating\\s+-\\s+${JOB}\nbackup job ${JOB}\n$`));
    const full = await cli(["backup", "create", VOL, "--storage", BS, "--json"]);
    expect(full.calls[0]!.request).toMatchObject({ mode: BackupMode.FULL });
    expect(JSON.parse(full.stdout)).toMatchObject({ jobUuid: JOB, backup: { uuid: BACKUP, state: "BACKUP_STATE_CREATING" } });
  });

  it("backup list filters by volume and state; delete --cascade prints every backup deleted", async () => {
    const list = await cli(["backup", "list", "--volume", VOL, "--state", "available"]);
    expect(list.calls[0]!.request).toEqual({ volumeUuid: VOL, state: BackupState.AVAILABLE, pageSize: 0, pageToken: "" });
    const del = await cli(["backup", "delete", BACKUP, "--cascade"]);
    expect(del.calls[0]!.request).toEqual({ uuid: BACKUP, cascade: true, clientRequestId: "" });
    expect(del.stdout).toMatch(new RegExp(`\n${BACKUP}\\s+nightly\\s+${VOL}\\s+Full\\s+Deleted\\s+-\\s+${JOB}\n$`));
  });

  it("vm migrate sends the host, every --cancel-backup in order and the wait; prints the VM and the job", async () => {
    const other = "99999999-9999-4999-8999-999999999999";
    const res = await cli(["vm", "migrate", VM, "--host", PS, "--cancel-backup", JOB, "--cancel-backup", other, "--backup-wait-ms", "5000", "--request-id", "mig-1"]);
    expect(res.stderr).toBe("");
    expect(res.calls.map((c) => [c.service, c.method])).toEqual([["VmService", "migrateVm"]]);
    expect(res.calls[0]!.request).toEqual({ uuid: VM, targetHostUuid: PS, cancelBackupJobUuids: [JOB, other], backupWaitTimeoutMs: 5000, clientRequestId: "mig-1" });
    expect(res.stdout).toMatch(new RegExp(`^UUID\\s+NAME.*\n${VM}\\s+web-1.*\nmigration job ${JOB}\n$`));
  });

  it("help lists the new groups and the storage endpoint", async () => {
    const help = await cli(["--help"]);
    for (const cmd of ["primary-storage add", "backup-storage list", "volume tasks VOLUME…", "backup create VOLUME", "backup restore UUID", "vm migrate UUID"]) expect(help.stdout).toContain(`  ${cmd}`);
    expect(help.stdout).toContain("--storage-endpoint HOST:PORT");
    expect((await cli(["vm", "migrate", "--help"])).stdout).toMatch(/^Usage: stratumctl vm migrate UUID \[--host UUID\] \[--cancel-backup JOB …\] \[--backup-wait-ms N\]/);
  });
});
