/**
 * Command-line parsing. node:util `parseArgs` tokenizes; the checks are ours, because the CLI's
 * rule is stricter than parseArgs' strict mode and its messages are for operators:
 *
 * - an unknown flag is an error, never ignored (a typo like `--forse` must not silently run a
 *   graceful stop), with a "did you mean" when one is close;
 * - a flag given twice is an error rather than "last one wins" (unless its spec says it is
 *   repeatable, like `--param`);
 * - a value flag needs a value, and a value that looks like another flag is not taken as one
 *   (`--name --cpu 2` is a missing name, not a VM called "--cpu");
 * - every conversion (count, size, choice, seconds) names the flag it came from.
 *
 * Global flags (`--endpoint`, `--json`…) may come before or after the command words.
 */
import { parseArgs } from "node:util";
import type { Choices } from "./enums";
import { didYouMean } from "./suggest";
import { parseSize, SizeError } from "./units";
import { UsageError } from "./usage-error";

export interface FlagSpec {
  /** `string` flags take a value (`--name web` or `--name=web`); `boolean` flags take none. */
  readonly type: "string" | "boolean";
  /** Placeholder for the value in help, e.g. `SIZE`. */
  readonly value?: string;
  readonly description: string;
  readonly required?: boolean;
  /** One-letter alias, e.g. `h` for `-h`. */
  readonly short?: string;
  /** A `string` flag that may be given several times (`--param a=1 --param b=2`), read with `Flags.strings`. */
  readonly repeatable?: boolean;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

const MAX_UINT32 = 2 ** 32 - 1;

function flagName(arg: string): string {
  const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
  const eq = body.indexOf("=");
  return eq < 0 ? body : body.slice(0, eq);
}

function lookup(specs: FlagSpecs, arg: string): [name: string, spec: FlagSpec] | undefined {
  const name = flagName(arg);
  if (arg.startsWith("--")) {
    const spec = specs[name];
    return spec ? [name, spec] : undefined;
  }
  return Object.entries(specs).find(([, s]) => s.short === name);
}

function isFlag(arg: string): boolean {
  return arg.startsWith("-") && arg !== "-";
}

/**
 * Splits the command words (`vm`, `create`) from everything else. Words are collected while
 * `wantsMore(words)` says the command is not complete yet; until then only global flags are
 * accepted (with their values), so `stratumctl --endpoint h:1 vm list` works but a command flag
 * placed before its command is refused instead of being mistaken for something else.
 */
export function splitCommand(argv: readonly string[], globals: FlagSpecs, wantsMore: (words: readonly string[]) => boolean): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--" || !wantsMore(words)) {
      rest.push(...argv.slice(i));
      break;
    }
    if (!isFlag(arg)) {
      words.push(arg);
      continue;
    }
    const found = lookup(globals, arg);
    if (!found) {
      const where = words.length > 0 ? ` after '${words.join(" ")}'; command flags go after the full command` : `; command flags go after the command`;
      throw new UsageError(`unknown flag ${arg.split("=")[0]}${where}`, words.join(" "));
    }
    rest.push(arg);
    if (found[1].type === "string" && !arg.includes("=") && i + 1 < argv.length) rest.push(argv[++i]!);
  }
  return { words, rest };
}

export interface ParsedCommandLine {
  flags: Flags;
  args: string[];
}

/**
 * Parses what follows the command words against the command's flags (globals included) and
 * positional argument names (a last one ending in `…` takes one or more). With `--help` present only unknown flags are errors: required flags
 * and arguments are not checked, so `vm create --help` shows help instead of complaining.
 */
