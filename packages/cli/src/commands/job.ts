/**
 * `stratumctl job …`: long jobs, on the longjob service. Each command is one LongJobService RPC
 * (see proto/stratum/longjob/v1/longjob.proto for the state machine); the ones that start or end
 * work (`submit`, `cancel`, `rerun`) take `--wait` to follow the job to its end (wait.ts), and
 * `job watch` is that waiting on its own.
 *
 * With `--wait` and `--json`, the progress goes to stderr and stdout gets the job as it ended, so
 * a script can both watch a job and parse its outcome.
 */
import { create } from "@bufbuild/protobuf";
import {
  InterruptPolicySchema,
  JobSchema,
  JobState,
  JobStateSchema,
  ParameterKind,
  type Job,
  type JobType,
  type ParameterSpec,
} from "@stratum/proto/stratum/longjob/v1/job_pb";
import { DeleteJobResponseSchema, ListJobsResponseSchema, ListJobTypesResponseSchema } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { FlagSpecs } from "../args";
import { enumChoices, enumWord } from "../enums";
import { parseJobParams } from "../job-params";
import { EMPTY, renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { describeJobError, waitForJob } from "../wait";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandInput, type CommandResult } from "./command";
import { watchJobs } from "./job-follow";

const COLUMNS = ["UUID", "TYPE", "STATE", "PROGRESS", "TARGET", "CREATED"];

/** `45% copy`: how far, and in which stage. */
function progressCell(job: Job): string {
  const p = job.progress;
  if (!p) return EMPTY;
  return [`${p.percent}%`, p.stage].filter(Boolean).join(" ");
}

function targetCell(job: Job): string {
  return job.target ? [job.target.service, job.target.uuid].filter(Boolean).join("/") : EMPTY;
}

function row(job: Job): string[] {
  return [job.uuid, job.type, enumWord(JobStateSchema, job.state), progressCell(job), targetCell(job), formatTime(job.createTime)];
}

function jobDetails(job: Job): string {
  const p = job.progress;
  const hasParameters = job.parameters && Object.keys(job.parameters).length > 0;
  const hasResult = job.result && Object.keys(job.result).length > 0;
  return renderFields([
    ["UUID", job.uuid],
    ["Type", job.type],
    ["State", enumWord(JobStateSchema, job.state)],
    ["Target", targetCell(job)],
    ["Progress", p ? `${p.percent}%` : ""],
    ["Stage", p?.stage ?? ""],
    ["Bytes", p && p.bytesTotal > 0n ? `${formatSize(p.bytesDone)} of ${formatSize(p.bytesTotal)}` : ""],
    ["Message", p?.message ?? ""],
    ["Error", describeJobError(job)],
    ["Parameters", hasParameters ? JSON.stringify(job.parameters) : ""],
    ["Result", hasResult ? JSON.stringify(job.result) : ""],
    ["Executor", job.executor],
    ["Attempt", job.attempt ? String(job.attempt) : ""],
    ["Rerun of", job.rerunOf],
    ["Request ID", job.clientRequestId],
    ["Revision", String(job.revision)],
    ["Created", formatTime(job.createTime)],
    ["Started", formatTime(job.startTime)],
    ["Updated", formatTime(job.updateTime)],
    ["Finished", formatTime(job.finishTime)],
  ]);
}

/** One job as a one-row table: what a mutation without --wait prints. */
function jobResult(j: Job | undefined): CommandResult {
  const job = present(j, "job");
  return { json: jsonOf(JobSchema, job), text: renderTable(COLUMNS, [row(job)]) };
}

const UUID_ARG = ["UUID"] as const;

const WAIT_FLAG: FlagSpecs = {
  wait: { type: "boolean", description: "follow the job until it ends, showing its progress; exit 0 if it Succeeded, 1 if it Failed, was Canceled or Suspended (Ctrl-C stops waiting, not the job)" },
};

/**
 * Follows `job` to its end (see wait.ts) and returns the job as it ended. The display goes to
 * stdout for people, or to stderr with --json so stdout holds only the JSON.
 */
