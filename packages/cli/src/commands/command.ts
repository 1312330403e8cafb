/**
 * The shape every command has, and the few helpers they share. A command is data (its words,
 * flags, arguments and help) plus a `run` that converts flags, makes its calls and returns what
 * to print both ways — as a table for people and as protobuf JSON for scripts — so `main` alone
 * decides which one goes to stdout and commands cannot drift between the two.
 */
import { toJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HostService } from "@stratum/proto/stratum/compute/v1/host_pb";
import type { VmService } from "@stratum/proto/stratum/compute/v1/vm_pb";
import type { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import type { BackupService } from "@stratum/proto/stratum/storage/v1/backup_pb";
import type { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import type { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import type { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";
import type { BrokerService } from "@stratum/proto/stratum/broker/v1/broker_pb";
import type { Client } from "@stratum/rpc";
import type { FlagSpecs, Flags } from "../args";
import type { ServiceName } from "../endpoint";
import { EMPTY, renderTable } from "../table";
import type { Writer } from "../writer";

/** The APIs, each connected on first use (a usage error never opens a connection). */
export interface Api {
  readonly hosts: Client<typeof HostService>;
  readonly vms: Client<typeof VmService>;
  /** longjob's LongJobService, at longjob's own endpoint. */
  readonly jobs: Client<typeof LongJobService>;
  /** storage's StorageService (primary storage, volumes, volume tasks), at storage's endpoint. */
  readonly storage: Client<typeof StorageService>;
  /** storage's BackupService (backup storage, backups), at storage's endpoint. */
  readonly backups: Client<typeof BackupService>;
  /** network's NetworkService (L3 networks, IP ranges, addresses), at network's endpoint. */
  readonly networks: Client<typeof NetworkService>;
  /** network's EipService (elastic IPs), at network's endpoint. */
  readonly eips: Client<typeof EipService>;
  /** the broker's BrokerService (catalog, instances, bindings), at the broker's endpoint, with the bearer token. */
  readonly broker: Client<typeof BrokerService>;
}

/**
 * The streams and signal of the invocation, for commands that show progress while they run
 * (`--wait`, `job watch`); everything else returns its output in the CommandResult.
 */
export interface CommandIo {
  stdout: Writer;
  stderr: Writer;
  /** Aborted on Ctrl-C: a waiting command stops waiting (the job goes on). */
  signal?: AbortSignal | undefined;
}

export interface CommandInput {
  flags: Flags;
  /** Positional arguments, as many as the command's `args` names. */
  args: readonly string[];
  api: Api;
  io: CommandIo;
}

export interface CommandResult {
  /** Printed with `--json` (protobuf JSON of the resource, or of the list response). */
  json: JsonValue;
  /** Printed otherwise. */
  text: string;
  /** Extra remarks for people (e.g. "more pages"); stderr, never in `--json` output. */
  notes?: string[];
  /** The exit status when it is not 0 although the calls succeeded (a waited-for job that failed: 1; Ctrl-C: 130). */
  exitCode?: number;
}

export interface Command {
  /** Its group's name: `host`, `vm`, `job`, `volume`… */
  readonly group: string;
  /** The service it talks to (whose endpoint error messages name). Default: compute. */
  readonly service?: ServiceName;
  /** The verb, e.g. `create`; several words for a command on a part of the group's resource (`range add`). */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** What it does and why one would use it, for `--help`. */
  readonly description: string;
  /** Positional argument names, e.g. `["UUID"]`; exactly this many are required. */
  readonly args: readonly string[];
  readonly flags: FlagSpecs;
  readonly examples?: readonly string[];
  run(input: CommandInput): Promise<CommandResult>;
}

/**
 * Protobuf JSON (proto field names in lowerCamel, enums by name, 64-bit integers as strings), with
 * zero values included: a script reading `.lastError` or `.cpuUsed` gets `""` or `0`, not a missing
 * key, so the output's shape does not depend on the data.
 */
export function jsonOf<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonValue {
  return toJson(schema, message, { alwaysEmitImplicit: true });
}

/**
 * The resource a response must carry. A response without it is a server bug; printing an empty
 * row instead would look like success with nothing in it.
 */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the server answered without the ${what}`);
  return value;
}

/** An ISO-8601 UTC time, or `-` when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : EMPTY;
}

/** The flags shared by list commands. */
export const PAGING_FLAGS: FlagSpecs = {
  "page-size": { type: "string", value: "N", description: "at most N per page (server default 100, max 1000)" },
  "page-token": { type: "string", value: "TOKEN", description: "continue from the page token a previous list printed" },
  all: { type: "boolean", description: "follow page tokens and list everything" },
};

/**
 * Fetches one page, or every page with `--all` (following next_page_token). Returns the items and
 * the token of the next unfetched page ("" at the end).
 */
export async function fetchPages<T>(
  flags: Flags,
  fetch: (page: { pageSize: number; pageToken: string }) => Promise<{ items: T[]; nextPageToken: string }>,
): Promise<{ items: T[]; nextPageToken: string }> {
  const pageSize = flags.uint32("page-size") ?? 0;
  let pageToken = flags.string("page-token") ?? "";
  const items: T[] = [];
  const seen = new Set<string>();
  for (;;) {
    const page = await fetch({ pageSize, pageToken });
    items.push(...page.items);
    if (!flags.bool("all") || page.nextPageToken === "") return { items, nextPageToken: page.nextPageToken };
    // A server handing out a token twice would loop forever; stop and say so instead.
    if (seen.has(page.nextPageToken)) throw new Error(`the server returned page token ${page.nextPageToken} twice; stopping`);
    seen.add(page.nextPageToken);
    pageToken = page.nextPageToken;
  }
}

/** The stderr remark for a list that stopped before the end. */
export function morePagesNote(what: string, command: string, nextPageToken: string): string[] {
  return nextPageToken === "" ? [] : [`more ${what} exist: add --all, or --page-token ${nextPageToken} for the next page (stratumctl ${command})`];
}

/**
 * What every list command prints: a table of the items (or, on stderr, that there are none), the
 * list response as JSON, and how to get the next page when the list stopped early.
 */
export function listResult<T>(list: { json: JsonValue; items: readonly T[]; nextPageToken: string; columns: string[]; row: (item: T) => string[]; noun: string; command: string }): CommandResult {
  const empty = list.items.length === 0;
  return {
    json: list.json,
    text: empty ? "" : renderTable(list.columns, list.items.map(list.row)),
    notes: [...(empty ? [`no ${list.noun} found`] : []), ...morePagesNote(list.noun, list.command, list.nextPageToken)],
  };
}

