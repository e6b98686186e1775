import assert from "node:assert/strict";
import {
  BROADCAST_MAC,
  formatMac,
  ipv4MulticastMac,
  ipv6MulticastMac,
  macEqual,
  macFromName,
  macIsBroadcast,
  macIsMulticast,
  parseMac,
} from "../../../stack/wire/mac_address.ts";
import { AddressParseError, parseIpv4, parseIpv6 } from "../../../stack/wire/ip_address.ts";

Deno.test("parseMac and formatMac", async (t) => {
  const good: [string, string][] = [
    ["02:00:5e:10:00:01", "02:00:5e:10:00:01"],
    ["02:00:5E:10:00:01", "02:00:5e:10:00:01"],
    ["02-00-5e-10-00-01", "02:00:5e:10:00:01"],
    ["ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"],
  ];
  for (const [text, want] of good) {
    await t.step(`parseMac() reads "${text}"`, () => {
      assert.equal(formatMac(parseMac(text)), want);
    });
  }
  for (
    const text of [
      "02:00:5e:10:00",
      "02:00:5e:10:00:01:02",
      "2:0:5e:10:0:1",
      "02:00:5e:10:00:zz",
      "",
    ]
  ) {
    await t.step(`parseMac() rejects "${text}"`, () => {
      assert.throws(() => parseMac(text), {
        name: "AddressParseError",
        message:
          `Cannot parse MAC address "${text}": expected six hex pairs like 02:00:5e:10:00:01`,
      });
      assert.throws(() => parseMac(text), AddressParseError);
    });
  }
});

Deno.test("MAC classification and derived addresses", async (t) => {
  await t.step("macIsMulticast() and macIsBroadcast()", () => {
    assert.equal(macIsBroadcast(BROADCAST_MAC), true);
    assert.equal(macIsMulticast(BROADCAST_MAC), true);
    assert.equal(macIsMulticast(parseMac("01:00:5e:00:00:01")), true);
    assert.equal(macIsMulticast(parseMac("02:00:00:00:00:01")), false);
    assert.equal(macIsBroadcast(parseMac("ff:ff:ff:ff:ff:fe")), false);
  });
  await t.step("macEqual() compares at offsets", () => {
    const a = new Uint8Array([9, 2, 0, 0, 0, 0, 1]);
    assert.equal(macEqual(a, parseMac("02:00:00:00:00:01"), 1), true);
    assert.equal(macEqual(a, parseMac("02:00:00:00:00:02"), 1), false);
  });
  await t.step("ipv4MulticastMac() maps the low 23 bits (RFC 1112 §6.4)", () => {
    assert.equal(formatMac(ipv4MulticastMac(parseIpv4("224.0.0.251"))), "01:00:5e:00:00:fb");
    assert.equal(formatMac(ipv4MulticastMac(parseIpv4("239.255.255.250"))), "01:00:5e:7f:ff:fa");
  });
  await t.step("ipv6MulticastMac() maps the low 32 bits (RFC 2464 §7)", () => {
    assert.equal(formatMac(ipv6MulticastMac(parseIpv6("ff02::1:ff00:1"))), "33:33:ff:00:00:01");
    assert.equal(formatMac(ipv6MulticastMac(parseIpv6("ff02::1"))), "33:33:00:00:00:01");
  });
  await t.step("macFromName() is stable, unicast and locally administered", () => {
    const a = macFromName("eth0");
    assert.deepStrictEqual(a, macFromName("eth0"));
    assert.notDeepStrictEqual(a, macFromName("eth1"));
    assert.equal(a[0], 0x02);
    assert.equal(a.length, 6);
  });
});
