import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { InterruptPolicy, JobProgressSchema, JobSchema, JobState, JobTypeSchema, ParameterKind, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { DeleteJobResponseSchema, ListJobTypesResponseSchema } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { VmSchema } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { CallOptions } from "@stratum/rpc";
import type { Connect } from "../api";
import { run } from "../main";

const emptyRoot = mkdtempSync(join(tmpdir(), "stratumctl-job-"));
const UUID = "22222222-2222-4222-8222-222222222222";

interface Recorded {
  service: string;
  target: string;
  method: string;
  request: unknown;
  options: CallOptions | undefined;
}

function job(revision: number, state: JobState, percent = 0, more: MessageInitShape<typeof JobSchema> = {}): Job {
  return create(JobSchema, { uuid: UUID, type: "longjob.sleep", revision: BigInt(revision), state, progress: create(JobProgressSchema, { percent, stage: percent ? "sleep" : "" }), ...more });
}

/**
 * A fake longjob (and compute) client: unary methods record their call and answer the job as
 * submitted (Waiting); WatchJob plays `watchScript`, then stays open until its signal aborts
 * (a job that does not change), or ends if the script's last job is final.
 */
function fake(watchScript: Job[] = [], onWatchMessage?: (index: number) => void) {
  const calls: Recorded[] = [];
  const connect = ((service: DescService, target: string) => {
    const client: Record<string, unknown> = {};
    for (const m of service.methods) {
      const record = (request: unknown, options?: CallOptions) => calls.push({ service: service.typeName, target, method: m.localName, request, options });
      if (m.localName === "watchJob") {
        client[m.localName] = (request: unknown, options?: CallOptions) => {
          record(request, options);
          return (async function* () {
            for (const [i, j] of watchScript.entries()) {
              yield { job: j };
              onWatchMessage?.(i);
            }
            await new Promise<void>((resolve) => options?.signal?.addEventListener("abort", () => resolve(), { once: true }));
          })();
        };
        continue;
      }
      client[m.localName] = async (request: unknown, options?: CallOptions) => {
        record(request, options);
        if (service.typeName !== "stratum.longjob.v1.LongJobService") return { vm: create(VmSchema, { uuid: UUID, name: "web-1" }) };
        if (m.localName === "listJobTypes") {
          return create(ListJobTypesResponseSchema, {
            types: [
              create(JobTypeSchema, {
                name: "longjob.sleep",
                service: "longjob",
                stages: ["sleep"],
                onInterrupt: InterruptPolicy.RESUME,
                parameters: [{ name: "durationMs", kind: ParameterKind.NUMBER, required: true, min: 0, max: 600000 }, { name: "steps", kind: ParameterKind.NUMBER }],
                description: "sleeps",
              }),
            ],
          });
        }
        if (m.localName === "listJobs") return { jobs: [job(5, JobState.RUNNING, 40, { target: { service: "longjob", uuid: UUID } })], nextPageToken: "" };
        if (m.localName === "deleteJob") return create(DeleteJobResponseSchema, {});
        return { job: job(1, JobState.WAITING) };
      };
    }
    return client;
  }) as Connect;
  return { connect, calls };
}

async function cli(argv: string[], options: { connect?: Connect; env?: Record<string, string>; signal?: AbortSignal; tty?: boolean } = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: options.tty ?? false },
    stderr: { write: (s: string) => (stderr += s) },
    env: options.env ?? {},
    repoRoot: emptyRoot,
    connect: options.connect ?? fake().connect,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { code, stdout, stderr };
}

