import assert from "node:assert/strict";
import {
  AddressParseError,
  cidrsOverlap,
  formatCidr,
  formatIpAddress,
  formatIpv4,
  formatIpv6,
  ipv4Broadcast,
  ipv4CidrContains,
  ipv4IsLimitedBroadcast,
  ipv4IsLinkLocal,
  ipv4IsLoopback,
  ipv4IsMulticast,
  ipv4IsThisNetwork,
  ipv4Mask,
  ipv6CidrContains,
  ipv6CommonPrefixLen,
  ipv6IsLinkLocalUnicast,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUniqueLocal,
  ipv6IsUnspecified,
  ipv6IsV4Mapped,
  ipv6Scope,
  ipv6SolicitedNode,
  parseCidr,
  parseIpAddress,
  parseIpv4,
  parseIpv6,
  Scope,
} from "../../../stack/wire/ip_address.ts";

Deno.test("parseIpv4 and formatIpv4", async (t) => {
  const good: [string, number][] = [
    ["0.0.0.0", 0],
    ["192.0.2.1", 0xc0000201],
    ["255.255.255.255", 0xffffffff],
    ["198.51.100.0", 0xc6336400],
  ];
  for (const [text, n] of good) {
    await t.step(`parseIpv4() reads "${text}"`, () => {
      assert.equal(parseIpv4(text), n);
      assert.equal(formatIpv4(n), text);
    });
  }
  const bad: [string, string][] = [
    ["192.0.2", "expected 4 dot-separated octets, found 3"],
    ["192.0.2.1.5", "expected 4 dot-separated octets, found 5"],
    ["", "expected 4 dot-separated octets, found 1"],
    ["192.0.2.256", "octet 4 is out of range"],
    ["192.0.02.1", "octet 3 has a leading zero"],
    ["192.0.2.x", "octet 4 is not a number"],
    ["192..2.1", "octet 2 is not a number"],
    ["+1.0.2.1", "octet 1 is not a number"],
  ];
  for (const [text, why] of bad) {
    await t.step(`parseIpv4() rejects "${text}": ${why}`, () => {
      assert.throws(() => parseIpv4(text), {
        name: "AddressParseError",
        message: `Cannot parse address "${text}": ${why}`,
      });
    });
  }
});

