import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  addressFromInterfaceId,
  eui64InterfaceId,
  INTERFACE_ID_LEN,
  type InterfaceIdHash,
  isReservedInterfaceId,
  linkLocalFromMac,
  parseStableSecret,
  sha256,
  STABLE_PRIVACY_MAX_ATTEMPTS,
  stablePrivacyIid,
  stablePrivacyInterfaceId,
} from "../../../stack/ipv6/interface_id.ts";
import { AddressParseError, formatIpv6, parseIpv6 } from "../../../stack/wire/ip_address.ts";

// ---------------------------------------------------------------- helpers

function bytes(text: string): Uint8Array {
  const hex = text.replace(/[^0-9a-f]/gi, "");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

const SECRET = parseStableSecret("2001:db8:5ec:2e7:1b7:9ff:a5c:1e4d");
const PREFIX = parseIpv6("2001:db8:1:2::");

// ---------------------------------------------------------------- EUI-64

Deno.test("eui64InterfaceId forms modified EUI-64 (RFC 4291 Appendix A)", async (t) => {
  const rows: [string, string, string][] = [
    [
      "a universal MAC (U/L bit 0) gets the bit set",
      "00:00:5e:10:00:01",
      "02:00:5e:ff:fe:10:00:01",
    ],
    [
      "a local MAC (U/L bit 1) gets the bit cleared",
      "02:00:5e:10:00:01",
      "00:00:5e:ff:fe:10:00:01",
    ],
    ["a QEMU-style local MAC", "52:54:00:12:34:56", "50:54:00:ff:fe:12:34:56"],
    ["the group bit is left alone", "01:00:5e:00:00:fb", "03:00:5e:ff:fe:00:00:fb"],
    ["all ones", "ff:ff:ff:ff:ff:ff", "fd:ff:ff:ff:fe:ff:ff:ff"],
    ["all zeros", "00:00:00:00:00:00", "02:00:00:ff:fe:00:00:00"],
    [
      "an 8-byte EUI-64 only has its U/L bit inverted",
      "00:11:22:33:44:55:66:77",
      "02:11:22:33:44:55:66:77",
    ],
  ];
  for (const [name, mac, want] of rows) {
    await t.step(`${name}: ${mac} → ${want}`, () => {
      const m = bytes(mac);
      const before = hex(m);
      const iid = eui64InterfaceId(m);
      assert.equal(iid.length, INTERFACE_ID_LEN);
      assert.equal(hex(iid), want);
      assert.equal(hex(m), before, "the MAC is not modified");
    });
  }
  for (const len of [0, 5, 7, 16]) {
    await t.step(`a ${len}-byte input is a RangeError`, () => {
      assert.throws(() => eui64InterfaceId(new Uint8Array(len)), RangeError);
    });
  }
});

Deno.test("linkLocalFromMac is fe80::/64 + EUI-64 (RFC 4862 §5.3)", async (t) => {
  const rows: [string, string][] = [
    ["00:00:5e:10:00:01", "fe80::200:5eff:fe10:1"],
    ["02:00:5e:10:00:01", "fe80::5eff:fe10:1"],
    ["52:54:00:12:34:56", "fe80::5054:ff:fe12:3456"],
    ["00:1b:21:3a:4f:5c", "fe80::21b:21ff:fe3a:4f5c"],
  ];
  for (const [mac, want] of rows) {
    await t.step(`${mac} → ${want}`, () => {
      const a = linkLocalFromMac(bytes(mac));
      assert.equal(a.length, 16);
      assert.equal(formatIpv6(a), want);
    });
  }
});

Deno.test("addressFromInterfaceId joins a /64 and an interface ID", async (t) => {
  await t.step("the prefix's bytes past 8 are ignored", () => {
    const a = addressFromInterfaceId(
      parseIpv6("2001:db8:1:2:ffff::1"),
      bytes("02:00:5e:ff:fe:10:00:01"),
    );
    assert.equal(formatIpv6(a), "2001:db8:1:2:200:5eff:fe10:1");
  });
  await t.step("wrong lengths are a RangeError", () => {
    assert.throws(() => addressFromInterfaceId(new Uint8Array(7), new Uint8Array(8)), RangeError);
    assert.throws(() => addressFromInterfaceId(new Uint8Array(16), new Uint8Array(7)), RangeError);
  });
});

// ---------------------------------------------------------------- reserved IIDs

Deno.test("isReservedInterfaceId knows RFC 5453's reserved identifiers", async (t) => {
  const rows: [string, boolean][] = [
    ["00:00:00:00:00:00:00:00", true], // Subnet-Router anycast (RFC 4291 §2.6.1)
    ["00:00:00:00:00:00:00:01", false],
    ["02:00:5e:ff:fe:00:00:00", true], // IANA Ethernet block, first
    ["02:00:5e:ff:fe:00:52:13", true], // Proxy Mobile IPv6
    ["02:00:5e:ff:fe:ff:ff:ff", true], // IANA Ethernet block, last
    ["02:00:5e:ff:fd:ff:ff:ff", false], // just below
    ["02:00:5e:ff:ff:00:00:00", false], // just above
    ["fd:ff:ff:ff:ff:ff:ff:80", true], // reserved subnet anycast (RFC 2526), first
    ["fd:ff:ff:ff:ff:ff:ff:ff", true], // last
    ["fd:ff:ff:ff:ff:ff:ff:7f", false], // just below
    ["fd:ff:ff:ff:ff:ff:fe:ff", false],
    ["ff:ff:ff:ff:ff:ff:ff:ff", false],
  ];
  for (const [iid, want] of rows) {
    await t.step(`${iid} → ${want ? "reserved" : "allowed"}`, () => {
      assert.equal(isReservedInterfaceId(bytes(iid)), want);
    });
  }
  await t.step("reads at an offset (the low half of an address)", () => {
    assert.equal(isReservedInterfaceId(parseIpv6("2001:db8::"), 8), true);
    assert.equal(isReservedInterfaceId(parseIpv6("2001:db8::fdff:ffff:ffff:ff80"), 8), true);
    assert.equal(isReservedInterfaceId(parseIpv6("2001:db8::1"), 8), false);
  });
});

// ---------------------------------------------------------------- RFC 7217

Deno.test("stablePrivacyInterfaceId has RFC 7217's properties", async (t) => {
  const base = () => stablePrivacyInterfaceId(PREFIX, "eth0", null, 0, SECRET);

  await t.step("8 bytes, not reserved", () => {
    const iid = base();
    assert.equal(iid.length, 8);
    assert.equal(isReservedInterfaceId(iid), false);
  });
  await t.step("same inputs → same identifier (stable)", () => {
    assert.deepEqual(base(), base());
  });
  await t.step("only the first 64 bits of the prefix count", () => {
    const other = parseIpv6("2001:db8:1:2:dead:beef::1");
    assert.deepEqual(stablePrivacyInterfaceId(other, "eth0", null, 0, SECRET), base());
  });

  const variants: [string, () => Uint8Array][] = [
    [
      "another prefix",
      () => stablePrivacyInterfaceId(parseIpv6("2001:db8:1:3::"), "eth0", null, 0, SECRET),
    ],
    ["another interface name", () => stablePrivacyInterfaceId(PREFIX, "eth1", null, 0, SECRET)],
    [
      "an interface given as a MAC",
      () => stablePrivacyInterfaceId(PREFIX, bytes("52:54:00:12:34:56"), null, 0, SECRET),
    ],
    [
      "a Network_ID",
      () => stablePrivacyInterfaceId(PREFIX, "eth0", new TextEncoder().encode("lab"), 0, SECRET),
    ],
    ["DAD_Counter 1", () => stablePrivacyInterfaceId(PREFIX, "eth0", null, 1, SECRET)],
    [
      "another secret",
      () => stablePrivacyInterfaceId(PREFIX, "eth0", null, 0, parseStableSecret("2001:db8::1")),
    ],
  ];
  for (const [name, make] of variants) {
    await t.step(`${name} → a different identifier`, () => {
      assert.notDeepEqual(make(), base());
    });
  }

  await t.step('field boundaries are unambiguous ("eth0"+"1" ≠ "eth"+"01")', () => {
    const enc = new TextEncoder();
    assert.notDeepEqual(
      stablePrivacyInterfaceId(PREFIX, "eth0", enc.encode("1"), 0, SECRET),
      stablePrivacyInterfaceId(PREFIX, "eth", enc.encode("01"), 0, SECRET),
    );
  });
  await t.step("a name and its UTF-8 bytes are the same Net_Iface", () => {
    assert.deepEqual(
      stablePrivacyInterfaceId(PREFIX, new TextEncoder().encode("eth0"), null, 0, SECRET),
      base(),
    );
  });
  await t.step("a null Network_ID is the empty one", () => {
    assert.deepEqual(
      stablePrivacyInterfaceId(PREFIX, "eth0", new Uint8Array(0), 0, SECRET),
      base(),
    );
  });
  await t.step("DAD_Counter 0..63 give 64 distinct identifiers", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 64; i++) {
      seen.add(hex(stablePrivacyInterfaceId(PREFIX, "eth0", null, i, SECRET)));
    }
    assert.equal(seen.size, 64);
  });
  await t.step("the identifier is the low 64 bits of SHA-256 over the documented layout", () => {
    // Prefix(8) | len16 | "eth0" | len16 | (empty) | counter32 | secret
    const data = new Uint8Array([
      ...PREFIX.subarray(0, 8),
      0,
      4,
      ...new TextEncoder().encode("eth0"),
      0,
      0,
      0,
      0,
      0,
      7,
      ...SECRET,
    ]);
    const digest = new Uint8Array(createHash("sha256").update(data).digest());
    assert.deepEqual(
      stablePrivacyInterfaceId(PREFIX, "eth0", null, 7, SECRET),
      digest.subarray(24, 32),
    );
    assert.deepEqual(sha256(data), digest);
  });
  await t.step("stablePrivacyIid reports the counter it used", () => {
    const r = stablePrivacyIid(PREFIX, "eth0", null, 3, SECRET);
    assert.equal(r.dadCounter, 3);
    assert.deepEqual(r.iid, stablePrivacyInterfaceId(PREFIX, "eth0", null, 3, SECRET));
  });
});

