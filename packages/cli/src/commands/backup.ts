/**
 * `stratumctl backup …`: backups of volumes (BackupService on storage). Making and restoring a
 * backup is a long job on longjob: `create` and `restore` answer at once with the backup and the
 * job's uuid, and with `--wait` follow the job (job-follow.ts: progress in bytes, Ctrl-C stops the
 * waiting, not the job), then print the backup as it ended. `cancel` cancels the backup's job on
 * longjob (the backup becomes Canceled; nothing of it counts as available).
 *
 * With `--json`, create and restore print their response (the backup and `jobUuid`) — with
 * `--wait`, the backup as it ended — so a script gets the job to follow or cancel.
 */
import { create } from "@bufbuild/protobuf";
import { JobSchema, JobState, JobStateSchema } from "@stratum/proto/stratum/longjob/v1/job_pb";
import {
  BackupMode,
  BackupModeSchema,
  BackupSchema,
  BackupState,
  BackupStateSchema,
  CreateBackupResponseSchema,
  DeleteBackupResponseSchema,
  ListBackupsResponseSchema,
  RestoreBackupResponseSchema,
  type Backup,
} from "@stratum/proto/stratum/storage/v1/backup_pb";
import { enumChoices, enumWord } from "../enums";
import { renderFields, renderTable } from "../table";
import { TOOL_NAME } from "../tool-name";
import { formatSize } from "../units";
import { EXIT_INTERRUPTED } from "../writer";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type CommandInput, type Command, type CommandResult } from "./command";
import { followJob, jobWaitFlag } from "./job-follow";

const COLUMNS = ["UUID", "NAME", "VOLUME", "MODE", "STATE", "SIZE", "JOB"];

function sizeCell(b: Backup): string {
  return b.state === BackupState.AVAILABLE || b.state === BackupState.RESTORING || b.sizeBytes > 0n ? formatSize(b.sizeBytes) : "";
}

function row(b: Backup): string[] {
  return [b.uuid, b.name, b.volumeUuid, enumWord(BackupModeSchema, b.mode), enumWord(BackupStateSchema, b.state), sizeCell(b), b.jobUuid];
}

function backupDetails(b: Backup): string {
  return renderFields([
    ["UUID", b.uuid],
    ["Name", b.name],
    ["Volume", b.volumeUuid],
    ["Backup storage", b.backupStorageUuid],
    ["Mode", enumWord(BackupModeSchema, b.mode)],
    ["Parent", b.parentBackupUuid],
    ["State", enumWord(BackupStateSchema, b.state)],
    ["Error", b.error],
    ["Size", sizeCell(b)],
    ["Job", b.jobUuid],
    ["Request ID", b.clientRequestId],
    ["Revision", String(b.revision)],
    ["Created", formatTime(b.createTime)],
    ["Updated", formatTime(b.updateTime)],
  ]);
}

const UUID_ARG = ["UUID"] as const;
const REQUEST_ID = { "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first answer" } } as const;

/**
 * What create and restore print: the backup and its job, or with --wait the job followed to its
 * end and then the backup as it ended (one GetBackup; skipped after Ctrl-C, which must not wait
 * for anything more).
 */
async function jobResult(
  input: CommandInput,
  answered: { backup?: Backup | undefined; jobUuid: string },
  json: (backup: Backup) => CommandResult["json"],
  what: string,
): Promise<CommandResult> {
  const backup = present(answered.backup, "backup");
  const table = renderTable(COLUMNS, [row(backup)]);
  if (!input.flags.bool("wait")) return { json: json(backup), text: `${table}${what} job ${answered.jobUuid}\n` };
  const outcome = await followJob(input, answered.jobUuid, { cancelCommand: `${TOOL_NAME} backup cancel ${backup.uuid}` });
  if (outcome.code === EXIT_INTERRUPTED) return { json: json(backup), text: "", exitCode: outcome.code };
  const ended = present((await input.api.backups.getBackup({ uuid: backup.uuid })).backup, "backup");
  return { json: json(ended), text: renderTable(COLUMNS, [row(ended)]), exitCode: outcome.code };
}

