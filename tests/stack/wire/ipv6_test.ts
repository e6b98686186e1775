import assert from "node:assert/strict";
import {
  IPV6_HEADER_LEN,
  IPV6_MIN_MTU,
  Ipv6Packet,
  Ipv6Repr,
  writeIpv6Header,
} from "../../../stack/wire/ipv6.ts";
import { parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const A = parseIpv6("2001:db8::1");
const B = parseIpv6("2001:db8:1::2");

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors_ipv6.py; each
// names the scapy expression.
// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=64, tc=0xb8, fl=0x12345)/UDP(sport=40000, dport=53)/b'hello'
const IPV6_UDP = hex(
  "6b812345", // version 6, traffic class 0xb8, flow label 0x12345
  "000d", // payload length 13
  "11", // next header 17
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "9c400035000dc416", // UDP 40000 -> 53, length 13, checksum
  "68656c6c6f", // UDP payload (5 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=255, nh=59)
const IPV6_NO_NEXT_HEADER = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0000", // payload length 0
  "3b", // next header 59
  "ff", // hop limit 255
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
);

const cases: { name: string; bytes: Uint8Array; repr: Ipv6Repr }[] = [
  {
    name: "Ipv6Repr parses and emits a header with traffic class and flow label",
    bytes: IPV6_UDP,
    repr: {
      src: A,
      dst: B,
      nextHeader: 17,
      payloadLen: 13,
      hopLimit: 64,
      trafficClass: 0xb8,
      flowLabel: 0x12345,
    },
  },
  {
    name: "Ipv6Repr parses and emits an empty payload with No Next Header",
    bytes: IPV6_NO_NEXT_HEADER,
    repr: {
      src: A,
      dst: B,
      nextHeader: 59,
      payloadLen: 0,
      hopLimit: 255,
      trafficClass: 0,
      flowLabel: 0,
    },
  },
];

Deno.test("Ipv6Repr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const ip = new Ipv6Packet().reset(bufferWith(c.bytes), AT);
      assert.equal(ip.check(), true);
      assert.deepStrictEqual(Ipv6Repr.parse(ip), c.repr);
      assert.equal(Ipv6Repr.bufferLen(c.repr), IPV6_HEADER_LEN);
      const out = blankBuffer(IPV6_HEADER_LEN);
      Ipv6Repr.emit(c.repr, out, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes.subarray(0, IPV6_HEADER_LEN)));
      assert.equal(out.data[AT + IPV6_HEADER_LEN], 0xa5);
    });
  }
});

Deno.test("Ipv6Packet accessors read and write the fields in place", () => {
  const p = bufferWith(IPV6_UDP);
  const ip = new Ipv6Packet().reset(p, AT);
  assert.equal(ip.version(), 6);
  assert.equal(ip.trafficClass(), 0xb8);
  assert.equal(ip.flowLabel(), 0x12345);
  assert.equal(ip.payloadLength(), 13);
  assert.equal(ip.nextHeader(), 17);
  assert.equal(ip.nextHeaderOffset(), AT + 6);
  assert.equal(ip.hopLimit(), 64);
  assert.equal(ip.srcOffset(), AT + 8);
  assert.equal(ip.dstOffset(), AT + 24);
  assert.equal(ip.payloadOffset(), AT + 40);
  assert.equal(ip.endOffset(), AT + 53);
  assert.equal(ip.totalLength(), 53);
  assert.equal(ip.srcEquals(A), true);
  assert.equal(ip.dstEquals(B), true);
  assert.equal(ip.dstEquals(A), false);
  assert.equal(ip.dstIsMulticast(), false);
  const out = new Uint8Array(20).fill(0xa5);
  ip.copySrc(out, 2);
  assert.equal(toHex(out.subarray(2, 18)), toHex(A));
  assert.equal(out[1], 0xa5);
  assert.equal(out[18], 0xa5);
  ip.copyDst(out, 0);
  assert.equal(toHex(out.subarray(0, 16)), toHex(B));
  // Setters touch only their bits.
  ip.setTrafficClass(0x03);
  assert.equal(ip.trafficClass(), 0x03);
  assert.equal(ip.flowLabel(), 0x12345);
  assert.equal(ip.version(), 6);
  ip.setFlowLabel(0xfffff);
  assert.equal(ip.flowLabel(), 0xfffff);
  assert.equal(ip.trafficClass(), 0x03);
  ip.setVersion(4);
  assert.equal(ip.version(), 4);
  assert.equal(ip.trafficClass(), 0x03);
  ip.setSrc(B);
  ip.setDst(parseIpv6("ff02::1"));
  assert.equal(ip.srcEquals(B), true);
  assert.equal(ip.dstIsMulticast(), true);
  ip.setPayloadLength(5);
  ip.setNextHeader(58);
  ip.setHopLimit(2);
  assert.deepStrictEqual([ip.payloadLength(), ip.nextHeader(), ip.hopLimit()], [5, 58, 2]);
});