describe("job usage errors: exit 2, nothing sent", () => {
  it.each([
    [["job", "submit"], /^error: missing argument TYPE\n/],
    [["job", "submit", "longjob.sleep", "--param", "durationMs"], /^error: invalid --param "durationMs": must be KEY=VALUE\n/],
    [["job", "submit", "longjob.sleep", "--param", "a=1", "--param", "a=2"], /^error: parameter "a" given more than once\n/],
    [["job", "submit", "longjob.sleep", "--params-json", "[]"], /^error: invalid --params-json: must be a JSON object/],
    [["job", "submit", "longjob.sleep", "--wiat"], /^error: unknown flag --wiat for 'job submit' \(did you mean --wait\?\)/],
    [["job", "list", "--state", "sleeping"], /^error: invalid --state "sleeping": must be one of waiting, running, canceling, canceled, succeeded, failed, suspended\n/],
    [["job", "watch"], /^error: missing argument UUID\n/],
    [["job", "delete", UUID, "--wait"], /^error: unknown flag --wait for 'job delete'/],
    [["job", "cancle", UUID], /^error: unknown command "job cancle" \(did you mean cancel\?\)/],
    [["job", "list", "--longjob-endpoint", "nowhere"], /^error: --longjob-endpoint: "nowhere" is not HOST:PORT/],
  ])("%j", async (argv, message) => {
    const f = fake();
    const res = await cli(argv, { connect: f.connect });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).toBe("");
    expect(f.calls).toEqual([]);
  });
});