const createBackup: Command = {
  group: "backup",
  service: "storage",
  name: "create",
  summary: "back up a volume to a backup storage",
  description:
    "Records a backup of VOLUME, Creating, and starts its job; prints the backup and the job. --incremental copies only what changed " +
    "since the last Available backup of the volume on that storage (refused when there is none). With --wait, follows the job " +
    "(bytes done/total) until it ends and prints the backup, Available (exit 0), or Error or Canceled (exit 1).",
  args: ["VOLUME"],
  flags: {
    storage: { type: "string", value: "UUID", description: "the backup storage to write it to", required: true },
    incremental: { type: "boolean", description: "copy only what changed since the volume's last Available backup (default: a full backup)" },
    name: { type: "string", value: "NAME", description: "display name (at most 128 characters)" },
    ...REQUEST_ID,
    uuid: { type: "string", value: "UUID", description: "UUID for the new backup (default: the server chooses)" },
    ...jobWaitFlag("backup", "the backup is Available"),
  },
  examples: ["stratumctl backup create 0b7c… --storage 1d2e… --wait", "stratumctl backup create 0b7c… --storage 1d2e… --incremental --name nightly"],
  async run(input) {
    const { flags, args, api } = input;
    const request = {
      volumeUuid: args[0]!,
      backupStorageUuid: flags.required("storage"),
      mode: flags.bool("incremental") ? BackupMode.INCREMENTAL : BackupMode.FULL,
      name: flags.string("name") ?? "",
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    const res = await api.backups.createBackup(request);
    return jobResult(input, res, (backup) => jsonOf(CreateBackupResponseSchema, create(CreateBackupResponseSchema, { backup, jobUuid: res.jobUuid })), "backup");
  },
};

const STATE_CHOICES = enumChoices<BackupState>(BackupStateSchema);

const list: Command = {
  group: "backup",
  service: "storage",
  name: "list",
  summary: "list backups",
  description: "Lists backups in creation order, filtered by volume and state, one page at a time unless --all is given.",
  args: [],
  flags: {
    volume: { type: "string", value: "UUID", description: "only backups of this volume" },
    state: { type: "string", value: "STATE", description: `only backups in this state: ${[...STATE_CHOICES.keys()].join(", ")}` },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl backup list --volume 0b7c… --state available"],
  async run({ flags, api }) {
    const filter = { volumeUuid: flags.string("volume") ?? "", state: flags.choice("state", STATE_CHOICES) ?? BackupState.UNSPECIFIED };
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.backups.listBackups({ ...filter, ...page });
      return { items: res.backups, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListBackupsResponseSchema, create(ListBackupsResponseSchema, { backups: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "backups", command: "backup list" });
  },
};

const get: Command = {
  group: "backup",
  service: "storage",
  name: "get",
  summary: "show one backup",
  description: "Shows a backup in detail: its chain (parent), its job, and why it is Error if it is.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const backup = present((await api.backups.getBackup({ uuid: args[0]! })).backup, "backup");
    return { json: jsonOf(BackupSchema, backup), text: backupDetails(backup) };
  },
};

const cancel: Command = {
  group: "backup",
  service: "storage",
  name: "cancel",
  summary: "cancel a backup that is being made",
  description:
    "Cancels the job making a backup (longjob's CancelJob on the backup's job): the agent stops within a chunk and the backup becomes " +
    "Canceled, holding nothing. Prints the job, Canceling (or as it ended, if it already had). With --wait, follows the job to its end: " +
    "exit 0 once it is Canceled, 1 if it ended otherwise (it Succeeded first: the backup is Available).",
  args: UUID_ARG,
  flags: { ...jobWaitFlag("backup", "the job ended Canceled") },
  examples: ["stratumctl backup cancel 0b7c… --wait"],
  async run(input) {
    const { flags, args, api } = input;
    const backup = present((await api.backups.getBackup({ uuid: args[0]! })).backup, "backup");
    // The server's answer, not input: a backup always has its job, but an empty uuid must not become CancelJob("").
    if (backup.jobUuid === "") throw new Error(`backup ${backup.uuid} has no job to cancel (it is ${enumWord(BackupStateSchema, backup.state)})`);
    const job = present((await api.jobs.cancelJob({ uuid: backup.jobUuid })).job, "job");
    if (!flags.bool("wait")) {
      return { json: jsonOf(JobSchema, job), text: `backup ${backup.uuid}: job ${job.uuid} ${enumWord(JobStateSchema, job.state)}\n` };
    }
    const outcome = await followJob(input, job.uuid, { succeedsAt: JobState.CANCELED });
    return { json: jsonOf(JobSchema, outcome.job ?? job), text: "", exitCode: outcome.code };
  },
};

const restore: Command = {
  group: "backup",
  service: "storage",
  name: "restore",
  summary: "write an Available backup back to a volume",
  description:
    "Restores a backup (and the chain it depends on) into its own volume, or --to another one: not attached, at least the backed-up size. " +
    "Starts a restore job and prints the backup, Restoring, and the job; a cancelled restore leaves the target volume as it was. " +
    "With --wait, follows the job until it ends: exit 0 when it Succeeded, 1 otherwise.",
  args: UUID_ARG,
  flags: {
    to: { type: "string", value: "VOLUME", description: "the volume to restore into (default: the backup's own volume)" },
    ...REQUEST_ID,
    ...jobWaitFlag("restore"),
  },
  examples: ["stratumctl backup restore 0b7c… --wait", "stratumctl backup restore 0b7c… --to 1d2e… --wait"],
  async run(input) {
    const { flags, args, api } = input;
    const res = await api.backups.restoreBackup({ uuid: args[0]!, targetVolumeUuid: flags.string("to") ?? "", clientRequestId: flags.string("request-id") ?? "" });
    return jobResult(input, res, (backup) => jsonOf(RestoreBackupResponseSchema, create(RestoreBackupResponseSchema, { backup, jobUuid: res.jobUuid })), "restore");
  },
};

const remove: Command = {
  group: "backup",
  service: "storage",
  name: "delete",
  summary: "delete a backup (and, with --cascade, the backups chained from it)",
  description:
    "Deletes an Available, Error or Canceled backup and gives its bytes back to its backup storage. Refused while incremental backups " +
    "depend on it (the error names them) unless --cascade, which deletes them too. Prints every backup deleted.",
  args: UUID_ARG,
  flags: { cascade: { type: "boolean", description: "also delete the incremental backups that depend on it" }, ...REQUEST_ID },
  examples: ["stratumctl backup delete 0b7c… --cascade"],
  async run({ flags, args, api }) {
    const res = await api.backups.deleteBackup({ uuid: args[0]!, cascade: flags.bool("cascade"), clientRequestId: flags.string("request-id") ?? "" });
    return { json: jsonOf(DeleteBackupResponseSchema, res), text: res.backups.length > 0 ? renderTable(COLUMNS, res.backups.map(row)) : `backup ${args[0]!} deleted\n` };
  },
};

export const BACKUP_COMMANDS: readonly Command[] = [createBackup, list, get, cancel, restore, remove];
