import assert from "node:assert/strict";
import {
  ICMPV6_MAX_ERROR_QUOTE,
  Icmpv6Code,
  icmpv6IsError,
  Icmpv6Packet,
  Icmpv6Repr,
  Icmpv6Type,
} from "../../../stack/wire/icmpv6.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors_ipv6.py; each
// is a whole IPv6 packet, so the checksums are scapy's over the pseudo header.
// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/ICMPv6EchoRequest(id=0x1234, seq=1, data=b'abcdefgh')
const ECHO_REQUEST = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "3a", // next header 58
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "80", // ICMPv6 type 128
  "00", // code 0
  "8074", // checksum
  "1234", // identifier 4660
  "0001", // sequence 1
  "6162636465666768", // data (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8:1::2', dst='2001:db8::1')/ICMPv6EchoReply(id=0x1234, seq=1, data=b'abcdefgh')
const ECHO_REPLY = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "3a", // next header 58
  "40", // hop limit 64
  "20010db8000100000000000000000002", // source 2001:db8:1::2
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "81", // ICMPv6 type 129
  "00", // code 0
  "7f74", // checksum
  "1234", // identifier 4660
  "0001", // sequence 1
  "6162636465666768", // data (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::ff', dst='2001:db8::1')/ICMPv6DestUnreach(code=4)/IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=1)/UDP(sport=40000, dport=33434)
const DEST_UNREACH = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0038", // payload length 56
  "3a", // next header 58
  "40", // hop limit 64
  "20010db80000000000000000000000ff", // source 2001:db8::ff
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "01", // ICMPv6 type 1
  "04", // code 4
  "3127", // checksum
  "00000000", // unused
  // quoted packet:
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0008", // payload length 8
  "11", // next header 17
  "01", // hop limit 1
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "9c40829a0008858d", // quoted payload (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::ff', dst='2001:db8::1')/ICMPv6PacketTooBig(mtu=1280)/IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=1)/UDP(sport=40000, dport=33434)
const PACKET_TOO_BIG = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0038", // payload length 56
  "3a", // next header 58
  "40", // hop limit 64
  "20010db80000000000000000000000ff", // source 2001:db8::ff
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "02", // ICMPv6 type 2
  "00", // code 0
  "2b2b", // checksum
  "00000500", // MTU 1280
  // quoted packet:
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0008", // payload length 8
  "11", // next header 17
  "01", // hop limit 1
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "9c40829a0008858d", // quoted payload (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::ff', dst='2001:db8::1')/ICMPv6TimeExceeded(code=0)/IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=1)/UDP(sport=40000, dport=33434)
const TIME_EXCEEDED = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0038", // payload length 56
  "3a", // next header 58
  "40", // hop limit 64
  "20010db80000000000000000000000ff", // source 2001:db8::ff
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "03", // ICMPv6 type 3
  "00", // code 0
  "2f2b", // checksum
  "00000000", // unused
  // quoted packet:
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0008", // payload length 8
  "11", // next header 17
  "01", // hop limit 1
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "9c40829a0008858d", // quoted payload (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::ff', dst='2001:db8::1')/ICMPv6ParamProblem(code=1, ptr=6)/IPv6(src='2001:db8::1', dst='2001:db8:1::2', nh=253)/bytes(8)
const PARAM_PROBLEM = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0038", // payload length 56
  "3a", // next header 58
  "40", // hop limit 64
  "20010db80000000000000000000000ff", // source 2001:db8::ff
  "20010db8000000000000000000000001", // destination 2001:db8::1
  "04", // ICMPv6 type 4
  "01", // code 1
  "e654", // checksum
  "00000006", // pointer 6
  // quoted packet:
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0008", // payload length 8
  "fd", // next header 253
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "0000000000000000", // quoted payload (8 bytes)
);

/** The quoted packet of the error vectors: the IPv6 header and UDP header. */
const QUOTE = DEST_UNREACH.slice(48);