describe("job commands", () => {
  it("go to longjob's endpoint, while vm commands stay on compute's", async () => {
    const f = fake();
    const env = { STRATUM_ENDPOINT: "10.0.0.1:7101", STRATUM_LONGJOB_ENDPOINT: "10.0.0.2:7401" };
    expect((await cli(["job", "get", UUID], { connect: f.connect, env })).code).toBe(0);
    const vm = await cli(["vm", "get", UUID], { connect: f.connect, env });
    expect(vm.stderr).toBe("");
    expect(vm.code).toBe(0);
    expect((await cli(["job", "get", UUID, "--longjob-endpoint", "10.0.0.3:7401"], { connect: f.connect, env })).code).toBe(0);
    expect(f.calls.map((c) => [c.service, c.target])).toEqual([
      ["stratum.longjob.v1.LongJobService", "10.0.0.2:7401"],
      ["stratum.compute.v1.VmService", "10.0.0.1:7101"],
      ["stratum.longjob.v1.LongJobService", "10.0.0.3:7401"],
    ]);
  });

  it("submit converts --param values and --params-json into the parameters, and prints the job", async () => {
    const f = fake();
    const res = await cli(["job", "submit", "longjob.sleep", "--target", UUID, "--param", "durationMs=500", "--param", "fast=true", "--params-json", '{"label": "007"}'], { connect: f.connect });
    expect(res.code).toBe(0);
    expect(f.calls[0]).toMatchObject({ method: "submitJob", request: { type: "longjob.sleep", targetUuid: UUID, parameters: { label: "007", durationMs: 500, fast: true }, clientRequestId: "", uuid: "" } });
    expect(res.stdout).toMatch(/^UUID\s+TYPE\s+STATE\s+PROGRESS\s+TARGET\s+CREATED\n22222222-2222-4222-8222-222222222222\s+longjob\.sleep\s+Waiting\s+0%\s+-\s+-\n$/);
  });

  it("submit --wait follows the job to its end: exit 0 when it Succeeded, and the watch has no deadline", async () => {
    const f = fake([job(1, JobState.WAITING), job(2, JobState.RUNNING, 50), job(3, JobState.SUCCEEDED, 100)]);
    const res = await cli(["--timeout", "5", "job", "submit", "longjob.sleep", "--wait"], { connect: f.connect });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^Waiting  0%  \\d+:\\d\\d\nRunning  sleep  50%  \\d+:\\d\\d\njob ${UUID} Succeeded \\(waited \\d+:\\d\\d\\)\n$`));
    const watch = f.calls.find((c) => c.method === "watchJob")!;
    expect(watch.request).toEqual({ uuid: UUID });
    expect(watch.options?.timeoutMs).toBeUndefined();
    expect(watch.options?.signal).toBeInstanceOf(AbortSignal);
    expect(f.calls.find((c) => c.method === "submitJob")!.options?.timeoutMs).toBe(5000);
  });

  it("--wait exits 1 when the job fails, with its error; with --json the progress goes to stderr and stdout is the final job", async () => {
    const failed = job(2, JobState.FAILED, 10, { error: { code: "INTERNAL", reason: "SLEEP_BROKE", message: "woke up badly" } });
    const res = await cli(["job", "rerun", UUID, "--wait", "--json"], { connect: fake([job(1, JobState.RUNNING, 10), failed]).connect });
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ uuid: UUID, state: "JOB_STATE_FAILED", revision: "2", error: { reason: "SLEEP_BROKE" } });
    expect(res.stderr).toMatch(new RegExp(`^Running  sleep  10%  \\d+:\\d\\d\njob ${UUID} Failed \\(waited \\d+:\\d\\d\\): INTERNAL \\(SLEEP_BROKE\\): woke up badly\n$`));
  });

  it("watch on a Suspended job exits 1 and says how to resume it", async () => {
    const res = await cli(["job", "watch", UUID], { connect: fake([job(7, JobState.SUSPENDED, 30)]).connect });
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`Suspended (waited 0:00); resume it with 'stratumctl job rerun ${UUID}'`);
  });

  it("Ctrl-C while waiting exits 130 and leaves the job alone", async () => {
    const ctrlC = new AbortController();
    const f = fake([job(1, JobState.RUNNING, 20)], () => ctrlC.abort());
    const res = await cli(["job", "submit", "longjob.sleep", "--wait"], { connect: f.connect, signal: ctrlC.signal });
    expect(res.code).toBe(130);
    expect(res.stdout).toMatch(new RegExp(`\nstopped waiting; job ${UUID} goes on \\(Running\\): cancel it with 'stratumctl job cancel ${UUID}'`));
    expect(f.calls.map((c) => c.method)).toEqual(["submitJob", "watchJob"]);
  });

  it("Ctrl-C during a plain call cancels it and exits 130", async () => {
    const ctrlC = new AbortController();
    const connect = ((service: DescService) => {
      const client: Record<string, unknown> = {};
      for (const m of service.methods) {
        client[m.localName] = (_request: unknown, options?: CallOptions) =>
          new Promise((_, reject) => {
            options?.signal?.addEventListener("abort", () => reject(new Error("call cancelled")), { once: true });
            ctrlC.abort();
          });
      }
      return client;
    }) as Connect;
    const res = await cli(["job", "list"], { connect, signal: ctrlC.signal });
    expect(res).toEqual({ code: 130, stdout: "", stderr: "interrupted\n" });
  });

  it("lists jobs with their filters, and the types with their parameters", async () => {
    const f = fake();
    const list = await cli(["job", "list", "--state", "running", "--type", "longjob.sleep", "--target", UUID, "--page-size", "10"], { connect: f.connect });
    expect(list.code).toBe(0);
    expect(f.calls[0]!.request).toEqual({ state: JobState.RUNNING, type: "longjob.sleep", targetUuid: UUID, pageSize: 10, pageToken: "" });
    expect(list.stdout).toMatch(new RegExp(`\n${UUID}\\s+longjob\\.sleep\\s+Running\\s+40% sleep\\s+longjob/${UUID}\\s+-\n$`));
    const types = await cli(["job", "types"], { connect: f.connect });
    expect(types.stderr).toBe("");
    expect(types.stdout).toMatch(/\nlongjob\.sleep\s+longjob\s+optional\s+Resume\s+sleep\s+durationMs\*:number\(0–600000\) steps:number\s+sleeps\n$/);
  });

  it("deletes, and shows help listing the job commands", async () => {
    expect((await cli(["job", "delete", UUID])).stdout).toBe(`job ${UUID} deleted\n`);
    const help = await cli(["--help"]);
    for (const cmd of ["job submit TYPE", "job list", "job get UUID", "job watch UUID", "job cancel UUID", "job rerun UUID", "job delete UUID", "job types"]) expect(help.stdout).toContain(`  ${cmd}`);
    expect(help.stdout).toContain("--longjob-endpoint HOST:PORT");
    expect(help.stdout).toContain("STRATUM_LONGJOB_ENDPOINT");
    expect((await cli(["job", "submit", "--help"])).stdout).toMatch(/^Usage: stratumctl job submit TYPE \[--target UUID\] \[--param KEY=VALUE …\]/);
  });
});
