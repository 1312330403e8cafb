/**
 * Plain-text layout for people: column-aligned tables (lists, and the one resource a mutation
 * returns) and aligned "Field: value" blocks (`get`). No colours or box drawing, so the output
 * reads the same in a terminal, a log and `grep`/`awk`; scripts should use `--json` anyway.
 */

/** Shown for an empty cell, so columns never collapse and `awk` field counts stay fixed. */
export const EMPTY = "-";

/** One line per cell: newlines or tabs in a value (an agent's error text) would break the alignment. */
function cell(value: string): string {
  const flat = value.replace(/[\s\u0000-\u001f\u007f]+/g, " ").trim();
  return flat === "" ? EMPTY : flat;
}

/** Width in terminal columns, counting each code point once (good enough without wide-char tables). */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, to: number): string {
  return text + " ".repeat(Math.max(0, to - width(text)));
}

/**
 * Rows under upper-case headers, columns separated by at least two spaces, no trailing spaces.
 * Every line ends with a newline.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cell(r[i] ?? "")))];
  const widths = headers.map((_, i) => Math.max(...lines.map((l) => width(l[i]!))));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : pad(c, widths[i]! + 2))).join("").trimEnd() + "\n").join("");
}

/** `Label:  value` lines with the values aligned, for one resource in detail. */
export function renderFields(fields: readonly (readonly [label: string, value: string])[]): string {
  const labelWidth = Math.max(0, ...fields.map(([label]) => width(label) + 1));
  return fields.map(([label, value]) => `${pad(`${label}:`, labelWidth + 2)}${cell(value)}\n`).join("");
}