/**
 * A hash seam: returns each digest of `script` in turn (the identifier is
 * its low 8 bytes) and records the DAD_Counter it was asked about.
 */
function scriptedHash(script: string[]): { hash: InterfaceIdHash; counters: number[] } {
  const counters: number[] = [];
  let i = 0;
  const hash: InterfaceIdHash = (data) => {
    // With Net_Iface "eth0" and no Network_ID the counter sits at byte 16.
    counters.push(new DataView(data.buffer, data.byteOffset).getUint32(16));
    const iid = bytes(script[Math.min(i++, script.length - 1)]!);
    const digest = new Uint8Array(32).fill(0xaa);
    digest.set(iid, 24);
    return digest;
  };
  return { hash, counters };
}

Deno.test("a reserved identifier is skipped by bumping DAD_Counter (RFC 7217 §5)", async (t) => {
  const good = "12:34:56:78:9a:bc:de:f0";
  const rows: [string, string[]][] = [
    ["the Subnet-Router anycast (all zeros)", ["00:00:00:00:00:00:00:00", good]],
    ["the IANA Ethernet block", ["02:00:5e:ff:fe:00:52:13", good]],
    ["the reserved subnet anycast range", ["fd:ff:ff:ff:ff:ff:ff:ff", good]],
    [
      "three reserved in a row",
      ["00:00:00:00:00:00:00:00", "fd:ff:ff:ff:ff:ff:ff:80", "02:00:5e:ff:fe:00:00:00", good],
    ],
  ];
  for (const [name, script] of rows) {
    await t.step(name, () => {
      const { hash, counters } = scriptedHash(script);
      const r = stablePrivacyIid(PREFIX, "eth0", null, 5, SECRET, hash);
      assert.equal(hex(r.iid), good);
      assert.equal(r.dadCounter, 5 + script.length - 1);
      assert.deepEqual(counters, script.map((_, i) => 5 + i));
      assert.equal(hex(stablePrivacyInterfaceId(PREFIX, "eth0", null, 5, SECRET, hash)), good);
    });
  }
  await t.step("a hash that only gives reserved identifiers is a RangeError, not a hang", () => {
    const { hash, counters } = scriptedHash(["00:00:00:00:00:00:00:00"]);
    assert.throws(() => stablePrivacyIid(PREFIX, "eth0", null, 0, SECRET, hash), RangeError);
    assert.equal(counters.length, STABLE_PRIVACY_MAX_ATTEMPTS);
  });
  await t.step("with SHA-256, 4096 counters never give a reserved identifier", () => {
    for (let i = 0; i < 4096; i++) {
      const r = stablePrivacyIid(PREFIX, "eth0", null, i, SECRET);
      assert.equal(isReservedInterfaceId(r.iid), false);
    }
  });
});

