import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import postgres from "postgres";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DURABLE_SETTINGS, FAST_SETTINGS, startPostgres, type PostgresServer } from "../src/index";
import { lookupUser } from "../src/os-user";
import { alive, childrenOf, eventually, listening, uidOf } from "./proc";

const servers: PostgresServer[] = [];
const clients: postgres.Sql[] = [];

async function start(options: Parameters<typeof startPostgres>[0] = {}): Promise<PostgresServer> {
  const server = await startPostgres(options);
  servers.push(server);
  return server;
}

function client(url: string): postgres.Sql {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.end({ timeout: 1 })));
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
});

const isRoot = process.getuid?.() === 0;
const repoRoot = resolve(import.meta.dirname, "../../..");

describe("startPostgres", () => {
  describe("a default server", () => {
    let server: PostgresServer;
    beforeAll(async () => {
      server = await startPostgres();
      return () => server.stop();
    });

    it("listens on a free local port and is tuned for tests", async () => {
      expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
      const sql = client(server.url);
      const [row] = await sql`select current_setting('fsync') as fsync, current_setting('synchronous_commit') as sc,
        current_setting('full_page_writes') as fpw, current_setting('server_version_num')::int as version`;
      expect(row).toMatchObject({ fsync: "off", sc: "off", fpw: "off" });
      expect(row!.version).toBeGreaterThanOrEqual(150000);
    });

    it.runIf(isRoot)("runs as the postgres OS user when we are root", () => {
      expect(uidOf(server.pid)).toBe(lookupUser("postgres")!.uid);
    });

    it("createDatabase() gives each caller its own empty database", async () => {
      const urlA = await server.createDatabase();
      const urlB = await server.createDatabase("named_db");
      expect(urlA).not.toBe(urlB);
      expect(urlB).toBe(`postgres://postgres@127.0.0.1:${server.port}/named_db`);
      const a = client(urlA);
      const b = client(urlB);
      await a`create table things (id int primary key)`;
      await a`insert into things values (1)`;
      const [inB] = await b`select to_regclass('things') as t`;
      expect(inB!.t).toBeNull();
      await b`create table things (id int primary key)`; // no clash with A's table
      expect(await b`select count(*)::int as n from things`).toEqual([{ n: 0 }]);
      await expect(server.createDatabase("Bad-Name; drop")).rejects.toThrow(/database name must match/);
    });
  });

  it("stop() ends the postmaster and all its processes, frees the port and deletes the temp data dir", async () => {
    const server = await start();
    const sql = client(server.url);
    await sql`select 1`; // a backend process too
    const pids = [server.pid, ...childrenOf(server.pid)];
    expect(pids.length).toBeGreaterThan(3);
    await server.stop();
    expect(await eventually(() => pids.every((p) => !alive(p)), 5_000)).toBe(true);
    expect(await listening(server.port)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
    await server.stop(); // idempotent
  });

  it("fast: false runs with the durable settings (the devstack's): every commit flushed, fsync and full pages on", async () => {
    const parent = mkdtempSync(join(tmpdir(), "stratum-pg-test-"));
    chmodSync(parent, 0o755);
    try {
      // Exactly how deploy/local starts its Postgres.
      const server = await start({ dataDir: join(parent, "pgdata"), fast: false });
      const sql = client(server.url);
      const shown: Record<string, string> = {};
      for (const name of Object.keys(DURABLE_SETTINGS)) {
        const [row] = await sql.unsafe(`SHOW ${name}`);
        shown[name] = String(Object.values(row!)[0]);
      }
      expect(shown).toMatchObject({ fsync: "on", synchronous_commit: "on", full_page_writes: "on" });
      expect(shown).toEqual(Object.fromEntries(Object.entries(DURABLE_SETTINGS).map(([k, v]) => [k, String(v)])));
      // And a setting left in the data dir by ALTER SYSTEM cannot turn durability off behind our back.
      await sql`ALTER SYSTEM SET synchronous_commit = off`;
      await sql`SELECT pg_reload_conf()`;
      expect((await sql`SHOW synchronous_commit`)[0]!.synchronous_commit).toBe("on");
    } finally {
      await Promise.allSettled(clients.splice(0).map((c) => c.end({ timeout: 1 })));
      await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it("the fast and durable presets differ exactly in what a crash may cost", () => {
    for (const name of ["fsync", "synchronous_commit", "full_page_writes"] as const) {
      expect([FAST_SETTINGS[name], DURABLE_SETTINGS[name]]).toEqual(["off", "on"]);
    }
  });

  it("halt() takes the server down keeping its data and port; resume() brings the same cluster back", async () => {
    const server = await start();
    const sql = client(server.url);
    await sql`create table kept (v text)`;
    await sql`insert into kept values ('survives')`;
    const firstPid = server.pid;
    await server.halt();
    expect(alive(firstPid)).toBe(false);
    expect(await listening(server.port)).toBe(false);
    expect(existsSync(join(server.dataDir, "PG_VERSION"))).toBe(true);
    // Refused, or the old connection's end noticed only now: either way the server is not there.
    await expect(sql`select 1`).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNREFUSED|ECONNRESET|EPIPE|CONNECTION_CLOSED|57P01)$/) });
    await server.halt(); // idempotent

    await server.resume();
    expect(server.pid).not.toBe(firstPid);
    expect(alive(server.pid)).toBe(true);
    expect(await sql`select v from kept`).toEqual([{ v: "survives" }]); // same client, same URL
    await server.resume(); // a no-op while running
    expect(await server.createDatabase("after_resume")).toBe(`postgres://postgres@127.0.0.1:${server.port}/after_resume`);

    const dataDir = server.dataDir;
    await server.stop();
    expect(existsSync(dataDir)).toBe(false);
    await expect(server.resume()).rejects.toThrow(/was stopped; resume\(\) only restarts a halted cluster/);
  });

  it("reuses a persistent data dir across restarts and keeps it (the devstack), with fsync on when not fast", async () => {
    const parent = mkdtempSync(join(tmpdir(), "stratum-pg-test-"));
    chmodSync(parent, 0o755); // the postgres OS user must reach it when we are root
    const dataDir = join(parent, "pgdata");
    try {
      const first = await start({ dataDir, fast: false });
      const sql1 = postgres(first.url, { max: 1, onnotice: () => {} });
      await sql1`create table kept (v text)`;
      await sql1`insert into kept values ('survives')`;
      expect((await sql1`show fsync`)[0]!.fsync).toBe("on");
      await sql1.end();
      await first.stop();
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);

      const second = await start({ dataDir, fast: false });
      expect(await client(second.url)`select v from kept`).toEqual([{ v: "survives" }]);
    } finally {
      await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot)("creates missing parents of a persistent data dir so the postgres OS user can reach it", async () => {
    const parent = mkdtempSync(join(tmpdir(), "stratum-pg-test-"));
    chmodSync(parent, 0o755);
    try {
      const server = await start({ dataDir: join(parent, "var", "lib", "pgdata") });
      expect(await client(server.url)`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot)("explains when the postgres OS user cannot reach a persistent data dir", async () => {
    const parent = mkdtempSync(join(tmpdir(), "stratum-pg-test-")); // 0700, owned by root
    try {
      await expect(startPostgres({ dataDir: join(parent, "pgdata") })).rejects.toThrow(/the postgres OS user cannot use .*pgdata/);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it("refuses to initialize a cluster in a non-empty directory that is not one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stratum-pg-test-"));
    try {
      writeFileSync(join(dir, "precious.txt"), "do not touch");
      await expect(startPostgres({ dataDir: dir })).rejects.toThrow(/neither empty nor a PostgreSQL data directory/);
      expect(existsSync(join(dir, "precious.txt"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a server that fails at start with its log", async () => {
    const err = await startPostgres({ settings: { shared_buffers: "lots" } }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/PostgreSQL did not start: postgres exited with code 1/);
    expect((err as Error).message).toMatch(/invalid value for parameter "shared_buffers"/);
  });

  it.runIf(existsSync("/usr/lib/postgresql/15/bin/postgres"))("can run system binaries given as binDir instead of the embedded ones", async () => {
    const server = await start({ binDir: "/usr/lib/postgresql/15/bin" });
    expect(server.version).toMatch(/PostgreSQL\) 15\./);
    expect((await client(server.url)`show server_version`)[0]!.server_version).toMatch(/^15\./);
  });
});

describe.concurrent("servers never outlive the process that started them", () => {
  /** Runs the fixture child, returns the pids it reports and the child handle. */
  async function runChild(mode: "exit" | "wait", env: NodeJS.ProcessEnv = {}) {
    const child = spawn(process.execPath, ["--import", "tsx", "packages/testing/test/fixtures/orphan-child.ts", mode], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolveLine, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once("line", resolveLine);
      child.once("exit", (code) => reject(new Error(`fixture exited with ${code} before reporting`)));
    });
    const started = JSON.parse(line) as { nats: number; postgres: number; dataDir: string; storeDir: string };
    return { child, started, pgChildren: childrenOf(started.postgres) };
  }

  async function expectAllGone(
    started: { nats: number; postgres: number; dataDir: string; storeDir: string },
    pgChildren: number[],
  ): Promise<void> {
    expect(await eventually(() => !alive(started.nats) && !alive(started.postgres), 10_000)).toBe(true);
    expect(await eventually(() => pgChildren.every((p) => !alive(p)), 10_000)).toBe(true);
  }

  /** Temp dirs the dead child could not remove itself (always, after SIGKILL). */
  function cleanUp(started: { dataDir: string; storeDir: string }): void {
    rmSync(resolve(started.dataDir, ".."), { recursive: true, force: true });
    rmSync(started.storeDir, { recursive: true, force: true });
  }

  it("SIGKILLed: the kernel stops them (parent-death signal via setpriv)", async () => {
    const { child, started, pgChildren } = await runChild("wait");
    expect(alive(started.postgres)).toBe(true);
    child.kill("SIGKILL");
    await expectAllGone(started, pgChildren);
    cleanUp(started);
  });

  it("exiting without stop(): the exit hook stops them and removes their temp dirs (no setpriv)", async () => {
    const { started, pgChildren } = await runChild("exit", { STRATUM_SETPRIV: "off" });
    await expectAllGone(started, pgChildren);
    expect(await eventually(() => !existsSync(started.storeDir), 5_000)).toBe(true);
    cleanUp(started);
  });

  it("SIGTERM with no handler of the app: the signal hook stops them, and the process still dies (no setpriv)", async () => {
    const { child, started, pgChildren } = await runChild("wait", { STRATUM_SETPRIV: "off" });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once("exit", (_code, signal) => r(signal)));
    child.kill("SIGTERM");
    expect(await exited).toBe("SIGTERM");
    await expectAllGone(started, pgChildren);
    cleanUp(started);
  });
});
