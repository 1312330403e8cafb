import { randomUUID } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import postgres from "postgres";
import { getFreePort } from "./free-port";
import { ManagedProcess, type RunAs } from "./managed-process";
import { ensureSystemUser, isRoot, userCan } from "./os-user";
import { binariesRunnableBy, findPostgresBinaries, PG_BIN_ENV, type PostgresBinaries } from "./postgres-binaries";
import { pollUntil } from "./poll";
import { DURABLE_SETTINGS, FAST_SETTINGS } from "./postgres-settings";

export interface PostgresOptions {
  /**
   * A persistent data directory (the devstack): initialized on first use, reused as is on later
   * starts, and kept on stop. Without it a temp cluster is created and deleted on stop.
   */
  dataDir?: string;
  /** Port to listen on; a free one by default. */
  port?: number;
  /** Address to listen on. Default `127.0.0.1`: nothing outside this machine can reach it. */
  host?: string;
  /** A PostgreSQL `bin` dir to use instead of the embedded binaries (see findPostgresBinaries). */
  binDir?: string;
  /**
   * Trade durability for speed: {@link FAST_SETTINGS} (fsync, synchronous_commit and
   * full_page_writes off). Default true, right for tests whose cluster is thrown away. False
   * applies {@link DURABLE_SETTINGS} instead: what a devstack keeping data across crashes uses.
   */
  fast?: boolean;
  /** `max_connections`. Default 300: every service replica of an e2e test holds its own pool. */
  maxConnections?: number;
  /** Extra server settings, passed as `-c name=value`. */
  settings?: Record<string, string | number | boolean>;
  /** Superuser name created by initdb. Default `postgres`. */
  user?: string;
  /**
   * Superuser password: with it the cluster uses scram-sha-256 auth, without it `trust` (fine on
   * 127.0.0.1 for tests). Only applies when the cluster is initialized.
   */
  password?: string;
  /** OS user to run Postgres as when we are root (Postgres refuses root). Default `postgres`. */
  osUser?: string;
  /** How long initdb + start may take before giving up. Default 60 s. */
  startTimeoutMs?: number;
  /** Receives every server log line (the devstack shows them); they are kept for errors anyway. */
  onLog?: (line: string) => void;
}

/** A running PostgreSQL cluster. */
export interface PostgresServer {
  /** URL of the `postgres` database as the superuser, e.g. `postgres://postgres@127.0.0.1:41234/postgres`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** The postmaster's pid (a new one after {@link resume}). */
  readonly pid: number;
  /** `postgres --version` of the binaries that run it. */
  readonly version: string;
  /**
   * Creates a fresh, empty database (a unique name by default) and returns its URL: the unit of
   * isolation between test files sharing one server.
   */
  createDatabase(name?: string): Promise<string>;
  /** Drops a database, disconnecting its remaining sessions first. */
  dropDatabase(name: string): Promise<void>;
  /** Fast shutdown (SIGINT: abort transactions, checkpoint, exit); removes a temp data dir. Idempotent. */
  stop(): Promise<void>;
  /**
   * Fast shutdown that keeps the data dir, so {@link resume} can bring the same cluster back:
   * a database outage for tests of what clients do meanwhile and after. Idempotent.
   */
  halt(): Promise<void>;
  /**
   * Starts a halted cluster again on the same port and data dir, with the same settings, and
   * waits until it answers. A no-op while it runs; an error after stop().
   */
  resume(): Promise<void>;
  /** The tail of the server's log. */
  output(): string;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Starts a real PostgreSQL on a free port: runs initdb (temp dir, or a persistent `dataDir`
 * not yet initialized), starts `postgres` directly as our child (so we own its lifetime: see
 * ManagedProcess) and waits until it answers a query. Running as root, initdb and postgres run as
 * the `postgres` OS user (created if missing), owning the data dir.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const host = options.host ?? "127.0.0.1";
  const user = options.user ?? "postgres";
  const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  const runAs = isRoot() ? ensureSystemUser(options.osUser ?? "postgres") : undefined;
  let bins = findPostgresBinaries(options.binDir);
  if (runAs) bins = binariesRunnableBy(bins, runAs);