Deno.test("formatIpv6 follows RFC 5952", async (t) => {
  const rows: [string, string, string][] = [
    ["§4.1 leading zeros are dropped", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["§4.1 leading zeros inside a group", "2001:db8:00aa:0bbb:0:0:0:c", "2001:db8:aa:bbb::c"],
    ["§4.2.1 '::' shortens as much as possible", "2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["§4.2.2 a lone 16-bit 0 is not shortened", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["§4.2.3 the longest run is shortened", "2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["§4.2.3 the first run is shortened on a tie", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["§4.3 hex digits are lower case", "2001:DB8::ABCD:EF", "2001:db8::abcd:ef"],
    ["§5 IPv4-mapped addresses keep a dotted tail", "::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["§5 IPv4-mapped written in hex", "0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"],
    ["the unspecified address", "0:0:0:0:0:0:0:0", "::"],
    ["loopback", "0:0:0:0:0:0:0:1", "::1"],
    ["a trailing run", "fd00:1:0:0:0:0:0:0", "fd00:1::"],
    ["no zero groups", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"],
  ];
  for (const [name, text, want] of rows) {
    await t.step(`formatIpv6() ${name}: ${text} → ${want}`, () => {
      assert.equal(formatIpv6(parseIpv6(text)), want);
      assert.equal(formatIpv6(parseIpv6(want)), want);
    });
  }
  await t.step("formatIpv6() reads at an offset", () => {
    const b = new Uint8Array(20);
    b.set(parseIpv6("2001:db8::1"), 4);
    assert.equal(formatIpv6(b, 4), "2001:db8::1");
  });
});

Deno.test("parseIpv6 rejects malformed text with a reason", async (t) => {
  const bad: [string, string][] = [
    ["1::2::3", '"::" appears more than once'],
    ["1:2:3:4:5:6:7", "expected 8 groups, found 7"],
    ["1:2:3:4:5:6:7:8:9", "expected 8 groups, found 9"],
    ["1:2:3:4:5:6:7::8", 'too many groups for "::"'],
    ["12345::", 'group "12345" is not 1 to 4 hex digits'],
    ["2001:db8::g", 'group "g" is not 1 to 4 hex digits'],
    ["1:", "empty group"],
    ["fe80::1%eth0", "a zone index is not allowed here"],
    ["::1.2.3.256", 'embedded IPv4 part "1.2.3.256" is invalid'],
  ];
  for (const [text, why] of bad) {
    await t.step(`parseIpv6() rejects "${text}": ${why}`, () => {
      assert.throws(() => parseIpv6(text), {
        name: "AddressParseError",
        message: `Cannot parse address "${text}": ${why}`,
      });
    });
  }
  await t.step("parseIpAddress() picks the family", () => {
    assert.equal(parseIpAddress("192.0.2.1").family, 4);
    assert.equal(parseIpAddress("2001:db8::1").family, 6);
    assert.equal(formatIpAddress(parseIpAddress("2001:DB8::1")), "2001:db8::1");
    assert.throws(() => parseIpAddress("nonsense"), AddressParseError);
  });
});

Deno.test("CIDR parse, contains and overlap", async (t) => {
  await t.step("parseCidr() keeps host bits with keepHost", () => {
    assert.equal(formatCidr(parseCidr("192.0.2.1/24", true)), "192.0.2.1/24");
    assert.equal(formatCidr(parseCidr("2001:db8::1/64", true)), "2001:db8::1/64");
  });
  await t.step("parseCidr() rejects host bits without keepHost and suggests the prefix", () => {
    assert.throws(() => parseCidr("192.0.2.1/24"), {
      message: 'Cannot parse prefix "192.0.2.1/24": host bits are set (did you mean 192.0.2.0/24?)',
    });
    assert.throws(() => parseCidr("2001:db8::1/64"), {
      message:
        'Cannot parse prefix "2001:db8::1/64": host bits are set (did you mean 2001:db8::/64?)',
    });
  });
  await t.step("parseCidr() rejects a missing or out-of-range length", () => {
    assert.throws(() => parseCidr("192.0.2.0"), {
      message: 'Cannot parse prefix "192.0.2.0": missing "/LENGTH"',
    });
    assert.throws(() => parseCidr("192.0.2.0/33"), {
      message: 'Cannot parse prefix "192.0.2.0/33": prefix length must be 0 to 32, found "33"',
    });
    assert.throws(() => parseCidr("2001:db8::/129"), {
      message: 'Cannot parse prefix "2001:db8::/129": prefix length must be 0 to 128, found "129"',
    });
    assert.throws(() => parseCidr("192.0.2.0/x"), AddressParseError);
  });
  await t.step("ipv4Mask() and ipv4Broadcast()", () => {
    assert.equal(ipv4Mask(0), 0);
    assert.equal(ipv4Mask(24), 0xffffff00);
    assert.equal(ipv4Mask(32), 0xffffffff);
    assert.equal(
      formatIpv4(ipv4Broadcast({ address: parseIpv4("198.51.100.0"), prefixLen: 25 })),
      "198.51.100.127",
    );
  });
  await t.step("ipv4CidrContains() and ipv6CidrContains()", () => {
    const c4 = { address: parseIpv4("203.0.113.0"), prefixLen: 24 };
    assert.equal(ipv4CidrContains(c4, parseIpv4("203.0.113.255")), true);
    assert.equal(ipv4CidrContains(c4, parseIpv4("203.0.114.0")), false);
    assert.equal(ipv4CidrContains({ address: 0, prefixLen: 0 }, 0xffffffff), true);
    const c6 = { address: parseIpv6("2001:db8:1::"), prefixLen: 48 };
    assert.equal(ipv6CidrContains(c6, parseIpv6("2001:db8:1:ffff::1")), true);
    assert.equal(ipv6CidrContains(c6, parseIpv6("2001:db8:2::1")), false);
    assert.equal(ipv6CommonPrefixLen(parseIpv6("2001:db8::"), parseIpv6("2001:db9::")), 31);
  });
  await t.step("cidrsOverlap() for nested, disjoint and mixed families", () => {
    assert.equal(cidrsOverlap(parseCidr("192.0.2.0/24"), parseCidr("192.0.2.128/25")), true);
    assert.equal(cidrsOverlap(parseCidr("192.0.2.128/25"), parseCidr("192.0.2.0/24")), true);
    assert.equal(cidrsOverlap(parseCidr("192.0.2.0/25"), parseCidr("192.0.2.128/25")), false);
    assert.equal(cidrsOverlap(parseCidr("2001:db8::/32"), parseCidr("2001:db8:5::/48")), true);
    assert.equal(cidrsOverlap(parseCidr("2001:db8::/48"), parseCidr("2001:db8:1::/48")), false);
    assert.equal(cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")), false);
  });
});

Deno.test("address classification and scope", async (t) => {
  await t.step("IPv4 classes", () => {
    assert.equal(ipv4IsLoopback(parseIpv4("127.0.0.1")), true);
    assert.equal(ipv4IsMulticast(parseIpv4("224.0.0.1")), true);
    assert.equal(ipv4IsMulticast(parseIpv4("240.0.0.1")), false);
    assert.equal(ipv4IsLimitedBroadcast(0xffffffff), true);
    assert.equal(ipv4IsThisNetwork(parseIpv4("0.1.2.3")), true);
    assert.equal(ipv4IsLinkLocal(parseIpv4("169.254.1.1")), true);
    assert.equal(ipv4IsLinkLocal(parseIpv4("192.0.2.1")), false);
  });
  await t.step("IPv6 classes", () => {
    assert.equal(ipv6IsUnspecified(parseIpv6("::")), true);
    assert.equal(ipv6IsLoopback(parseIpv6("::1")), true);
    assert.equal(ipv6IsMulticast(parseIpv6("ff02::1")), true);
    assert.equal(ipv6IsLinkLocalUnicast(parseIpv6("fe80::1")), true);
    assert.equal(ipv6IsLinkLocalUnicast(parseIpv6("fec0::1")), false);
    assert.equal(ipv6IsUniqueLocal(parseIpv6("fd00::1")), true);
    assert.equal(ipv6IsUniqueLocal(parseIpv6("fe00::1")), false);
    assert.equal(ipv6IsV4Mapped(parseIpv6("::ffff:192.0.2.1")), true);
    assert.equal(ipv6IsV4Mapped(parseIpv6("::192.0.2.1")), false);
  });
  const scopes: [string, number][] = [
    ["ff01::1", Scope.INTERFACE_LOCAL],
    ["ff02::1", Scope.LINK_LOCAL],
    ["ff05::2", Scope.SITE_LOCAL],
    ["ff0e::1", Scope.GLOBAL],
    ["fe80::1", Scope.LINK_LOCAL],
    ["::1", Scope.LINK_LOCAL],
    ["fec0::1", Scope.SITE_LOCAL],
    ["fd00::1", Scope.GLOBAL],
    ["2001:db8::1", Scope.GLOBAL],
  ];
  for (const [text, scope] of scopes) {
    await t.step(`ipv6Scope() of ${text} is ${scope} (RFC 6724 §3.1)`, () => {
      assert.equal(ipv6Scope(parseIpv6(text)), scope);
    });
  }
  await t.step("ipv6SolicitedNode() keeps the low 24 bits (RFC 4291 §2.7.1)", () => {
    assert.equal(formatIpv6(ipv6SolicitedNode(parseIpv6("2001:db8::1:2:3"))), "ff02::1:ff02:3");
    assert.equal(formatIpv6(ipv6SolicitedNode(parseIpv6("fe80::abcd:ef12"))), "ff02::1:ffcd:ef12");
  });
});