const cases: { name: string; bytes: Uint8Array; repr: Icmpv6Repr }[] = [
  {
    name: "Icmpv6Repr parses and emits an echo request",
    bytes: ECHO_REQUEST,
    repr: { kind: "echoRequest", ident: 0x1234, seq: 1, data: hex("6162636465666768") },
  },
  {
    name: "Icmpv6Repr parses and emits an echo reply",
    bytes: ECHO_REPLY,
    repr: { kind: "echoReply", ident: 0x1234, seq: 1, data: hex("6162636465666768") },
  },
  {
    name: "Icmpv6Repr parses and emits Destination Unreachable (port unreachable)",
    bytes: DEST_UNREACH,
    repr: { kind: "destinationUnreachable", code: Icmpv6Code.PORT_UNREACHABLE, data: QUOTE },
  },
  {
    name: "Icmpv6Repr parses and emits Packet Too Big with MTU 1280",
    bytes: PACKET_TOO_BIG,
    repr: { kind: "packetTooBig", mtu: 1280, data: QUOTE },
  },
  {
    name: "Icmpv6Repr parses and emits Time Exceeded (hop limit)",
    bytes: TIME_EXCEEDED,
    repr: { kind: "timeExceeded", code: Icmpv6Code.HOP_LIMIT_EXCEEDED, data: QUOTE },
  },
  {
    name: "Icmpv6Repr parses and emits Parameter Problem (next header, pointer 6)",
    bytes: PARAM_PROBLEM,
    repr: {
      kind: "parameterProblem",
      code: Icmpv6Code.UNRECOGNIZED_NEXT_HEADER,
      pointer: 6,
      data: PARAM_PROBLEM.slice(48),
    },
  },
];

Deno.test("Icmpv6Repr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const icmp = new Icmpv6Packet().reset(bufferWith(c.bytes), AT + 40);
      assert.equal(icmp.check(), true);
      assert.equal(icmp.verifyChecksum(AT), true);
      assert.deepStrictEqual(Icmpv6Repr.parse(icmp, AT), c.repr);
      const len = Icmpv6Repr.bufferLen(c.repr);
      assert.equal(len, c.bytes.length - 40);
      const out = blankBuffer(40 + len);
      out.data.set(c.bytes.subarray(0, 40), AT); // the IPv6 header gives the pseudo header
      Icmpv6Repr.emit(c.repr, out, AT + 40, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + 40 + len], 0xa5);
    });
  }
});

Deno.test("Icmpv6Packet accessors", () => {
  const ptb = new Icmpv6Packet().reset(bufferWith(PACKET_TOO_BIG), AT + 40);
  assert.equal(ptb.type(), Icmpv6Type.PACKET_TOO_BIG);
  assert.equal(ptb.mtu(), 1280);
  assert.equal(ptb.checksum(), 0x2b2b);
  assert.equal(ptb.payloadOffset(), AT + 48);
  const pp = new Icmpv6Packet().reset(bufferWith(PARAM_PROBLEM), AT + 40);
  assert.equal(pp.pointer(), 6);
  assert.equal(pp.code(), 1);
  const echo = new Icmpv6Packet().reset(bufferWith(ECHO_REQUEST), AT + 40);
  assert.deepStrictEqual([echo.ident(), echo.seq()], [0x1234, 1]);
  echo.setSeq(2);
  assert.equal(echo.verifyChecksum(AT), false);
  echo.fillChecksum(AT);
  assert.equal(echo.verifyChecksum(AT), true);
  // The pseudo header covers the addresses: a changed destination breaks it.
  const d = echo.buf.data;
  const final = d.slice(AT + 24, AT + 40);
  d[AT + 39] = d[AT + 39]! ^ 1;
  assert.equal(echo.verifyChecksum(AT), false);
  // An explicit final destination elsewhere (a Routing header, RFC 8200 §8.1) is honoured.
  d.set(final, AT + 60);
  assert.equal(echo.verifyChecksum(AT, 16, AT + 60), true);
});