  const temp = options.dataDir === undefined;
  const baseDir = temp ? mkdtempSync(join(tmpdir(), "stratum-pg-")) : undefined;
  const dataDir = baseDir ? join(baseDir, "data") : resolve(options.dataDir!);
  try {
    prepareDataDir(dataDir, baseDir, runAs, bins);
    if (!existsSync(join(dataDir, "PG_VERSION"))) await initdb(bins, dataDir, user, options, runAs, deadline);

    // A port given by the caller is used as is; a free port we picked may be taken by someone
    // else before postgres binds it, so then we pick another.
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await getFreePort(host));
      const proc = spawnPostgres(bins, dataDir, host, port, options, runAs, baseDir);
      const url = buildUrl(user, options.password, host, port, "postgres");
      try {
        await waitReady(proc, url, deadline);
        const respawn = async () => {
          const again = spawnPostgres(bins, dataDir, host, port, options, runAs, baseDir);
          try {
            await waitReady(again, url, Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS));
          } catch (e) {
            await again.stop(5_000);
            throw e;
          }
          return again;
        };
        return makeServer({ url, host, port, dataDir, baseDir, proc, respawn, version: bins.version });
      } catch (e) {
        await proc.stop(5_000);
        const portTaken = /could not bind|Address already in use|could not create any TCP\/IP sockets/i.test(proc.output());
        if (portTaken && options.port === undefined && attempt < 5) continue;
        throw e;
      }
    }
  } catch (e) {
    if (baseDir) rmSync(baseDir, { recursive: true, force: true });
    throw e;
  }
}

function prepareDataDir(dataDir: string, baseDir: string | undefined, runAs: RunAs | undefined, bins: PostgresBinaries): void {
  if (baseDir) {
    mkdirSync(dataDir, { mode: 0o700 });
    if (runAs) {
      chownSync(baseDir, runAs.uid, runAs.gid);
      chownSync(dataDir, runAs.uid, runAs.gid);
    }
    return;
  }
  // Parents a non-root `postgres` user must traverse get 0755; only the data dir itself is private.
  mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const versionFile = join(dataDir, "PG_VERSION");
  if (existsSync(versionFile)) {
    const major = Number(readFileSync(versionFile, "utf8").trim());
    if (major !== bins.major) {
      throw new Error(
        `the data directory ${dataDir} belongs to PostgreSQL ${major} but the binaries (${bins.source}, ${bins.binDir}) ` +
          `are ${bins.version}; use matching binaries (${PG_BIN_ENV}) or reset the data directory`,
      );
    }
  } else if (readdirSync(dataDir).length > 0) {
    throw new Error(`${dataDir} is neither empty nor a PostgreSQL data directory; refusing to initialize a cluster there`);
  }
  if (runAs) {
    if (statSync(dataDir).uid !== runAs.uid) execFileSync("chown", ["-R", `${runAs.uid}:${runAs.gid}`, dataDir]);
    if (!userCan(runAs, "rwx", dataDir)) {
      throw new Error(
        `the ${runAs.user} OS user cannot use ${dataDir}: a parent directory is not accessible to it ` +
          `(e.g. under /root); put the data directory somewhere it can reach, such as /var/lib/stratum`,
      );
    }
  }
}

async function initdb(
  bins: PostgresBinaries,
  dataDir: string,
  user: string,
  options: PostgresOptions,
  runAs: RunAs | undefined,
  deadline: number,
): Promise<void> {
  const fast = options.fast ?? true;
  const args = [`--pgdata=${dataDir}`, `--username=${user}`, "--encoding=UTF8", "--locale=C", "--no-instructions"];
  let pwDir: string | undefined;
  if (options.password !== undefined) {
    pwDir = mkdtempSync(join(tmpdir(), "stratum-pgpw-"));
    const pwFile = join(pwDir, "pw");
    writeFileSync(pwFile, `${options.password}\n`, { mode: 0o600 });
    if (runAs) {
      chownSync(pwDir, runAs.uid, runAs.gid);
      chownSync(pwFile, runAs.uid, runAs.gid);
    }
    args.push("--auth=scram-sha-256", `--pwfile=${pwFile}`);
  } else {
    args.push("--auth=trust");
  }
  if (fast) args.push("--no-sync");
  try {
    const proc = ManagedProcess.spawn({
      name: "initdb",
      command: bins.initdb,
      args,
      env: postgresEnv(),
      stopSignal: "SIGTERM",
      ...(runAs ? { runAs } : {}),
    });
    const exit = await withTimeout(proc.exited, deadline - Date.now());
    if (!exit) {
      await proc.stop(1_000, "SIGKILL");
      throw new Error(`initdb of ${dataDir} did not finish in time; ${proc.describeExit()}`);
    }
    if (exit.code !== 0) throw new Error(`initdb of ${dataDir} failed: ${proc.describeExit()}`);
  } finally {
    if (pwDir) rmSync(pwDir, { recursive: true, force: true });
  }
  chmodSync(dataDir, 0o700);
}

