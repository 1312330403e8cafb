/**
 * A Dockerfile parser just deep enough for static checks: instructions (continuations joined,
 * comments and parser directives dropped), grouped by stage, with `$VAR`/`${VAR}` expanded from
 * ARG/ENV defaults the way BuildKit would at build time when no --build-arg is given.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ENV… */
  readonly keyword: string;
  /** Everything after the keyword, variables expanded, `--flag=value` options removed. */
  readonly args: string;
  /** `--from=deps` → { from: "deps" }; `--mount=…` may repeat, the last one wins (unused here). */
  readonly flags: Readonly<Record<string, string>>;
  /** 1-based line of the keyword, for messages. */
  readonly line: number;
}

export interface Stage {
  /** The FROM image, expanded (`node:20-bookworm-slim`). */
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
  /** ARG and ENV values visible at the end of the stage. */
  readonly vars: Readonly<Record<string, string>>;
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>;
  readonly stages: readonly Stage[];
}

const expand = (text: string, vars: Readonly<Record<string, string>>): string =>
  text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, a?: string, b?: string) => vars[(a ?? b)!] ?? whole);

/** `KEY=value KEY2="v 2"` (or the legacy `KEY value`) → entries. */
export function parseAssignments(args: string): Array<[string, string]> {
  const pairs = [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|'([^']*)'|\S*)/g)].map((m): [string, string] => [m[1]!, m[3] ?? m[4] ?? m[2]!]);
  if (pairs.length > 0) return pairs;
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$/.exec(args.trim());
  return legacy ? [[legacy[1]!, legacy[2]!]] : [];
}

/** Joins `\`-continued lines, keeping the line number where each instruction starts. */
function logicalLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let current: { line: number; text: string } | undefined;
  text.split("\n").forEach((raw, i) => {
    const trimmed = raw.trim();
    // Comments (and `# syntax=` directives) are dropped, also inside a continued RUN.
    if (trimmed.startsWith("#")) return;
    if (!current) {
      if (trimmed === "") return;
      current = { line: i + 1, text: "" };
    }
    if (trimmed.endsWith("\\")) {
      current.text += `${trimmed.slice(0, -1)} `;
    } else {
      current.text += trimmed;
      out.push(current);
      current = undefined;
    }
  });
  if (current) out.push(current);
  return out;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  let stage: { image: string; name: string | undefined; instructions: Instruction[]; vars: Record<string, string> } | undefined;
  for (const { line, text: logical } of logicalLines(text)) {
    const match = /^(\S+)\s*(.*)$/.exec(logical)!;
    const keyword = match[1]!.toUpperCase();
    let rest = match[2]!;
    const flags: Record<string, string> = {};
    // Options come first: `COPY --from=deps --chmod=0755 src dst`.
    for (let m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); m; m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
      flags[m[1]!] = m[2] ?? "true";
      rest = rest.slice(m[0].length);
    }
    if (keyword === "FROM") {
      const [image = "", as, name] = expand(rest, globalArgs).split(/\s+/);
      stage = { image, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [], vars: {} };
      stages.push(stage);
      stage.instructions.push({ keyword, args: expand(rest, globalArgs), flags, line });
      continue;
    }
    if (!stage) {
      // Only ARG may precede the first FROM.
      if (keyword === "ARG") for (const [k, v] of parseAssignments(rest)) globalArgs[k] = v;
      continue;
    }
    const args = expand(rest, stage.vars);
    if (keyword === "ARG") {
      // `ARG X` inside a stage re-imports the global default; `ARG X=v` sets its own.
      for (const token of rest.trim().split(/\s+/)) {
        const [k, v] = token.split("=", 2) as [string, string | undefined];
        const value = v ?? globalArgs[k];
        if (value !== undefined) stage.vars[k] = expand(value, stage.vars);
      }
    } else if (keyword === "ENV") {
      for (const [k, v] of parseAssignments(rest)) stage.vars[k] = expand(v, stage.vars);
    }
    stage.instructions.push({ keyword, args, flags, line });
  }
  return { globalArgs, stages };
}

/** Exec-form arguments (`["a", "b"]`) or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith("[")) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((a) => typeof a === "string") ? parsed : undefined;
  } catch {
    return undefined;
  }
}
