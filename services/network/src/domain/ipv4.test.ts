import { describe, expect, it } from "vitest";
import { intToIp, ipToInt, isHostAddress, parseCidr } from "./ipv4";

describe("ipv4", () => {
  it("converts addresses to integers and back", () => {
    for (const ip of ["0.0.0.0", "10.0.0.1", "192.168.255.254", "255.255.255.255"]) expect(intToIp(ipToInt(ip))).toBe(ip);
    expect(ipToInt("10.0.0.1")).toBe(167772161);
    expect(ipToInt("255.255.255.255")).toBe(4294967295);
  });

  it("refuses what is not an address", () => {
    expect(() => ipToInt("10.0.0")).toThrow(/not an IPv4/);
    expect(() => ipToInt("10.0.0.256")).toThrow(/not an IPv4/);
    expect(() => intToIp(2 ** 32)).toThrow(/not an IPv4/);
  });

  it("knows a block's assignable addresses", () => {
    const c = parseCidr("192.168.1.0/24");
    expect([c.prefixLength, intToIp(c.first), intToIp(c.last)]).toEqual([24, "192.168.1.0", "192.168.1.255"]);
    expect(isHostAddress(c, ipToInt("192.168.1.0"))).toBe(false);
    expect(isHostAddress(c, ipToInt("192.168.1.1"))).toBe(true);
    expect(isHostAddress(c, ipToInt("192.168.1.254"))).toBe(true);
    expect(isHostAddress(c, ipToInt("192.168.1.255"))).toBe(false);
    expect(isHostAddress(c, ipToInt("192.168.2.1"))).toBe(false);
  });
});
