/**
 * `--help` text, generated from the command and flag specs so it cannot disagree with what the
 * parser accepts.
 */
import type { FlagSpec, FlagSpecs } from "./args";
import { GROUPS, type CommandGroup } from "./commands";
import type { Command } from "./commands/command";
import { GLOBAL_FLAGS } from "./global-flags";
import { TOOL_NAME } from "./tool-name";

export const TOOL = TOOL_NAME;

/** Help is wrapped to this many columns, the width of a terminal that is not full-screen. */
const WIDTH = 100;

/**
 * Words of `text` (or the given units, kept whole, e.g. `[--page-token TOKEN]`) in lines of at
 * most `width` characters; a longer unit gets a line of its own.
 */
export function wrap(text: string | readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of typeof text === "string" ? text.split(/\s+/).filter(Boolean) : text) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Two-column list with the second column aligned and wrapped under itself. */
function columns(rows: readonly (readonly [string, string])[], indent = "  "): string {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  const hang = " ".repeat(indent.length + width + 3);
  return rows
    .map(([left, right]) => {
      const [first = "", ...more] = wrap(right, Math.max(30, WIDTH - hang.length));
      return `${indent}${left.padEnd(width)}   ${first}\n${more.map((l) => `${hang}${l}\n`).join("")}`;
    })
    .join("");
}

function flagLabel(name: string, spec: FlagSpec): string {
  const long = `--${name}${spec.type === "string" && spec.value ? ` ${spec.value}` : ""}${spec.repeatable ? " …" : ""}`;
  return spec.short ? `-${spec.short}, ${long}` : long;
}

function flagRows(specs: FlagSpecs, filter: (spec: FlagSpec) => boolean = () => true): [string, string][] {
  return Object.entries(specs)
    .filter(([, spec]) => filter(spec))
    .map(([name, spec]) => [flagLabel(name, spec), spec.description]);
}

/** `stratumctl vm create --name NAME --cpu N --memory SIZE [--host UUID] …`, one part per element. */
export function usageParts(command: Command): string[] {
  const parts = [TOOL, command.group, command.name, ...command.args];
  for (const [name, spec] of Object.entries(command.flags)) {
    const label = flagLabel(name, spec);
    parts.push(spec.required ? label : `[${label}]`);
  }
  return parts;
}

const FOOTER =
  "Sizes: 4GiB, 512MiB, 1.5G … (B, KiB, MiB, GiB, TiB; K, M, G, T are binary too); a plain number is bytes.\n" +
  "Exit status: 0 success, 1 the server refused or could not be reached (or what was waited for did not succeed, or eip audit\n" +
  "found drift), 2 usage error (nothing was sent), 130 Ctrl-C.\n" +
  "Endpoints: host and vm commands go to compute (--endpoint, $STRATUM_ENDPOINT), job commands to longjob (--longjob-endpoint,\n" +
  "$STRATUM_LONGJOB_ENDPOINT), primary-storage, backup-storage, volume and backup commands to storage (--storage-endpoint,\n" +
  "$STRATUM_STORAGE_ENDPOINT; a --wait follows the job on longjob), network and eip commands to network (--network-endpoint,\n" +
  "$STRATUM_NETWORK_ENDPOINT); else the devstack's .data/devstack/endpoints.json, else 127.0.0.1:7101, 127.0.0.1:7401,\n" +
  "127.0.0.1:7301 and 127.0.0.1:7601.\n";

export function toolHelp(): string {
  let text = `${TOOL} — command line for Stratum: hypervisor hosts and VMs (compute), long jobs (longjob), storage, volumes and backups (storage), networks and elastic IPs (network).\n\n`;
  text += `Usage:\n  ${TOOL} <group> <command> [arguments] [flags]\n  ${TOOL} help <group> <command>\n`;
  for (const group of GROUPS) {
    text += `\n${group.title}:\n`;
    text += columns(group.commands.map((c) => [`${group.name} ${c.name}${c.args.length ? ` ${c.args.join(" ")}` : ""}`, c.summary]));
  }
  text += `\nGlobal flags (before or after the command):\n${columns(flagRows(GLOBAL_FLAGS))}`;
  text += `\n${FOOTER}Run '${TOOL} <group> <command> --help' for a command's flags.\n`;
  return text;
}

export function groupHelp(group: CommandGroup): string {
  let text = `Usage: ${TOOL} ${group.name} <command> [arguments] [flags]\n\n${group.title}:\n`;
  text += columns(group.commands.map((c) => [`${c.name}${c.args.length ? ` ${c.args.join(" ")}` : ""}`, c.summary]));
  text += `\nRun '${TOOL} ${group.name} <command> --help' for a command's flags.\n`;
  return text;
}

export function commandHelp(command: Command): string {
  let text = `Usage: ${wrap(usageParts(command), WIDTH - 7).join("\n         ")}\n\n${wrap(command.description, WIDTH).join("\n")}\n`;
  const required = flagRows(command.flags, (f) => f.required === true);
  const optional = flagRows(command.flags, (f) => f.required !== true);
  if (required.length > 0) text += `\nRequired flags:\n${columns(required)}`;
  if (optional.length > 0) text += `\nFlags:\n${columns(optional)}`;
  text += `\nGlobal flags:\n${columns(flagRows(GLOBAL_FLAGS))}`;
  if (command.examples?.length) text += `\nExamples:\n${command.examples.map((e) => `  ${e}\n`).join("")}`;
  if (Object.values(command.flags).some((f) => f.value === "SIZE")) text += `\n${FOOTER.split("\n")[0]}\n`;
  return text;
}