function spawnPostgres(
  bins: PostgresBinaries,
  dataDir: string,
  host: string,
  port: number,
  options: PostgresOptions,
  runAs: RunAs | undefined,
  baseDir: string | undefined,
): ManagedProcess {
  const settings: Record<string, string | number | boolean> = {
    listen_addresses: host,
    port,
    // TCP only: no socket file in /var/run/postgresql (absent on a bare machine) or /tmp to clash.
    unix_socket_directories: "",
    max_connections: options.maxConnections ?? 300,
    ...((options.fast ?? true) ? FAST_SETTINGS : DURABLE_SETTINGS),
    ...options.settings,
  };
  const args = ["-D", dataDir];
  for (const [name, value] of Object.entries(settings)) {
    args.push("-c", `${name}=${typeof value === "boolean" ? (value ? "on" : "off") : value}`);
  }
  return ManagedProcess.spawn({
    name: "postgres",
    command: bins.postgres,
    args,
    env: postgresEnv(),
    stopSignal: "SIGINT",
    ...(runAs ? { runAs } : {}),
    ...(options.onLog ? { onOutput: options.onLog } : {}),
    ...(baseDir ? { tempDir: baseDir } : {}),
  });
}

/** English messages whatever the machine's locale, so logs and our error texts are searchable. */
function postgresEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C", LANG: "C" };
  delete env.PGDATA;
  delete env.PGPORT;
  return env;
}

/** Polls with real queries until the server accepts them (it answers 57P03 while starting). */
async function waitReady(proc: ManagedProcess, url: string, deadline: number): Promise<void> {
  let lastError: unknown;
  const ready = await pollUntil(deadline, async () => {
    if (!proc.running) return "exited" as const;
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return "ready" as const;
    } catch (e) {
      lastError = e;
      return undefined;
    } finally {
      await sql.end({ timeout: 0 });
    }
  });
  if (ready === "ready") return;
  if (ready === "exited") {
    await proc.exited;
    throw new Error(`PostgreSQL did not start: ${proc.describeExit()}`);
  }
  const cause = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`PostgreSQL did not accept connections in time (last error: ${cause}); ${proc.describeExit()}`);
}

function buildUrl(user: string, password: string | undefined, host: string, port: number, database: string): string {
  const auth = encodeURIComponent(user) + (password !== undefined ? `:${encodeURIComponent(password)}` : "");
  return `postgres://${auth}@${host}:${port}/${database}`;
}

/** `url` with its database replaced. */
export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A database name that is unique and valid: `t_<label>_<random>`. */
export function uniqueDatabaseName(label = "t"): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z_]+/, "").slice(0, 40) || "t";
  return `${clean}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/**
 * Creates a database on the server `adminUrl` points at (any database of it, as a user allowed
 * to CREATE DATABASE) and returns the new database's URL.
 */
export async function createDatabaseAt(adminUrl: string, name: string = uniqueDatabaseName()): Promise<string> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    return await createDatabaseWith(sql, adminUrl, name);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function createDatabaseWith(sql: postgres.Sql, adminUrl: string, name: string): Promise<string> {
  if (!DATABASE_NAME.test(name)) throw new TypeError(`database name must match ${DATABASE_NAME}, got ${JSON.stringify(name)}`);
  await sql.unsafe(`CREATE DATABASE "${name}"`);
  return databaseUrl(adminUrl, name);
}

function makeServer(s: {
  url: string;
  host: string;
  port: number;
  dataDir: string;
  baseDir: string | undefined;
  proc: ManagedProcess;
  respawn: () => Promise<ManagedProcess>;
  version: string;
}): PostgresServer {
  let admin: postgres.Sql | undefined;
  const adminSql = () => (admin ??= postgres(s.url, { max: 2, onnotice: () => {} }));
  let stopping: Promise<void> | undefined;
  let proc = s.proc;
  // halt/resume/stop run one after the other, so a resume racing a stop cannot leave a server up.
  let lifecycle: Promise<unknown> = Promise.resolve();
  const serially = <T>(step: () => Promise<T>): Promise<T> => {
    const next = lifecycle.then(step);
    lifecycle = next.catch(() => {});
    return next;
  };
  return {
    url: s.url,
    host: s.host,
    port: s.port,
    dataDir: s.dataDir,
    get pid() {
      return proc.pid;
    },
    version: s.version,
    createDatabase: (name = uniqueDatabaseName()) => createDatabaseWith(adminSql(), s.url, name),
    async dropDatabase(name) {
      if (!DATABASE_NAME.test(name)) throw new TypeError(`database name must match ${DATABASE_NAME}, got ${JSON.stringify(name)}`);
      await adminSql().unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
    stop() {
      return (stopping ??= serially(async () => {
        if (admin) await admin.end({ timeout: 1 }).catch(() => {});
        await proc.stop();
        if (s.baseDir) rmSync(s.baseDir, { recursive: true, force: true, maxRetries: 3 });
      }));
    },
    halt: () =>
      serially(async () => {
        await proc.stop();
      }),
    resume: () =>
      serially(async () => {
        if (stopping) throw new Error(`PostgreSQL on port ${s.port} was stopped; resume() only restarts a halted cluster`);
        if (proc.running) return;
        proc = await s.respawn();
      }),
    output: () => proc.output(),
  };
}

/** `promise`'s value, or undefined after `ms`; the timer never outlives the race. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((r) => (timer = setTimeout(r, Math.max(0, ms), undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}