async function waitResult(input: CommandInput, job: Job): Promise<CommandResult> {
  const { flags, api, io } = input;
  const outcome = await waitForJob({
    uuid: job.uuid,
    watch: (signal) => watchJobs(api, job.uuid, signal),
    out: flags.bool("json") ? io.stderr : io.stdout,
    signal: io.signal,
  });
  return { json: jsonOf(JobSchema, outcome.job ?? job), text: "", exitCode: outcome.code };
}

/** A mutation's job, waited for with --wait, else printed as it is now. */
async function mutationResult(input: CommandInput, j: Job | undefined): Promise<CommandResult> {
  if (!input.flags.bool("wait")) return jobResult(j);
  return waitResult(input, present(j, "job"));
}

const submit: Command = {
  group: "job",
  service: "longjob",
  name: "submit",
  summary: "submit a job of a registered type",
  description:
    "Submits a job and prints it, Waiting; with --wait, follows it to its end. Parameters are --param KEY=VALUE " +
    "(a number when it reads as one, true/false a boolean, else a string; repeatable) and/or --params-json with a JSON object. " +
    "'stratumctl job types' lists the types and their parameters. With --request-id, repeating the same command returns the first job.",
  args: ["TYPE"],
  flags: {
    target: { type: "string", value: "UUID", description: "the resource to work on (required by some types)" },
    param: { type: "string", value: "KEY=VALUE", repeatable: true, description: "a parameter; repeat for more" },
    "params-json": { type: "string", value: "JSON", description: `parameters as a JSON object, e.g. '{"durationMs": 500}'` },
    "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first job" },
    uuid: { type: "string", value: "UUID", description: "UUID for the new job (default: the server chooses)" },
    ...WAIT_FLAG,
  },
  examples: ["stratumctl job submit longjob.sleep --param durationMs=3000 --param steps=3 --wait", `stratumctl job submit longjob.noop --params-json '{}' --json`],
  async run(input) {
    const { flags, args, api } = input;
    const request = {
      type: args[0]!,
      targetUuid: flags.string("target") ?? "",
      parameters: parseJobParams(flags.strings("param"), flags.string("params-json"), "job submit"),
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return mutationResult(input, (await api.jobs.submitJob(request)).job);
  },
};

const STATE_CHOICES = enumChoices<JobState>(JobStateSchema);

const list: Command = {
  group: "job",
  service: "longjob",
  name: "list",
  summary: "list jobs",
  description: "Lists jobs in submission order, filtered, one page at a time unless --all is given.",
  args: [],
  flags: {
    state: { type: "string", value: "STATE", description: `only jobs in this state: ${[...STATE_CHOICES.keys()].join(", ")}` },
    type: { type: "string", value: "TYPE", description: "only jobs of this type, e.g. longjob.sleep" },
    target: { type: "string", value: "UUID", description: "only jobs on this target resource" },
    ...PAGING_FLAGS,
  },
  examples: ["stratumctl job list --state running", "stratumctl job list --type longjob.sleep --all --json"],
  async run({ flags, api }) {
    const filter = { state: flags.choice("state", STATE_CHOICES) ?? JobState.UNSPECIFIED, type: flags.string("type") ?? "", targetUuid: flags.string("target") ?? "" };
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.jobs.listJobs({ ...filter, ...page });
      return { items: res.jobs, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListJobsResponseSchema, create(ListJobsResponseSchema, { jobs: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: COLUMNS, row, noun: "jobs", command: "job list" });
  },
};

const get: Command = {
  group: "job",
  service: "longjob",
  name: "get",
  summary: "show one job",
  description: "Shows a job in detail: its progress, its error if it failed, its result if it succeeded.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const job = present((await api.jobs.getJob({ uuid: args[0]! })).job, "job");
    return { json: jsonOf(JobSchema, job), text: jobDetails(job) };
  },
};

