import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { murmur3, murmur3Bytes, murmur3Series } from "./hash";
import { seededUuids } from "./seeded-uuids";

const SEED = 0x9747b28c;

describe("murmur3", () => {
  // Published MurmurHash3_x86_32 vectors (also checked against the C reference implementation):
  // other languages must be able to reproduce ring positions, so the hash is pinned to them.
  it.each([
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["", 0xffffffff, 0x81f16f39],
    ["\0\0\0\0", 0, 0x2362f9de],
    ["aaaa", SEED, 0x5a97808a],
    ["Hello, world!", SEED, 0x24884cba],
    ["The quick brown fox jumps over the lazy dog", SEED, 0x2fa826cd],
  ])("hash(%j, seed %i) matches the reference", (text, seed, expected) => {
    expect(murmur3(text, seed)).toBe(expected);
    expect(murmur3Bytes(Buffer.from(text, "utf8"), seed)).toBe(expected);
  });

  // Values from the C reference run on the UTF-8 bytes: 2-, 3- and 4-byte sequences, and lone
  // surrogates (encoded as U+FFFD like every UTF-8 encoder does).
  it.each([
    ["é€😀x", 0, 0x8c0b8536],
    ["日本語テキスト", 0, 0xe6c8b62d],
    ["\ud800", 0, 0xb69ca6c1],
    ["a\udc00bc", 0, 0x5e4a90f3],
  ])("hashes non-ASCII %j as its UTF-8 bytes", (text, seed, expected) => {
    expect(murmur3(text, seed)).toBe(expected);
  });

  it("equals the byte hash of the string's UTF-8 encoding, for any string and seed", () => {
    // Code points of every UTF-8 length, plus raw UTF-16 units so lone surrogates show up too.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.string({ unit: codeUnit, maxLength: 40 }));
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 0xffffffff }), (text, seed) => {
        expect(murmur3(text, seed)).toBe(murmur3Bytes(Buffer.from(text, "utf8"), seed));
      }),
      { numRuns: 2000 },
    );
  });

  it("murmur3Series(prefix, n)[i] is murmur3(prefix + i)", () => {
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const prefix = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: codeUnit, maxLength: 12 }));
    fc.assert(
      fc.property(prefix, fc.integer({ min: 0, max: 1200 }), (p, count) => {
        const series = murmur3Series(p, count);
        expect(series.length).toBe(count);
        for (let i = 0; i < count; i++) {
          if (series[i] !== murmur3(p + String(i))) expect.fail(`entry ${i} of ${JSON.stringify(p)}`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("returns an unsigned 32-bit integer", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const h = murmur3(text);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      }),
    );
  });

  // A weak hash (String.hashCode, djb2, PJW) changes only a few low bits when one character of a
  // UUID changes; a ring built on it clusters similar ids onto one replica.
  it("avalanches: changing one character of a UUID flips about half of the 32 bits", () => {
    const keys = seededUuids(2000, 1);
    let flipped = 0;
    let samples = 0;
    for (const key of keys) {
      const base = murmur3(key);
      for (const pos of [0, 7, 14, 20, 35]) {
        const c = key.charCodeAt(pos);
        const changed = key.slice(0, pos) + String.fromCharCode(c === 0x30 ? 0x31 : 0x30) + key.slice(pos + 1);
        let x = (base ^ murmur3(changed)) >>> 0;
        while (x !== 0) {
          flipped += x & 1;
          x >>>= 1;
        }
        samples++;
      }
    }
    const mean = flipped / samples;
    expect(mean).toBeGreaterThan(15.5);
    expect(mean).toBeLessThan(16.5);
  });

  it("spreads sequential ids evenly over the 32-bit space", () => {
    const buckets = new Array<number>(64).fill(0);
    const count = 64_000;
    for (let i = 0; i < count; i++) buckets[murmur3(`vm-${i}`) >>> 26]!++;
    const expected = count / 64;
    const chiSquare = buckets.reduce((sum, b) => sum + (b - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: the 99.9th percentile of chi-square is ~103.
    expect(chiSquare).toBeLessThan(103);
  });
});
