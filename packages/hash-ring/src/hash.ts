/**
 * MurmurHash3 (x86, 32-bit) — the hash that places keys and virtual nodes on the ring.
 *
 * Why this hash: ownership must be identical in every replica, in every process, and in any
 * other language that ever needs to compute it (a Go sidecar, a SQL migration, a debugging
 * script). MurmurHash3_x86_32 over the UTF-8 bytes of the string is a published algorithm with
 * reference implementations everywhere, it avalanches fully (unlike String.hashCode / djb2 /
 * PJW, whose outputs for `vm-…0001` and `vm-…0002` are neighbours), and it costs a handful of
 * multiplications per 4 bytes.
 *
 * Why the streaming UTF-8 encoder: hashing must not allocate on the lookup path (no Buffer, no
 * TextEncoder), yet it must hash the same bytes every other implementation hashes. ASCII keys —
 * every resource UUID — take a fast path that reads four char codes per block; anything else is
 * encoded to UTF-8 on the fly, with lone surrogates encoded as U+FFFD exactly like TextEncoder
 * and Buffer.from do.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** Mixes one little-endian 4-byte block into the running state `h`. */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Mixes the last 1..3 bytes (already packed little-endian in `k`), the length, and avalanches. */
function finish(h: number, k: number, pendingBytes: number, length: number): number {
  if (pendingBytes > 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3_x86_32 of the UTF-8 encoding of `text`, as an unsigned 32-bit integer.
 *
 * Equal to the reference implementation run on `Buffer.from(text, "utf8")`, so other languages
 * can reproduce ring positions; allocation-free, so it can sit on the per-request routing path.
 *
 * @param text any string; lone surrogates hash as U+FFFD (what every UTF-8 encoder emits).
 * @param seed unsigned 32-bit seed. The ring hashes keys and vnodes with seed 0.
 */
export function murmur3(text: string, seed = 0): number {
  const n = text.length;
  let h = seed | 0;
  let acc = 0; // bytes not yet mixed, little-endian
  let accBits = 0; // 0, 8, 16 or 24
  let length = 0; // UTF-8 byte length
  let i = 0;

  while (i < n) {
    if (accBits === 0) {
      // Fast path: four ASCII chars are exactly one block.
      while (i + 4 <= n) {
        const c0 = text.charCodeAt(i);
        const c1 = text.charCodeAt(i + 1);
        const c2 = text.charCodeAt(i + 2);
        const c3 = text.charCodeAt(i + 3);
        if ((c0 | c1 | c2 | c3) >= 0x80) break;
        h = mixBlock(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
        i += 4;
        length += 4;
      }
      if (i >= n) break;
    }

    // Slow path: one code point, encoded to 1..4 UTF-8 bytes packed little-endian in `bytes`.
    let c = text.charCodeAt(i++);
    let bytes: number;
    let count: number;
    if (c < 0x80) {
      bytes = c;
      count = 1;
    } else if (c < 0x800) {
      bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      let low = 0;
      if (c >= 0xd800 && c < 0xdc00 && i < n && (low = text.charCodeAt(i)) >= 0xdc00 && low < 0xe000) {
        i++;
        const cp = ((c - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
        bytes =
          (0xf0 | (cp >> 18)) |
          ((0x80 | ((cp >> 12) & 0x3f)) << 8) |
          ((0x80 | ((cp >> 6) & 0x3f)) << 16) |
          ((0x80 | (cp & 0x3f)) << 24);
        count = 4;
      } else {
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate
        bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      }
    }
    length += count;
    for (let j = 0; j < count; j++) {
      acc |= (bytes & 0xff) << accBits;
      bytes >>>= 8;
      accBits += 8;
      if (accBits === 32) {
        h = mixBlock(h, acc);
        acc = 0;
        accBits = 0;
      }
    }
  }
  return finish(h, acc, accBits >>> 3, length);
}

/**
 * MurmurHash3_x86_32 of raw bytes. The ring hashes strings with {@link murmur3}; this form exists
 * for keys that are already binary (a UUID's 16 bytes) and as the reference the string form is
 * tested against.
 */
export function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  const n = bytes.length;
  const blocks = n & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < blocks; i += 4) {
    h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  let k = 0;
  const rest = n & 3;
  if (rest === 3) k ^= bytes[i + 2]! << 16;
  if (rest >= 2) k ^= bytes[i + 1]! << 8;
  if (rest >= 1) k ^= bytes[i]!;
  return finish(h, k, rest, n);
}

const encoder = new TextEncoder();

/**
 * `out[i] = murmur3(prefix + String(i))` for i in [0, count), computed without building the
 * strings: the prefix is absorbed once and only the decimal digits of `i` are hashed per entry.
 *
 * Why the ring derives vnode positions this way (with `prefix = id + "#"`) rather than by seeding
 * murmur3 with the vnode index: the seed enters MurmurHash3 linearly (XOR), so for ids whose
 * hashing state differs only by a small XOR — e.g. "a" and "a\u0000", which differ only in length
 * — seeded vnodes land pairwise on the same positions and one node would win every tie. Hashing
 * distinct byte strings with one fixed seed has no such structure.
 */
export function murmur3Series(prefix: string, count: number): Uint32Array {
  const out = new Uint32Array(count);
  const bytes = encoder.encode(prefix);
  const blocks = bytes.length & ~3;
  let base = 0;
  for (let i = 0; i < blocks; i += 4) {
    base = mixBlock(base, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  let baseAcc = 0;
  let baseBits = 0;
  for (let i = blocks; i < bytes.length; i++) {
    baseAcc |= bytes[i]! << baseBits;
    baseBits += 8;
  }

  let divisor = 1; // largest power of ten <= v
  for (let v = 0; v < count; v++) {
    if (v >= divisor * 10) divisor *= 10;
    let h = base;
    let acc = baseAcc;
    let accBits = baseBits;
    let length = bytes.length;
    for (let d = divisor; d >= 1; d = (d / 10) | 0) {
      acc |= (0x30 + (Math.floor(v / d) % 10)) << accBits;
      accBits += 8;
      length++;
      if (accBits === 32) {
        h = mixBlock(h, acc);
        acc = 0;
        accBits = 0;
      }
    }
    out[v] = finish(h, acc, accBits >>> 3, length);
  }
  return out;
}
