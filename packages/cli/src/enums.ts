/**
 * Proto enums as words. Tables show `Running` rather than `VM_STATE_RUNNING` or `3`, and filter
 * flags accept `running`; both are derived from the enum descriptors, so a value added to the
 * proto shows up here without a hand-kept list drifting out of date.
 */
import type { DescEnum } from "@bufbuild/protobuf";

function titleCase(localName: string): string {
  return localName
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ");
}

/** `Running` for VM_STATE_RUNNING; `-` for the unset value; the number for a value this build does not know. */
export function enumWord(schema: DescEnum, value: number): string {
  if (value === 0) return "-";
  const known = schema.values.find((v) => v.number === value);
  return known ? titleCase(known.localName) : String(value);
}

/** What a choice flag accepts: `get` a value by a (lower-case) word, and the words to list in errors and help. */
export interface Choices<T> {
  get(word: string): T | undefined;
  keys(): Iterable<string>;
}

/**
 * Flag choices: lower-case short names (`running`) to values, the unset value excluded. The full
 * proto names (`vm_state_running`) are accepted too, so a value copied from `--json` output works,
 * but only the short names are listed.
 */
export function enumChoices<T extends number>(schema: DescEnum): Choices<T> {
  const byWord = new Map<string, T>();
  for (const v of schema.values) if (v.number !== 0) byWord.set(v.localName.toLowerCase(), v.number as T);
  const byFullName = new Map<string, T>();
  for (const v of schema.values) if (v.number !== 0) byFullName.set(v.name.toLowerCase(), v.number as T);
  return { get: (word) => byWord.get(word) ?? byFullName.get(word), keys: () => byWord.keys() };
}
