/**
 * Reproducible random UUIDs for the ring's tests and benchmark (not exported by the package).
 *
 * Why not crypto.randomUUID: a failing balance or movement property must be re-runnable with the
 * exact same keys, so keys come from a seeded generator (sfc32) formatted as RFC 4122 v4 UUIDs.
 */

const HEX_CODES = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
/** Index in the 36-char string of each of the 32 hex digits (the 8-4-4-4-12 form). */
const DIGIT_AT = Array.from({ length: 36 }, (_, i) => i).filter((i) => i !== 8 && i !== 13 && i !== 18 && i !== 23);
const scratch = new Array<number>(36).fill(0x2d);

/** sfc32: small, fast, statistically solid 32-bit generator; returns unsigned 32-bit ints. */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed | 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

/**
 * One v4 UUID drawn from `next`. Built with String.fromCharCode so it is a flat string, like a
 * UUID decoded from a request or a database row (concatenation would leave a rope, which is
 * slower to read and would distort the benchmark).
 */
export function uuidFrom(next: () => number): string {
  for (let w = 0; w < 4; w++) {
    let word = next();
    if (w === 1) word = (word & 0xffff0fff) | 0x00004000;
    if (w === 2) word = (word & 0x3fffffff) | 0x80000000;
    for (let j = 0; j < 8; j++) scratch[DIGIT_AT[w * 8 + j]!] = HEX_CODES[(word >>> (28 - 4 * j)) & 0xf]!;
  }
  return String.fromCharCode.apply(null, scratch);
}

/** `count` v4 UUIDs, the same ones for the same seed. */
export function seededUuids(count: number, seed: number): string[] {
  const next = sfc32(seed);
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) out[i] = uuidFrom(next);
  return out;
}
