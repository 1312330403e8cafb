#!/usr/bin/env tsx
/**
 * stratumctl's entry point. `run(argv, io)` does everything and returns the exit code, writing
 * only to the injected streams, so tests drive the real CLI in-process; the bottom of the file
 * wires it to the process when this file is executed.
 *
 * Exit codes: 0 success; 1 the call failed (the server refused, or could not be reached), or a
 * job waited for did not succeed; 2 usage error — unknown command or flag, missing or unparsable
 * value — in which case nothing was sent; 130 Ctrl-C (a job waited for goes on).
 */
import { randomUUID } from "node:crypto";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Code, StratumError } from "@stratum/core";
import { openApi, type Connect } from "./api";
import { parseCommandLine, splitCommand } from "./args";
import { findCommand, findGroup, GROUPS } from "./commands";
import { BROKER_TOKEN_ENV, ENDPOINTS_FILE, resolveBrokerToken, resolveEndpoint, REPO_ROOT, SERVICE_SOURCES, type Endpoint, type ServiceName, type TokenSource } from "./endpoint";
import { describeError, type ErrorContext } from "./error-message";
import { DEFAULT_TIMEOUT_MS, GLOBAL_FLAGS } from "./global-flags";
import { commandHelp, groupHelp, TOOL, toolHelp } from "./help";
import { didYouMean } from "./suggest";
import { UsageError } from "./usage-error";
import { EXIT_INTERRUPTED, type Writer } from "./writer";

export type { Writer } from "./writer";

export interface Io {
  /** A terminal (`isTTY`) gets `--wait`'s progress redrawn in place; anything else one line per change. */
  stdout: Writer;
  stderr: Writer;
  /** Ctrl-C: aborting it cancels the calls and stops any waiting (exit 130). The entry point wires it to SIGINT. */
  signal?: AbortSignal;
  /** Environment (for STRATUM_ENDPOINT, STRATUM_LONGJOB_ENDPOINT, STRATUM_STORAGE_ENDPOINT, STRATUM_NETWORK_ENDPOINT, STRATUM_BROKER_ENDPOINT, STRATUM_BROKER_TOKEN). Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where `.data/devstack/endpoints.json` is looked for. Default: this repository. */
  repoRoot?: string;
  /** Client factory. Default: `createClient` from @stratum/rpc. */
  connect?: Connect;
}

/**
 * While collecting command words (after an optional `help`): a group, then its command's words —
 * one (`vm create`), or more for a command whose name has several (`network range add`): words
 * are taken while what was typed is the start of a longer command name.
 */
function wantsMore(words: readonly string[]): boolean {
  const typed = words[0] === "help" ? words.slice(1) : words;
  const [first, ...verb] = typed;
  if (first === undefined) return true;
  const group = findGroup(first);
  if (!group) return false;
  if (verb.length === 0) return true;
  const prefix = `${verb.join(" ")} `;
  return group.commands.some((c) => c.name.startsWith(prefix));
}

function unknownCommand(word: string, candidates: Iterable<string>, group = ""): UsageError {
  const full = group ? `${group} ${word}` : word;
  return new UsageError(`unknown command "${full}"${didYouMean(word, candidates)}`, group);
}