Deno.test("Icmpv6Repr.parse() rejects malformed messages without throwing", async (t) => {
  await t.step("Icmpv6Packet.check() rejects a message shorter than 8 bytes", () => {
    const icmp = new Icmpv6Packet().reset(bufferWith(ECHO_REQUEST.slice(0, 47)), AT + 40);
    assert.equal(icmp.check(), false);
    assert.equal(Icmpv6Repr.parse(icmp, AT), null);
  });
  await t.step("Icmpv6Repr.parse() rejects a bad checksum", () => {
    const b = ECHO_REQUEST.slice();
    b[55] = b[55]! ^ 1;
    assert.equal(Icmpv6Repr.parse(new Icmpv6Packet().reset(bufferWith(b), AT + 40), AT), null);
  });
  await t.step("Icmpv6Repr.parse() rejects a length past the buffer", () => {
    const icmp = new Icmpv6Packet().reset(bufferWith(ECHO_REQUEST), AT + 40);
    assert.equal(Icmpv6Repr.parse(icmp, AT, 17), null);
  });
  await t.step("Icmpv6Repr.parse() rejects an echo request with code 1", () => {
    const p = bufferWith(ECHO_REQUEST);
    const icmp = new Icmpv6Packet().reset(p, AT + 40);
    icmp.setCode(1);
    icmp.fillChecksum(AT);
    assert.equal(Icmpv6Repr.parse(icmp, AT), null);
  });
  await t.step("Icmpv6Repr.parse() returns null for NDP (type 135)", () => {
    const p = bufferWith(ECHO_REQUEST);
    const icmp = new Icmpv6Packet().reset(p, AT + 40);
    icmp.setType(Icmpv6Type.NEIGHBOR_SOLICITATION);
    icmp.fillChecksum(AT);
    assert.equal(icmp.verifyChecksum(AT), true);
    assert.equal(Icmpv6Repr.parse(icmp, AT), null);
  });
  await t.step("Icmpv6Repr.parse() uses only `len` bytes, ignoring link padding", () => {
    const icmp = new Icmpv6Packet().reset(bufferWith(ECHO_REQUEST, 6), AT + 40);
    assert.deepStrictEqual(Icmpv6Repr.parse(icmp, AT, 16), cases[0]!.repr);
  });
});

Deno.test("Icmpv6Type, Icmpv6Code and icmpv6IsError follow RFC 4443", () => {
  assert.deepStrictEqual(
    [
      Icmpv6Code.NO_ROUTE,
      Icmpv6Code.ADMIN_PROHIBITED,
      Icmpv6Code.BEYOND_SCOPE,
      Icmpv6Code.ADDRESS_UNREACHABLE,
      Icmpv6Code.PORT_UNREACHABLE,
      Icmpv6Code.SOURCE_ADDRESS_FAILED_POLICY,
      Icmpv6Code.REJECT_ROUTE,
    ],
    [0, 1, 2, 3, 4, 5, 6],
  );
  assert.deepStrictEqual(
    [
      Icmpv6Code.ERRONEOUS_HEADER_FIELD,
      Icmpv6Code.UNRECOGNIZED_NEXT_HEADER,
      Icmpv6Code.UNRECOGNIZED_OPTION,
    ],
    [0, 1, 2],
  );
  assert.deepStrictEqual(
    [
      Icmpv6Type.MLD_QUERY,
      Icmpv6Type.MLD_REPORT_V1,
      Icmpv6Type.MLD_DONE,
      Icmpv6Type.ROUTER_SOLICITATION,
      Icmpv6Type.REDIRECT,
      Icmpv6Type.MLD_REPORT_V2,
    ],
    [130, 131, 132, 133, 137, 143],
  );
  assert.deepStrictEqual([1, 2, 3, 4, 127].map(icmpv6IsError), [true, true, true, true, true]);
  assert.deepStrictEqual([128, 129, 135, 143].map(icmpv6IsError), [false, false, false, false]);
  assert.equal(ICMPV6_MAX_ERROR_QUOTE, 1232);
});
