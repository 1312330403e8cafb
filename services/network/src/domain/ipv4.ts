/**
 * IPv4 addresses as integers: ranges, CIDR membership and allocation are arithmetic on them, and
 * Postgres compares and scans them as `bigint`. Inputs are already syntactically valid (the
 * proto rules check `ipv4` / `ipv4_prefix` before a handler runs).
 */

/** `10.0.0.1` → 167772161. */
export function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return ((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]!;
}

/** 167772161 → `10.0.0.1`. */
export function intToIp(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new TypeError(`not an IPv4 address as an integer: ${n}`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** A parsed CIDR: its network address, prefix length and the first/last address of the block. */
export interface Cidr {
  readonly networkInt: number;
  readonly prefixLength: number;
  /** The network address (not assignable). */
  readonly first: number;
  /** The broadcast address (not assignable). */
  readonly last: number;
}

/** `10.0.0.0/16` → its block. The proto rule has checked the host bits are zero. */
export function parseCidr(cidr: string): Cidr {
  const [addr, len] = cidr.split("/");
  const prefixLength = Number(len);
  const networkInt = ipToInt(addr!);
  const size = 2 ** (32 - prefixLength);
  return { networkInt, prefixLength, first: networkInt, last: networkInt + size - 1 };
}

/** True when `ip` (an integer) is an assignable address of the block: not its network or broadcast address. */
export function isHostAddress(c: Cidr, ip: number): boolean {
  return ip > c.first && ip < c.last;
}
