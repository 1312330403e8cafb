import { describe, expect, it } from "vitest";
import { parseCommandLine, splitCommand, type FlagSpecs } from "./args";
import { enumChoices } from "./enums";
import { VmState, VmStateSchema } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { UsageError } from "./usage-error";

const GLOBALS: FlagSpecs = {
  endpoint: { type: "string", value: "HOST:PORT", description: "" },
  json: { type: "boolean", description: "" },
  help: { type: "boolean", short: "h", description: "" },
};
const CREATE: FlagSpecs = {
  ...GLOBALS,
  name: { type: "string", value: "NAME", description: "", required: true },
  cpu: { type: "string", value: "N", description: "", required: true },
  memory: { type: "string", value: "SIZE", description: "" },
  force: { type: "boolean", description: "" },
};
const twoWords = (words: readonly string[]) => words.length < 2;

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error("expected a UsageError");
}

describe("splitCommand", () => {
  it("takes the command words and leaves flags and arguments, global flags with their values", () => {
    expect(splitCommand(["--endpoint", "h:1", "vm", "--json", "get", "u-1", "--json"], GLOBALS, twoWords)).toEqual({
      words: ["vm", "get"],
      rest: ["--endpoint", "h:1", "--json", "u-1", "--json"],
    });
    expect(splitCommand(["--endpoint=h:1", "vm", "list"], GLOBALS, twoWords)).toEqual({ words: ["vm", "list"], rest: ["--endpoint=h:1"] });
  });

  it("stops collecting words when the command is complete", () => {
    expect(splitCommand(["vm", "get", "u-1", "extra"], GLOBALS, twoWords)).toEqual({ words: ["vm", "get"], rest: ["u-1", "extra"] });
  });

  it("refuses a command flag placed before the command", () => {
    const err = usageError(() => splitCommand(["vm", "--state", "running", "list"], GLOBALS, twoWords));
    expect(err.message).toMatch(/^unknown flag --state after 'vm'/);
  });
});

describe("parseCommandLine", () => {
  const parse = (...argv: string[]) => parseCommandLine(argv, CREATE, [], "vm create");

  it("reads value flags in both spellings, booleans and positionals", () => {
    const { flags, args } = parseCommandLine(["--name", "web", "--cpu=2", "--force", "u-1"], CREATE, ["UUID"], "vm stop");
    expect(flags.string("name")).toBe("web");
    expect(flags.uint32("cpu")).toBe(2);
    expect(flags.bool("force")).toBe(true);
    expect(flags.bool("json")).toBe(false);
    expect(flags.string("memory")).toBeUndefined();
    expect(args).toEqual(["u-1"]);
  });

  it("rejects an unknown flag, suggesting the close one", () => {
    const err = usageError(() => parse("--name", "a", "--cpu", "1", "--forse"));
    expect(err.message).toBe("unknown flag --forse for 'vm create' (did you mean --force?)");
    expect(err.helpCommand).toBe("vm create");
    expect(usageError(() => parse("--name", "a", "--cpu", "1", "-x")).message).toMatch(/^unknown flag -x for 'vm create'/);
    expect(usageError(() => parse("--name", "a", "--cpu", "1", "--colour=red")).message).toMatch(/^unknown flag --colour for 'vm create'$/);
  });

  it("rejects a flag given twice instead of keeping the last", () => {
    expect(usageError(() => parse("--name", "a", "--name", "b", "--cpu", "1")).message).toBe("flag --name given more than once");
  });

  it("collects a repeatable flag's values in order, each still needing a value", () => {
    const specs: FlagSpecs = { ...GLOBALS, param: { type: "string", value: "KEY=VALUE", description: "", repeatable: true } };
    const { flags } = parseCommandLine(["--param", "a=1", "--param=b=2", "--json", "--param", "c"], specs, [], "job submit");
    expect(flags.strings("param")).toEqual(["a=1", "b=2", "c"]);
    expect(flags.strings("absent")).toEqual([]);
    expect(usageError(() => parseCommandLine(["--param", "a=1", "--param"], specs, [], "job submit")).message).toBe("flag --param needs a value (KEY=VALUE)");
    expect(usageError(() => parseCommandLine(["--json", "--json"], specs, [], "job submit")).message).toBe("flag --json given more than once");
  });

  it("rejects a value flag without a value, or whose value is the next flag", () => {
    expect(usageError(() => parse("--cpu", "1", "--name")).message).toBe("flag --name needs a value (NAME)");
    expect(usageError(() => parse("--name", "--cpu", "1")).message).toBe("flag --name needs a value (NAME)");
    // Spelled with '=', a leading dash is the user's explicit choice.
    expect(parse("--name=-odd", "--cpu", "1").flags.string("name")).toBe("-odd");
  });

  it("rejects a value on a boolean flag", () => {
    expect(usageError(() => parse("--name", "a", "--cpu", "1", "--force=no")).message).toBe('flag --force takes no value (got "no")');
  });

  it("names every missing required flag", () => {
    expect(usageError(() => parse()).message).toBe("missing required flags --name, --cpu");
    expect(usageError(() => parse("--name", "a")).message).toBe("missing required flag --cpu");
  });

  it("checks the number of arguments", () => {
    expect(usageError(() => parseCommandLine([], GLOBALS, ["UUID"], "vm get")).message).toBe("missing argument UUID");
    expect(usageError(() => parseCommandLine(["a", "b"], GLOBALS, ["UUID"], "vm get")).message).toBe('unexpected argument "b"');
  });

  it("with --help, skips the required checks but still rejects unknown flags", () => {
    expect(parse("-h").flags.bool("help")).toBe(true);
    expect(() => parse("--help", "--bogus")).toThrow(/unknown flag --bogus/);
  });

  it("takes everything after -- as arguments", () => {
    expect(parseCommandLine(["--", "--json"], GLOBALS, ["NAME"], "x").args).toEqual(["--json"]);
  });
});