export function parseCommandLine(argv: readonly string[], specs: FlagSpecs, positionals: readonly string[], command: string): ParsedCommandLine {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });

  const values = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const args: string[] = [];
  const known = Object.keys(specs).map((n) => `--${n}`);
  for (const token of tokens) {
    if (token.kind === "positional") {
      args.push(token.value);
      continue;
    }
    if (token.kind !== "option") continue;
    const spec = specs[token.name];
    if (!spec) throw new UsageError(`unknown flag ${token.rawName} for '${command}'${didYouMean(token.rawName, known)}`, command);
    const display = `--${token.name}`;
    if (values.has(token.name) && !spec.repeatable) throw new UsageError(`flag ${display} given more than once`, command);
    if (spec.type === "boolean") {
      if (token.value !== undefined) throw new UsageError(`flag ${display} takes no value (got "${token.value}")`, command);
      values.set(token.name, true);
      continue;
    }
    if (token.value === undefined || (!token.inlineValue && isFlag(token.value))) {
      throw new UsageError(`flag ${display} needs a value${spec.value ? ` (${spec.value})` : ""}`, command);
    }
    values.set(token.name, token.value);
    if (spec.repeatable) lists.set(token.name, [...(lists.get(token.name) ?? []), token.value]);
  }
  const flags = new Flags(values, command, lists);
  if (flags.bool("help")) return { flags, args };

  const missing = Object.entries(specs)
    .filter(([name, spec]) => spec.required && !values.has(name))
    .map(([name]) => `--${name}`);
  if (missing.length > 0) throw new UsageError(`missing required flag${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`, command);
  if (args.length < positionals.length) throw new UsageError(`missing argument ${positionals.slice(args.length).join(" ")}`, command);
  // A last positional named `X…` takes one or more (`volume tasks VOLUME…`).
  const variadic = positionals.at(-1)?.endsWith("…") === true;
  if (args.length > positionals.length && !variadic) throw new UsageError(`unexpected argument "${args[positionals.length]}"`, command);
  return { flags, args };
}

/**
 * Parsed flag values with typed accessors. Each accessor converts and validates the raw text and
 * names the flag in its error, so commands read `flags.size("memory")` and never see strings.
 * Only the syntax is checked here; ranges are the server's to enforce (it is the authority, and
 * answers with the field name and the allowed range).
 */
export class Flags {
  constructor(
    private readonly values: ReadonlyMap<string, string | true>,
    private readonly command: string,
    private readonly lists: ReadonlyMap<string, readonly string[]> = new Map(),
  ) {}

  /** Every value of a repeatable flag, in command-line order (none: empty). */
  strings(name: string): readonly string[] {
    return this.lists.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  bool(name: string): boolean {
    return this.values.get(name) === true;
  }

  string(name: string): string | undefined {
    const value = this.values.get(name);
    return typeof value === "string" ? value : undefined;
  }

  /** A flag the spec marks required (parseCommandLine has checked it is present). */
  required(name: string): string {
    const value = this.string(name);
    if (value === undefined) throw new UsageError(`missing required flag --${name}`, this.command);
    return value;
  }

  /** A whole number that fits a uint32 field; with `required`, absence is a usage error. */
  uint32(name: string, required: true): number;
  uint32(name: string, required?: false): number | undefined;
  uint32(name: string, required = false): number | undefined {
    const text = required ? this.required(name) : this.string(name);
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) > MAX_UINT32) throw this.#invalid(name, text, `must be a whole number between 0 and ${MAX_UINT32}`);
    return Number(text);
  }

  /** A memory size such as `4GiB` (see `parseSize`), in bytes; with `required`, absence is a usage error. */
  size(name: string, required: true): bigint;
  size(name: string, required?: false): bigint | undefined;
  size(name: string, required = false): bigint | undefined {
    const text = required ? this.required(name) : this.string(name);
    if (text === undefined) return undefined;
    try {
      return parseSize(text);
    } catch (e) {
      if (e instanceof SizeError) throw this.#invalid(name, undefined, e.message);
      throw e;
    }
  }

  /** A positive duration in seconds (fractions allowed), in milliseconds. */
  seconds(name: string): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
    if (!(value > 0) || !Number.isFinite(value)) throw this.#invalid(name, text, "must be a positive number of seconds");
    return Math.round(value * 1000);
  }

  /** One of `choices` (keys are matched case-insensitively). */
  choice<T>(name: string, choices: Choices<T>): T | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const value = choices.get(text.toLowerCase());
    if (value === undefined) throw this.#invalid(name, text, `must be one of ${[...choices.keys()].join(", ")}`);
    return value;
  }

  #invalid(name: string, text: string | undefined, why: string): UsageError {
    return new UsageError(text === undefined ? `invalid --${name}: ${why}` : `invalid --${name} "${text}": ${why}`, this.command);
  }
}