const watch: Command = {
  group: "job",
  service: "longjob",
  name: "watch",
  summary: "follow a job's progress until it ends",
  description:
    "Shows a job's progress as it changes until it ends: a line redrawn in place on a terminal, one line per change otherwise. " +
    "Exits 0 if it Succeeded, 1 if it Failed, was Canceled or is Suspended; Ctrl-C stops watching (130), not the job.",
  args: UUID_ARG,
  flags: {},
  examples: ["stratumctl job watch 0b7c…"],
  async run(input) {
    return waitResult(input, create(JobSchema, { uuid: input.args[0]! }));
  },
};

const cancel: Command = {
  group: "job",
  service: "longjob",
  name: "cancel",
  summary: "ask a job to stop",
  description:
    "Cancels a job: one not yet started is Canceled at once; a running one is Canceling until it stops at a checkpoint (Canceled) " +
    "or finishes first (Succeeded). Cancelling a finished job prints its final state. With --wait, follows it to its end.",
  args: UUID_ARG,
  flags: { ...WAIT_FLAG },
  async run(input) {
    return mutationResult(input, (await input.api.jobs.cancelJob({ uuid: input.args[0]! })).job);
  },
};

const rerun: Command = {
  group: "job",
  service: "longjob",
  name: "rerun",
  summary: "run a Failed or Canceled job again, or resume a Suspended one",
  description:
    "Runs a Failed or Canceled job again with the same parameters, as a new job whose 'Rerun of' names the first; " +
    "a Suspended job is resumed as itself. Prints the job that runs; with --wait, follows it to its end.",
  args: UUID_ARG,
  flags: { ...WAIT_FLAG },
  async run(input) {
    return mutationResult(input, (await input.api.jobs.rerunJob({ uuid: input.args[0]! })).job);
  },
};

const remove: Command = {
  group: "job",
  service: "longjob",
  name: "delete",
  summary: "forget a finished job",
  description: "Deletes a Succeeded, Failed or Canceled job's record. The server refuses for a job that has not finished: cancel it first.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const res = await api.jobs.deleteJob({ uuid: args[0]! });
    return { json: jsonOf(DeleteJobResponseSchema, res), text: `job ${args[0]!} deleted\n` };
  },
};

/** `durationMs*:number(0–600000)`: a parameter as the types table shows it, `*` when required. */
function parameterCell(p: ParameterSpec): string {
  const kind = { [ParameterKind.NUMBER]: "number", [ParameterKind.STRING]: "string", [ParameterKind.BOOL]: "bool", [ParameterKind.STRING_LIST]: "string list" }[p.kind as number] ?? "?";
  const range = p.kind === ParameterKind.NUMBER && (p.min !== 0 || p.max !== 0) ? `(${p.min}–${p.max === 0 ? "" : p.max})` : "";
  return `${p.name}${p.required ? "*" : ""}:${kind}${range}`;
}

const TYPE_COLUMNS = ["NAME", "SERVICE", "TARGET", "ON INTERRUPT", "STAGES", "PARAMETERS", "DESCRIPTION"];

function typeRow(t: JobType): string[] {
  return [
    t.name,
    t.service,
    t.targetRequired ? "required" : "optional",
    enumWord(InterruptPolicySchema, t.onInterrupt),
    t.stages.join(","),
    t.parameters.map(parameterCell).join(" "),
    t.description,
  ];
}

const types: Command = {
  group: "job",
  service: "longjob",
  name: "types",
  summary: "list the registered job types and their parameters",
  description: "Lists the job types the services have registered: their stages, parameters (* marks a required one) and what becomes of a running job whose executor dies.",
  args: [],
  flags: {},
  async run({ api }) {
    const res = await api.jobs.listJobTypes({});
    const empty = res.types.length === 0;
    return {
      json: jsonOf(ListJobTypesResponseSchema, res),
      text: empty ? "" : renderTable(TYPE_COLUMNS, res.types.map(typeRow)),
      notes: empty ? ["no job types registered"] : [],
    };
  },
};

export const JOB_COMMANDS: readonly Command[] = [submit, list, get, watch, cancel, rerun, remove, types];
