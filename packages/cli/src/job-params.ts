/**
 * A job's parameters from the command line: `--param KEY=VALUE` (repeatable) and/or
 * `--params-json '{…}'`, into the google.protobuf.Struct of SubmitJobRequest. A `--param` value
 * is a number when it reads as a JSON number, a boolean when it is `true` or `false`, and a string
 * otherwise; a string that looks like a number (or a list) is given with `--params-json`. Which
 * parameters a type takes, and their ranges, are the server's to check (ListJobTypes declares
 * them, and a refusal names the parameter); here only the syntax is.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { UsageError } from "./usage-error";

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** `5` → 5, `true` → true, anything else → the text. */
export function paramValue(text: string): JsonValue {
  if (text === "true") return true;
  if (text === "false") return false;
  if (JSON_NUMBER.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

/** The parameters, or a UsageError naming the flag and the value at fault. */
export function parseJobParams(pairs: readonly string[], json: string | undefined, command: string): JsonObject {
  const params: JsonObject = {};
  const fromJson = new Set<string>();
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new UsageError(`invalid --params-json: ${e instanceof Error ? e.message : String(e)}`, command);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`invalid --params-json: must be a JSON object, e.g. '{"durationMs": 500}'`, command);
    for (const [key, value] of Object.entries(parsed as JsonObject)) {
      params[key] = value;
      fromJson.add(key);
    }
  }
  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`invalid --param "${pair}": must be KEY=VALUE`, command);
    const key = pair.slice(0, eq);
    if (seen.has(key)) throw new UsageError(`parameter "${key}" given more than once`, command);
    if (fromJson.has(key)) throw new UsageError(`parameter "${key}" given both by --param and in --params-json`, command);
    seen.add(key);
    params[key] = paramValue(pair.slice(eq + 1));
  }
  return params;
}