Deno.test("Ipv6Packet.decrementHopLimit() decrements only the hop limit", () => {
  const p = bufferWith(IPV6_UDP);
  const ip = new Ipv6Packet().reset(p, AT);
  const before = frameOf(p);
  assert.equal(ip.decrementHopLimit(), 63);
  assert.equal(ip.hopLimit(), 63);
  const after = frameOf(p);
  after[7] = 64;
  assert.equal(toHex(after), toHex(before));
  ip.setHopLimit(1);
  assert.equal(ip.decrementHopLimit(), 0);
});

const good = IPV6_UDP;

Deno.test("Ipv6Packet.check() rejects malformed headers without throwing", async (t) => {
  const rows: { name: string; bytes: Uint8Array }[] = [
    { name: "Ipv6Packet.check() rejects a buffer shorter than 40 bytes", bytes: good.slice(0, 39) },
    {
      name: "Ipv6Packet.check() rejects a payload length past the buffer",
      bytes: good.slice(0, 52), // payload length 13, 12 bytes present
    },
    {
      name: "Ipv6Packet.check() rejects payload length 0xffff in a short buffer",
      bytes: (() => {
        const b = good.slice();
        b[4] = 0xff;
        b[5] = 0xff;
        return b;
      })(),
    },
  ];
  for (const c of rows) {
    await t.step(c.name, () => {
      const ip = new Ipv6Packet().reset(bufferWith(c.bytes), AT);
      assert.equal(ip.check(), false);
      assert.equal(Ipv6Repr.parse(ip), null);
    });
  }
  await t.step("Ipv6Repr.parse() rejects version 4", () => {
    const b = good.slice();
    b[0] = 0x4b;
    const ip = new Ipv6Packet().reset(bufferWith(b), AT);
    assert.equal(ip.check(), true);
    assert.equal(Ipv6Repr.parse(ip), null);
  });
});

Deno.test("Ipv6Packet.check() accepts link padding after the payload", () => {
  const ip = new Ipv6Packet().reset(bufferWith(IPV6_NO_NEXT_HEADER, 6), AT);
  assert.equal(ip.check(), true);
  assert.equal(Ipv6Repr.parse(ip)!.payloadLen, 0);
});

Deno.test("writeIpv6Header writes every field and rejects bad input", async (t) => {
  await t.step("writeIpv6Header defaults hop limit 64, traffic class and flow label 0", () => {
    const p = blankBuffer(40);
    assert.equal(writeIpv6Header(p, AT, { src: A, dst: B, nextHeader: 59, payloadLen: 0 }), 40);
    assert.equal(
      toHex(frameOf(p)),
      toHex(hex("60000000", "0000", "3b", "40")) + toHex(A) + toHex(B),
    );
  });
  await t.step("writeIpv6Header throws on a payload over 65535 bytes", () => {
    assert.throws(
      () =>
        writeIpv6Header(blankBuffer(40), AT, {
          src: A,
          dst: B,
          nextHeader: 17,
          payloadLen: 65_536,
        }),
      RangeError,
    );
  });
  await t.step("writeIpv6Header throws on a short address", () => {
    assert.throws(
      () =>
        writeIpv6Header(blankBuffer(40), AT, {
          src: new Uint8Array(4),
          dst: B,
          nextHeader: 17,
          payloadLen: 0,
        }),
      RangeError,
    );
  });
});

Deno.test("IPV6_MIN_MTU is 1280 (RFC 8200 §5)", () => {
  assert.equal(IPV6_MIN_MTU, 1280);
  assert.equal(IPV6_HEADER_LEN, 40);
});
