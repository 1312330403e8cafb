import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseCliArgs } from "./cli-args";

describe("CLI", () => {
  it("parses flags", () => {
    expect(parseCliArgs(["--hosts", "4", "--control-port", "0", "--socket-timeout-ms", "15000", "--latency-ms", "20", "--base-port", "9100"])).toEqual({
      hosts: 4,
      controlPort: 0,
      socketTimeoutMs: 15_000,
      latency: 20,
      basePort: 9100,
    });
    expect(parseCliArgs([])).toMatchObject({ hosts: 3, controlPort: 7070, socketTimeoutMs: 10_000 });
    expect(parseCliArgs(["--volume-task-duration-ms", "50", "--chunk-bytes", "1048576", "--migrate-duration-ms", "200"])).toMatchObject({ volumeTaskDurationMs: 50, chunkBytes: 1_048_576, migrateDurationMs: 200 });
    expect(() => parseCliArgs(["--chunk-bytes", "0"])).toThrow("--chunk-bytes must be an integer >= 1");
    expect(() => parseCliArgs(["--migrate-duration-ms=-1"])).toThrow("--migrate-duration-ms must be an integer >= 0");
    expect(() => parseCliArgs(["--hosts", "0"])).toThrow("--hosts must be an integer >= 1");
    expect(() => parseCliArgs(["--nope"])).toThrow();
  });

  it("gives every host the CPUs and memory --cpu and --memory-gib say, and refuses a bad value", () => {
    expect(parseCliArgs(["--hosts", "2", "--cpu", "64", "--memory-gib", "256"])).toMatchObject({ hosts: [{ cpuNum: 64, memoryBytes: 256 * 1024 ** 3 }, { cpuNum: 64, memoryBytes: 256 * 1024 ** 3 }] });
    expect(() => parseCliArgs(["--cpu", "0"])).toThrow(/--cpu must be an integer >= 1/);
  });

  it("prints one JSON line per host, then a ready line, and stops on SIGTERM", async () => {
    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", main, "--hosts", "2", "--control-port", "0", "--socket-timeout-ms", "1500"], { stdio: ["ignore", "pipe", "inherit"] });
    const lines: any[] = [];
    for await (const line of createInterface({ input: child.stdout! })) {
      lines.push(JSON.parse(line));
      if (lines.at(-1).ready) break;
    }
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ index: 0, hostUuid: expect.any(String), url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    expect(lines[2]).toMatchObject({ ready: true, controlUrl: expect.any(String), hosts: 2, socketTimeoutMs: 1500 });
    const ping = await fetch(`${lines[1].url}/host/ping`, { method: "POST", body: "{}" });
    expect(((await ping.json()) as any).hostUuid).toBe(lines[1].hostUuid);
    const state = await fetch(`${lines[2].controlUrl}/hosts/1/state`);
    expect(((await state.json()) as any).commands["host/ping"].executed).toBe(1);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 30_000);
});
