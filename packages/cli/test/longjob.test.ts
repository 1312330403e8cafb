/**
 * stratumctl's job commands against a real longjob service (two replicas, real Postgres, NATS
 * and gRPC), with its built-in job types: what an operator sees from `--wait`, and its exit codes.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { startLongjob, type LongjobStack } from "../../../services/longjob/test/harness";
import { run } from "../src/main";
import { kill9, startLongjobChild } from "./longjob-child";

let stack: LongjobStack;
/** Both replicas, as the devstack's endpoints file would list them. */
let endpoint: string;
/** No devstack endpoints file here: only --longjob-endpoint decides where the CLI goes. */
const repoRoot = mkdtempSync(join(tmpdir(), "stratumctl-longjob-it-"));

beforeAll(async () => {
  stack = await startLongjob({ replicas: 2 });
  endpoint = stack.service.replicas.map((r) => r.address).join(",");
});
afterAll(() => stack?.stop());

async function cli(argv: string[], options: { signal?: AbortSignal; onStdout?: (text: string) => void; endpoint?: string } = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(["--longjob-endpoint", options.endpoint ?? endpoint, ...argv], {
    stdout: {
      write: (s: string) => {
        stdout += s;
        options.onStdout?.(stdout);
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    repoRoot,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { code, stdout, stderr };
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const ELAPSED = "\\d+:\\d\\d";

describe("job submit --wait", () => {
  it("follows a sleep job line by line to Succeeded, exit 0, progress never going backwards", async () => {
    const res = await cli(["job", "submit", "longjob.sleep", "--param", "durationMs=300", "--param", "steps=3", "--wait"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split("\n");
    const last = lines.pop()!;
    expect(last).toMatch(new RegExp(`^job ${UUID} Succeeded \\(waited ${ELAPSED}\\): result \\{"sleptMs":300\\}$`));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(new RegExp(`^(Waiting|Running)(  sleeping)?  \\d+%  ${ELAPSED}(  .*)?$`));
    expect(lines.some((l) => l.startsWith("Running  sleeping  "))).toBe(true);
    const percents = lines.map((l) => Number(/(\d+)%/.exec(l)![1]));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));

    const uuid = new RegExp(`^job (${UUID}) `).exec(last)![1]!;
    const details = await cli(["job", "get", uuid]);
    expect(details.code).toBe(0);
    expect(details.stdout).toMatch(/\nState:\s+Succeeded\n/);
    expect(details.stdout).toMatch(/\nResult:\s+\{"sleptMs":300\}\n/);
  });

  it("with --json prints the final job on stdout and the progress on stderr", async () => {
    const res = await cli(["job", "submit", "longjob.noop", "--wait", "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ type: "longjob.noop", state: "JOB_STATE_SUCCEEDED", progress: { percent: 100 } });
    expect(res.stderr).toMatch(new RegExp(`job ${UUID} Succeeded \\(waited ${ELAPSED}\\)\n$`));
  });

  it("a submit the server refuses is exit 1 naming each bad parameter, and no job is recorded", async () => {
    const before = (await stack.jobs.listJobs({ type: "longjob.sleep", pageSize: 1000 })).jobs.length;
    const res = await cli(["job", "submit", "longjob.sleep", "--param", "durationMs=-1", "--param", "colour=blue", "--wait"]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/^error: INVALID_ARGUMENT.*: parameters\.(colour|durationMs): /m);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(2);
    expect((await stack.jobs.listJobs({ type: "longjob.sleep", pageSize: 1000 })).jobs.length).toBe(before);
  });
});

describe("Ctrl-C, watch, delete", () => {
  it("Ctrl-C stops waiting (130), not the job: job watch then follows it to Succeeded (0), and delete forgets it", async () => {
    const ctrlC = new AbortController();
    const waiting = await cli(["job", "submit", "longjob.sleep", "--param", "durationMs=2000", "--param", "steps=20", "--wait"], {
      signal: ctrlC.signal,
      onStdout: (text) => {
        if (text.includes("Running")) ctrlC.abort();
      },
    });
    expect(waiting.code).toBe(130);
    const hint = new RegExp(`\nstopped waiting; job (${UUID}) goes on \\(Running\\): cancel it with 'stratumctl job cancel \\1', or follow it with 'stratumctl job watch \\1'\n$`).exec(waiting.stdout);
    expect(hint, waiting.stdout).not.toBeNull();
    const uuid = hint![1]!;

    const watched = await cli(["job", "watch", uuid]);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(new RegExp(`\njob ${uuid} Succeeded \\(waited ${ELAPSED}\\): result \\{"sleptMs":2000\\}\n$`));

    const listed = JSON.parse((await cli(["job", "list", "--state", "succeeded", "--type", "longjob.sleep", "--all", "--json"])).stdout) as { jobs: Array<{ uuid: string }> };
    expect(listed.jobs.map((j) => j.uuid)).toContain(uuid);
    expect(await cli(["job", "delete", uuid])).toEqual({ code: 0, stdout: `job ${uuid} deleted\n`, stderr: "" });
    const gone = await cli(["job", "get", uuid]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: NOT_FOUND/);
  });

  it("job types lists the built-in types with their parameters", async () => {
    const res = await cli(["job", "types"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^NAME\s+SERVICE\s+TARGET\s+ON INTERRUPT\s+STAGES\s+PARAMETERS\s+DESCRIPTION\n/);
    expect(res.stdout).toMatch(/\nlongjob\.sleep\s+longjob\s+\S+\s+\S+.*durationMs\*:number/);
    expect(res.stdout).toMatch(/\nlongjob\.noop\s+longjob\s/);
  });
});

describe("job cancel --wait", () => {
  it("ends a Running job Canceled: exit 1", async () => {
    const { job } = await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 600_000, steps: 600 } });
    const uuid = job!.uuid;
    for await (const m of stack.jobs.watchJob({ uuid })) if (m.job!.state === JobState.RUNNING) break;
    const res = await cli(["--timeout", "20", "job", "cancel", uuid, "--wait"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(new RegExp(`job ${uuid} Canceled \\(waited ${ELAPSED}\\)[^\n]*\n$`));
    expect((await stack.jobs.getJob({ uuid })).job!.state).toBe(JobState.CANCELED);
  });
});

describe("a longjob replica dying under a --wait", () => {
  it("re-opens the broken watch on another replica and still ends with the job's final state", async () => {
    // pick_first dials the first address: the stream starts on the child, which is then killed.
    const { child, address } = await startLongjobChild(stack, "longjob-9");
    let killed: Promise<void> | undefined;
    try {
      const res = await cli(["job", "submit", "longjob.sleep", "--param", "durationMs=2000", "--param", "steps=20", "--wait"], {
        endpoint: `${address},${stack.service.replicas[0]!.address}`,
        onStdout: (text) => {
          if (!killed && text.includes("Running")) killed = kill9(child);
        },
      });
      expect(killed).toBeDefined();
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      const lines = res.stdout.trimEnd().split("\n");
      expect(lines.at(-1)).toMatch(new RegExp(`^job ${UUID} Succeeded \\(waited ${ELAPSED}\\): result \\{"sleptMs":2000\\}$`));
      // The re-opened stream starts with the current state; nothing already shown is shown again.
      const percents = lines.slice(0, -1).map((l) => Number(/(\d+)%/.exec(l)![1]));
      expect(percents).toEqual([...percents].sort((a, b) => a - b));
      expect(new Set(lines).size).toBe(lines.length);
    } finally {
      await kill9(child);
    }
  });
});