describe("Flags conversions name the flag", () => {
  const flags = (...argv: string[]) => parseCommandLine(argv, { ...CREATE, timeout: { type: "string", description: "" }, state: { type: "string", description: "" } }, [], "vm create").flags;
  const base = ["--name", "a", "--cpu", "1"];

  it("sizes", () => {
    expect(flags(...base, "--memory", "4GiB").size("memory")).toBe(4n * 1024n ** 3n);
    expect(usageError(() => flags(...base, "--memory", "4Gx").size("memory")).message).toBe('invalid --memory: "4Gx" has an unknown unit "Gx" (use B, KiB, MiB, GiB, TiB, or K, M, G, T)');
    expect(flags(...base).size("memory")).toBeUndefined();
    expect(usageError(() => flags(...base).size("memory", true)).message).toBe("missing required flag --memory");
  });

  it("counts", () => {
    expect(usageError(() => flags("--name", "a", "--cpu", "two").uint32("cpu")).message).toMatch(/^invalid --cpu "two": must be a whole number/);
    expect(usageError(() => flags("--name", "a", "--cpu", "1.5").uint32("cpu")).message).toMatch(/^invalid --cpu "1.5"/);
    expect(usageError(() => flags("--name", "a", "--cpu", "4294967296").uint32("cpu")).message).toMatch(/^invalid --cpu "4294967296"/);
    expect(flags("--name", "a", "--cpu", "4294967295").uint32("cpu", true)).toBe(4294967295);
  });

  it("seconds", () => {
    expect(flags(...base, "--timeout", "2.5").seconds("timeout")).toBe(2500);
    expect(usageError(() => flags(...base, "--timeout", "0").seconds("timeout")).message).toMatch(/^invalid --timeout "0": must be a positive number of seconds/);
    expect(usageError(() => flags(...base, "--timeout", "5s").seconds("timeout")).message).toMatch(/^invalid --timeout "5s"/);
  });

  it("choices, case-insensitive, also by full proto name", () => {
    const states = enumChoices<VmState>(VmStateSchema);
    expect(flags(...base, "--state", "Running").choice("state", states)).toBe(VmState.RUNNING);
    expect(flags(...base, "--state", "VM_STATE_STOPPED").choice("state", states)).toBe(VmState.STOPPED);
    const err = usageError(() => flags(...base, "--state", "runing").choice("state", states));
    expect(err.message).toBe('invalid --state "runing": must be one of created, starting, running, stopping, stopped, rebooting, destroying, destroyed, error, migrating');
  });
});