/** Runs one invocation and returns its exit code. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let errorContext: ErrorContext | undefined;
  let close = (): void => {};
  let serviceOf = (_e: unknown): ServiceName | undefined => undefined;
  let endpointOf = (_service: ServiceName): Endpoint => errorContext!.endpoint;
  /** Where a broker command's token came from, for the hint of a refused one. */
  let tokenSource: TokenSource | undefined;
  try {
    const { words, rest } = splitCommand(argv, GLOBAL_FLAGS, wantsMore);
    const helpWord = words[0] === "help";
    if (helpWord) words.shift();

    const [groupName, ...verb] = words;
    const commandName = verb.length > 0 ? verb.join(" ") : undefined;
    if (groupName === undefined) {
      const { flags } = parseCommandLine(rest, GLOBAL_FLAGS, [], "");
      if (helpWord || flags.bool("help")) {
        io.stdout.write(toolHelp());
        return 0;
      }
      throw new UsageError(`missing command; one of: ${GROUPS.map((g) => g.name).join(", ")}`);
    }
    const group = findGroup(groupName);
    if (!group) throw unknownCommand(groupName, [...GROUPS.map((g) => g.name), "help"]);
    if (commandName === undefined) {
      const { flags } = parseCommandLine(rest, GLOBAL_FLAGS, [], group.name);
      if (helpWord || flags.bool("help")) {
        io.stdout.write(groupHelp(group));
        return 0;
      }
      throw new UsageError(`missing command after '${group.name}'; one of: ${group.commands.map((c) => c.name).join(", ")}`, group.name);
    }
    const command = findCommand(group, commandName);
    if (!command) {
      // `network range` alone: the start of several commands' names, not a mistyped one.
      const longer = group.commands.filter((c) => c.name.startsWith(`${commandName} `)).map((c) => c.name.slice(commandName.length + 1));
      if (longer.length > 0) throw new UsageError(`missing command after '${group.name} ${commandName}'; one of: ${longer.join(", ")}`, group.name);
      throw unknownCommand(commandName, group.commands.map((c) => c.name), group.name);
    }
    const path = `${group.name} ${command.name}`;
    if (helpWord) {
      io.stdout.write(commandHelp(command));
      return 0;
    }

    const { flags, args } = parseCommandLine(rest, { ...GLOBAL_FLAGS, ...command.flags }, command.args, path);
    if (flags.bool("help")) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const timeoutMs = flags.seconds("timeout") ?? DEFAULT_TIMEOUT_MS;
    const resolved = new Map<ServiceName, Endpoint>();
    const endpointFor = (service: ServiceName): Endpoint => {
      let endpoint = resolved.get(service);
      if (!endpoint) {
        endpoint = resolveEndpoint({ service, flag: flags.string(SERVICE_SOURCES[service].flag), env: io.env ?? process.env, repoRoot: io.repoRoot ?? REPO_ROOT });
        resolved.set(service, endpoint);
      }
      return endpoint;
    };
    // Resolved now, not on first use: a bad address is a usage error before anything is sent.
    const endpoint = endpointFor(command.service ?? "compute");
    // The broker's token too: none is a usage error before anything is sent.
    const broker = command.service === "broker" ? resolveBrokerToken({ flag: flags.string("token"), env: io.env ?? process.env, repoRoot: io.repoRoot ?? REPO_ROOT }) : undefined;
    const brokerToken = broker?.token;
    tokenSource = broker?.source;
    const requestId = randomUUID();
    errorContext = { endpoint, timeoutMs, requestId };
    const opened = openApi({
      endpointFor,
      timeoutMs,
      requestId,
      ...(io.connect ? { connect: io.connect } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
      ...(brokerToken !== undefined ? { brokerToken: () => brokerToken } : {}),
    });
    close = opened.close;
    serviceOf = opened.serviceOf;
    endpointOf = endpointFor;

    const result = await command.run({ flags, args, api: opened.api, io: { stdout: io.stdout, stderr: io.stderr, signal: io.signal } });
    if (flags.bool("json")) {
      io.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
    } else {
      io.stdout.write(result.text);
      for (const note of result.notes ?? []) io.stderr.write(`${note}\n`);
    }
    return result.exitCode ?? 0;
  } catch (e) {
    if (io.signal?.aborted && !(e instanceof UsageError)) {
      io.stderr.write("interrupted\n");
      return EXIT_INTERRUPTED;
    }
    if (e instanceof UsageError) {
      io.stderr.write(`error: ${e.message}\nRun '${[TOOL, e.helpCommand, "--help"].filter(Boolean).join(" ")}' for usage.\n`);
      return 2;
    }
    if (e instanceof StratumError && errorContext) {
      // A command may call two services (storage, then longjob to follow the job): name the one that failed.
      const failed = serviceOf(e);
      const context = failed ? { ...errorContext, endpoint: endpointOf(failed) } : errorContext;
      for (const line of describeError(e, context)) io.stderr.write(`${line}\n`);
      if (e.code === Code.UNAUTHENTICATED && tokenSource) io.stderr.write(`the token is from ${tokenSource === "devstack" ? ENDPOINTS_FILE : tokenSource === "--token" ? "--token" : `$${tokenSource}`}; pass another with --token or $${BROKER_TOKEN_ENV}\n`);
      return 1;
    }
    io.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    close();
  }
}

/** Whether this file is the process's entry point (run by tsx or through the bin link), not imported. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `stratumctl vm list | head` closes the pipe early: that is not an error worth a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(process.exitCode ?? 0);
  });
  // Ctrl-C aborts the calls and any waiting (a waited-for job goes on, and the CLI says how to
  // cancel it). Once only: a second Ctrl-C kills the process the usual way.
  const interrupt = new AbortController();
  process.once("SIGINT", () => interrupt.abort());
  process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: interrupt.signal });
}
