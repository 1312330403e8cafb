/**
 * Memory sizes as people type and read them. The API speaks bytes (`memory_bytes`, uint64) so it
 * is never ambiguous; the CLI converts at the edge so an operator writes `--memory 4GiB` and reads
 * `4 GiB`. Everything is binary (1 GiB = 2^30 bytes), as hypervisors count memory: the short
 * forms K/M/G/T are binary too, and the SI spellings (GB…) are refused instead of guessed, because
 * 4GB could mean 4·10^9 or 4·2^30 bytes and a wrong guess silently changes what gets allocated.
 *
 * Sizes are bigints: uint64 does not fit a JS number, and protobuf-es uses bigint for it.
 */

const KIB = 1024n;

/** Binary units, largest first (the order `formatSize` picks from). */
const UNITS: ReadonlyArray<readonly [name: string, bytes: bigint]> = [
  ["TiB", KIB ** 4n],
  ["GiB", KIB ** 3n],
  ["MiB", KIB ** 2n],
  ["KiB", KIB],
];

/** Accepted suffixes, lower-cased, to their multiplier. */
const SUFFIXES: ReadonlyMap<string, bigint> = new Map([
  ["", 1n],
  ["b", 1n],
  ["k", KIB],
  ["kib", KIB],
  ["m", KIB ** 2n],
  ["mib", KIB ** 2n],
  ["g", KIB ** 3n],
  ["gib", KIB ** 3n],
  ["t", KIB ** 4n],
  ["tib", KIB ** 4n],
]);

const SI_SUFFIXES = new Set(["kb", "mb", "gb", "tb"]);

/** The largest value a uint64 field can carry. */
export const MAX_UINT64 = 2n ** 64n - 1n;

/** A size that cannot be parsed; the message says why, without naming the flag (the caller does). */
export class SizeError extends Error {
  override readonly name = "SizeError";
}

/**
 * Parses `4GiB`, `4 GiB`, `4G`, `512MiB`, `1.5GiB`, `4096` (bytes) or `4096B` into bytes.
 * Suffixes are case-insensitive. A fraction is allowed only if it comes to whole bytes.
 */
export function parseSize(text: string): bigint {
  const match = /^(\d+)(?:\.(\d+))?\s*([a-z]*)$/i.exec(text.trim());
  if (!match) throw new SizeError(`"${text}" is not a size (examples: 4GiB, 512MiB, 1.5G, 1073741824)`);
  const [, whole = "", fraction = "", rawSuffix = ""] = match;
  const suffix = rawSuffix.toLowerCase();
  if (SI_SUFFIXES.has(suffix)) {
    const binary = `${suffix[0]!.toUpperCase()}iB`;
    throw new SizeError(`"${text}" is ambiguous: write ${whole}${fraction ? `.${fraction}` : ""}${binary} (binary, 1 ${binary} = ${SUFFIXES.get(suffix[0]!)} bytes) or plain bytes`);
  }
  const multiplier = SUFFIXES.get(suffix);
  if (multiplier === undefined) throw new SizeError(`"${text}" has an unknown unit "${rawSuffix}" (use B, KiB, MiB, GiB, TiB, or K, M, G, T)`);
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(whole) * scale + BigInt(fraction || "0")) * multiplier;
  if (scaled % scale !== 0n) throw new SizeError(`"${text}" is not a whole number of bytes`);
  const bytes = scaled / scale;
  if (bytes > MAX_UINT64) throw new SizeError(`"${text}" is too large (at most ${MAX_UINT64} bytes)`);
  return bytes;
}

/**
 * Bytes for people: the largest binary unit the value reaches, with up to two decimals when it is
 * not a whole number of that unit (`4 GiB`, `1.5 GiB`, `512 MiB`, `100 B`). Exact values are
 * available through `--json`.
 */
export function formatSize(bytes: bigint | number): string {
  const value = BigInt(bytes);
  if (value < 0n) return `-${formatSize(-value)}`;
  for (const [name, unit] of UNITS) {
    if (value < unit) continue;
    let whole = value / unit;
    let hundredths = ((value % unit) * 100n + unit / 2n) / unit;
    if (hundredths === 100n) {
      whole += 1n;
      hundredths = 0n;
    }
    if (hundredths === 0n) return `${whole} ${name}`;
    const decimals = hundredths.toString().padStart(2, "0").replace(/0$/, "");
    return `${whole}.${decimals} ${name}`;
  }
  return `${value} B`;
}