Deno.test("stablePrivacyIid rejects bad arguments", async (t) => {
  const rows: [string, () => unknown][] = [
    ["a prefix under 8 bytes", () => stablePrivacyIid(new Uint8Array(7), "eth0", null, 0, SECRET)],
    [
      "a secret under 128 bits",
      () => stablePrivacyIid(PREFIX, "eth0", null, 0, new Uint8Array(15)),
    ],
    ["a negative DAD_Counter", () => stablePrivacyIid(PREFIX, "eth0", null, -1, SECRET)],
    ["a fractional DAD_Counter", () => stablePrivacyIid(PREFIX, "eth0", null, 0.5, SECRET)],
    ["a DAD_Counter past 2^32-1", () => stablePrivacyIid(PREFIX, "eth0", null, 2 ** 32, SECRET)],
    [
      "a digest under 8 bytes",
      () => stablePrivacyIid(PREFIX, "eth0", null, 0, SECRET, () => new Uint8Array(7)),
    ],
  ];
  for (const [name, call] of rows) {
    await t.step(`${name} is a RangeError`, () => assert.throws(call, RangeError));
  }
});

// ---------------------------------------------------------------- stable_secret

Deno.test("parseStableSecret takes Linux's stable_secret form (an IPv6 address)", async (t) => {
  await t.step("full form", () => {
    assert.equal(
      hex(parseStableSecret("2001:db8:5ec:2e7:1b7:9ff:a5c:1e4d")),
      hex(bytes("20010db805ec02e701b709ff0a5c1e4d")),
    );
  });
  await t.step("compressed form, with the newline /proc prints", () => {
    assert.equal(hex(parseStableSecret(" fd00::1\n")), hex(parseIpv6("fd00::1")));
  });
  for (const bad of ["", "not-a-secret", "192.0.2.1", "2001:db8::1/64", "2001:db8::g"]) {
    await t.step(`${JSON.stringify(bad)} is an AddressParseError`, () => {
      assert.throws(() => parseStableSecret(bad), AddressParseError);
    });
  }
});
