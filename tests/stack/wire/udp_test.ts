import assert from "node:assert/strict";
import { UdpPacket, UdpRepr } from "../../../stack/wire/udp.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const A = parseIpv4("192.0.2.1");
const B = parseIpv4("198.51.100.2");
const A6 = parseIpv6("2001:db8::1");
const B6 = parseIpv6("2001:db8::2");

// UDP parts of testdata/gen_vectors.py's "udp" and "udp odd" cases (scapy 2.5.0),
// sent from 192.0.2.1 to 198.51.100.2.
const cases: { name: string; bytes: Uint8Array; repr: UdpRepr }[] = [
  {
    name: "UdpRepr parses and emits a DNS-port datagram with its IPv4 checksum",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/b'hello'
    bytes: hex(
      "9c40", // source port 40000
      "0035", // destination port 53
      "000d", // length 13
      "3355", // checksum
      "68656c6c6f", // payload b'hello'
    ),
    repr: { srcPort: 40000, dstPort: 53, payload: hex("68656c6c6f") },
  },
  {
    name: "UdpRepr parses and emits an odd-length payload (zero-padded in the checksum)",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x1235)/UDP(sport=5353, dport=5353)/b'abc'
    bytes: hex(
      "14e9", // source port 5353
      "14e9", // destination port 5353
      "000b", // length 11
      "256c", // checksum
      "616263", // payload b'abc'
    ),
    repr: { srcPort: 5353, dstPort: 5353, payload: hex("616263") },
  },
];

Deno.test("UdpRepr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const udp = new UdpPacket().reset(bufferWith(c.bytes), AT);
      assert.equal(udp.check(), true);
      assert.equal(udp.verifyChecksumV4(A, B), true);
      assert.equal(udp.verifyChecksumV4(A, B + 1), false);
      assert.deepStrictEqual(UdpRepr.parse(udp), c.repr);
      const len = UdpRepr.bufferLen(c.repr);
      const out = blankBuffer(len);
      UdpRepr.emit(c.repr, out, AT, { src: A, dst: B });
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + len], 0xa5);
    });
  }
});

Deno.test("UdpPacket checksums", async (t) => {
  await t.step("UdpPacket.verifyChecksumV4() accepts checksum 0 (none, RFC 768)", () => {
    const udp = new UdpPacket().reset(bufferWith(hex("14e914e9000b0000616263")), AT);
    assert.equal(udp.verifyChecksumV4(A, B), true);
    assert.equal(udp.verifyChecksumV6(A6, B6), false);
  });
  await t.step("UdpPacket.verifyChecksumV6() accepts a scapy IPv6 datagram", () => {
    // IPv6(src='2001:db8::1', dst='2001:db8::2')/UDP(sport=5353, dport=5353)/b'abc'
    const bytes = hex(
      "14e9", // source port 5353
      "14e9", // destination port 5353
      "000b", // length 11
      "b62e", // checksum
      "616263", // payload b'abc'
    );
    const udp = new UdpPacket().reset(bufferWith(bytes), AT);
    assert.equal(udp.verifyChecksumV6(A6, B6), true);
    udp.setChecksum(0x1234);
    udp.fillChecksumV6(A6, B6);
    assert.equal(udp.checksum(), 0xb62e);
  });
  await t.step("UdpPacket.fillChecksumV4() sends a computed 0 as 0xffff", () => {
    // Choose a payload word that makes the sum 0xffff so the checksum computes to 0.
    const p = blankBuffer(10);
    UdpRepr.emit({ srcPort: 1, dstPort: 2, payload: hex("0000") }, p, AT);
    const udp = new UdpPacket().reset(p, AT);
    udp.fillChecksumV4(A, B);
    const c = udp.checksum();
    // Put the complement into the payload word: the new sum is 0xffff.
    p.data[AT + 8] = c >> 8;
    p.data[AT + 9] = c & 0xff;
    udp.fillChecksumV4(A, B);
    assert.equal(udp.checksum(), 0xffff);
    assert.equal(udp.verifyChecksumV4(A, B), true);
  });
});

const good = cases[0]!.bytes;
const malformed: { name: string; bytes: Uint8Array }[] = [
  { name: "UdpPacket.check() rejects a buffer shorter than 8 bytes", bytes: good.slice(0, 7) },
  { name: "UdpPacket.check() rejects length below 8", bytes: hex("9c400035", "0007", "0000") },
  {
    name: "UdpPacket.check() rejects length past the buffer",
    bytes: hex("9c400035", "000e", "0000", "68656c6c6f"),
  },
];

Deno.test("UdpPacket.check() rejects malformed datagrams without throwing", async (t) => {
  for (const c of malformed) {
    await t.step(c.name, () => {
      const udp = new UdpPacket().reset(bufferWith(c.bytes), AT);
      assert.equal(udp.check(), false);
      assert.equal(UdpRepr.parse(udp), null);
    });
  }
  await t.step("UdpRepr.parse() rejects destination port 0", () => {
    const udp = new UdpPacket().reset(bufferWith(hex("9c400000", "0008", "0000")), AT);
    assert.equal(udp.check(), true);
    assert.equal(UdpRepr.parse(udp), null);
  });
});
