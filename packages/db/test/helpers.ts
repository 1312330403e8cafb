import { fileURLToPath } from "node:url";
import { testDatabase } from "@stratum/testing";
import { connect, type ConnectOptions, type DbHandle, type DbLogger } from "../src/index";
import * as tables from "./fixture/schema";

export const MIGRATIONS = fileURLToPath(new URL("./fixture/drizzle", import.meta.url));
export type FixtureTables = typeof tables;
export { tables };

/** Collects log lines instead of printing them, so tests can assert on them. */
export function memoryLogger(): DbLogger & { lines: Array<{ level: string; msg: string } & Record<string, unknown>> } {
  const lines: Array<{ level: string; msg: string } & Record<string, unknown>> = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, ...fields });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}

const opened: DbHandle<Record<string, unknown>>[] = [];

/** Opens a handle on `url` (a fresh test database by default) on the fixture's schema. */
export async function open(
  url?: string,
  options: Partial<ConnectOptions<FixtureTables>> = {},
): Promise<DbHandle<FixtureTables>> {
  const handle = await connect({ url: url ?? (await testDatabase("db")), schema: "fixture", tables, logger: memoryLogger(), ...options });
  opened.push(handle as unknown as DbHandle<Record<string, unknown>>);
  return handle;
}

export async function closeAll(): Promise<void> {
  await Promise.allSettled(opened.splice(0).map((h) => h.close()));
}
