import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { bufBin, packageDir, protoDir } from "./index";

const run = promisify(execFile);

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe("generated code", () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
  });

  it("src/gen is exactly what `pnpm generate` produces from proto/", async () => {
    const out = await mkdtemp(join(tmpdir(), "stratum-gen-"));
    temps.push(out);
    await run(bufBin, ["generate", "--template", "buf.gen.yaml", "-o", out], { cwd: packageDir });
    const committed = join(packageDir, "src/gen");
    const fresh = join(out, "src/gen");
    const [committedFiles, freshFiles] = await Promise.all([listFiles(committed), listFiles(fresh)]);
    expect(freshFiles.length, "buf generate produced no files").toBeGreaterThan(0);

    const stale: string[] = [];
    for (const f of new Set([...committedFiles, ...freshFiles])) {
      const [a, b] = await Promise.all([
        readFile(join(committed, f)).catch(() => undefined),
        readFile(join(fresh, f)).catch(() => undefined),
      ]);
      if (a === undefined) stale.push(`${f} (missing: not generated yet)`);
      else if (b === undefined) stale.push(`${f} (extra: its .proto is gone)`);
      else if (!a.equals(b)) stale.push(`${f} (differs)`);
    }
    expect(stale, `packages/proto/src/gen is stale; run \`pnpm generate\` and commit the result:\n  ${stale.join("\n  ")}`).toEqual([]);
  });

  it("proto/ passes `buf lint` (STANDARD) with no findings", async () => {
    const result = await run(bufBin, ["lint", "--error-format", "text"], { cwd: protoDir }).then(
      (r) => ({ code: 0, output: r.stdout + r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` }),
    );
    expect(result.output.trim(), "buf lint findings in proto/").toBe("");
    expect(result.code).toBe(0);
  });
});
