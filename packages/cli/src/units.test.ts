import { describe, expect, it } from "vitest";
import { formatSize, MAX_UINT64, parseSize, SizeError } from "./units";

const KiB = 1024n;
const MiB = KiB ** 2n;
const GiB = KiB ** 3n;
const TiB = KiB ** 4n;

describe("parseSize", () => {
  it.each([
    ["4096", 4096n],
    ["4096B", 4096n],
    ["1KiB", KiB],
    ["512MiB", 512n * MiB],
    ["4GiB", 4n * GiB],
    ["2TiB", 2n * TiB],
    ["4G", 4n * GiB],
    ["8k", 8n * KiB],
    ["16M", 16n * MiB],
    ["1T", TiB],
    ["64gib", 64n * GiB],
    ["4 GiB", 4n * GiB],
    [" 4GiB ", 4n * GiB],
    ["1.5GiB", 3n * 512n * MiB],
    ["0.5K", 512n],
    ["0", 0n],
  ])("reads %j as %d bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ["4Gx", /unknown unit "Gx"/],
    ["4GB", /ambiguous: write 4GiB/],
    ["1.5mb", /ambiguous: write 1.5MiB/],
    ["", /not a size/],
    ["GiB", /not a size/],
    ["-1GiB", /not a size/],
    ["4,5G", /not a size/],
    ["1e9", /not a size/],
    ["1.3B", /not a whole number of bytes/],
    ["16777216TiB", /too large/],
  ])("refuses %j", (text, why) => {
    expect(() => parseSize(text)).toThrow(SizeError);
    expect(() => parseSize(text)).toThrow(why);
  });

  it("accepts the largest uint64 and nothing above", () => {
    expect(parseSize(String(MAX_UINT64))).toBe(MAX_UINT64);
    expect(() => parseSize(String(MAX_UINT64 + 1n))).toThrow(/too large/);
  });
});

describe("formatSize", () => {
  it.each([
    [0n, "0 B"],
    [1023n, "1023 B"],
    [KiB, "1 KiB"],
    [512n * MiB, "512 MiB"],
    [4n * GiB, "4 GiB"],
    [3n * 512n * MiB, "1.5 GiB"],
    [GiB + GiB / 4n, "1.25 GiB"],
    [GiB + GiB / 3n, "1.33 GiB"],
    [2n * GiB - 1n, "2 GiB"],
    [64n * TiB, "64 TiB"],
    [4096, "4 KiB"],
  ])("shows %d bytes as %j", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  it("round-trips whole units through parseSize", () => {
    for (const text of ["1 KiB", "300 MiB", "7 GiB", "3 TiB"]) expect(formatSize(parseSize(text))).toBe(text);
  });
});
