import assert from "node:assert/strict";
import { Icmpv4Code, Icmpv4Packet, Icmpv4Repr, Icmpv4Type } from "../../../stack/wire/icmpv4.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const quotedUdp = hex(
  "45", // version 4, IHL 5
  "00", // DSCP/ECN 0x00
  "001c", // total length 28
  "1234", // identification 0x1234
  "0000", // flags DF=0 MF=0, fragment offset 0 bytes
  "40", // TTL 64
  "11", // protocol 17
  "7c66", // header checksum
  "c0000201", // source 192.0.2.1
  "c6336402", // destination 198.51.100.2
  "9c40829a00080000", // quoted payload: UDP 40000 → 33434, length 8, checksum 0
);

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors.py.
const cases: { name: string; bytes: Uint8Array; repr: Icmpv4Repr }[] = [
  {
    name: "Icmpv4Repr parses and emits an echo request",
    // ICMP(type=8, id=0x1234, seq=1)/b'abcdefgh'
    bytes: hex(
      "08", // type 8
      "00", // code 0
      "5435", // checksum
      "1234", // identifier 4660
      "0001", // sequence 1
      "6162636465666768", // data (8 bytes)
    ),
    repr: { kind: "echoRequest", ident: 0x1234, seq: 1, data: hex("6162636465666768") },
  },
  {
    name: "Icmpv4Repr parses and emits an echo reply",
    // ICMP(type=0, id=0x1234, seq=1)/b'abcdefgh'
    bytes: hex(
      "00", // type 0
      "00", // code 0
      "5c35", // checksum
      "1234", // identifier 4660
      "0001", // sequence 1
      "6162636465666768", // data (8 bytes)
    ),
    repr: { kind: "echoReply", ident: 0x1234, seq: 1, data: hex("6162636465666768") },
  },
  {
    name: "Icmpv4Repr parses and emits Fragmentation Needed with the next-hop MTU",
    // ICMP(type=3, code=4, nexthopmtu=1400)/IP(src='192.0.2.1', dst='198.51.100.2', ttl=63,
    //   id=0x1234, flags='DF', len=1500)/UDP(sport=40000, dport=53, len=1480, chksum=0x1111)
    bytes: hex(
      "03", // type 3
      "04", // code 4
      "4435", // checksum
      "0000", // unused
      "0578", // next-hop MTU 1400
      // quoted datagram:
      "45", // version 4, IHL 5
      "00", // DSCP/ECN 0x00
      "05dc", // total length 1500
      "1234", // identification 0x1234
      "4000", // flags DF=1 MF=0, fragment offset 0 bytes
      "3f", // TTL 63
      "11", // protocol 17
      "37a6", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "9c40003505c81111", // quoted payload: UDP 40000 → 53, length 1480
    ),
    repr: {
      kind: "destinationUnreachable",
      code: Icmpv4Code.FRAGMENTATION_NEEDED,
      nextHopMtu: 1400,
      data: hex("450005dc123440003f1137a6c0000201c6336402", "9c40003505c81111"),
    },
  },
  {
    name: "Icmpv4Repr parses and emits Port Unreachable",
    // ICMP(type=3, code=3)/IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x1234)/UDP(sport=40000, dport=33434, len=8, chksum=0)
    bytes: hex(
      "03", // type 3
      "03", // code 3
      "de19", // checksum
      "0000", // unused
      "0000", // unused (no MTU for code 3)
      "4500001c123400004011", // quoted datagram: IP header …
      "7c66c0000201c6336402", // … checksum, source, destination
      "9c40829a00080000", // quoted payload (8 bytes)
    ),
    repr: {
      kind: "destinationUnreachable",
      code: Icmpv4Code.PORT_UNREACHABLE,
      nextHopMtu: 0,
      data: quotedUdp,
    },
  },
  {
    name: "Icmpv4Repr parses and emits Time Exceeded in transit",
    // ICMP(type=11, code=0)/IP(src='192.0.2.1', dst='198.51.100.2', ttl=1, id=0x1234)/UDP(sport=40000, dport=33434, len=8, chksum=0)
    bytes: hex(
      "0b", // type 11
      "00", // code 0
      "d61c", // checksum
      "00000000", // unused
      // quoted datagram:
      "45", // version 4, IHL 5
      "00", // DSCP/ECN 0x00
      "001c", // total length 28
      "1234", // identification 0x1234
      "0000", // flags DF=0 MF=0, fragment offset 0 bytes
      "01", // TTL 1
      "11", // protocol 17
      "bb66", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "9c40829a00080000", // quoted payload (8 bytes)
    ),
    repr: {
      kind: "timeExceeded",
      code: Icmpv4Code.TTL_EXCEEDED,
      data: hex("4500001c123400000111bb66c0000201c6336402", "9c40829a00080000"),
    },
  },
  {
    name: "Icmpv4Repr parses and emits Parameter Problem with a pointer",
    // ICMP(type=12, code=0, ptr=22)/IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=1,
    //   options=[IPOption(b'\x07\x0b\x02' + bytes(8))], proto=1)/ICMP(id=7, seq=1)
    bytes: hex(
      "0c", // type 12
      "00", // code 0
      "ddff", // checksum
      "16", // pointer 22 (the Record Route pointer byte)
      "000000", // unused
      // quoted datagram:
      "48", // version 4, IHL 8
      "00", // DSCP/ECN 0x00
      "0028", // total length 40
      "0001", // identification 0x0001
      "0000", // flags DF=0 MF=0, fragment offset 0 bytes
      "40", // TTL 64
      "01", // protocol 1
      "8292", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "070b02", // Record Route: type 7, length 11, pointer 2
      "00000000", //   route slot 0.0.0.0
      "00000000", //   route slot 0.0.0.0
      "00", // End of Option List and padding (1 bytes)
      "0800f7f700070001", // quoted payload (8 bytes)
    ),
    repr: {
      kind: "parameterProblem",
      code: Icmpv4Code.POINTER_INDICATES_ERROR,
      pointer: 22,
      data: hex(
        "48000028000100004001",
        "8292c0000201c6336402",
        "070b02000000000000000000",
        "0800f7f700070001",
      ),
    },
  },
];

Deno.test("Icmpv4Repr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const icmp = new Icmpv4Packet().reset(bufferWith(c.bytes), AT);
      assert.equal(icmp.check(), true);
      assert.equal(icmp.verifyChecksum(), true);
      assert.deepStrictEqual(Icmpv4Repr.parse(icmp), c.repr);
      const len = Icmpv4Repr.bufferLen(c.repr);
      assert.equal(len, c.bytes.length);
      const out = blankBuffer(len);
      Icmpv4Repr.emit(c.repr, out, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + len], 0xa5);
    });
  }
});

Deno.test("Icmpv4Packet accessors", () => {
  const icmp = new Icmpv4Packet().reset(bufferWith(cases[2]!.bytes), AT);
  assert.equal(icmp.type(), Icmpv4Type.DEST_UNREACHABLE);
  assert.equal(icmp.code(), 4);
  assert.equal(icmp.nextHopMtu(), 1400);
  assert.equal(icmp.restOfHeader(), 1400);
  assert.equal(icmp.payloadOffset(), AT + 8);
  const pp = new Icmpv4Packet().reset(bufferWith(cases[5]!.bytes), AT);
  assert.equal(pp.pointer(), 22);
  const echo = new Icmpv4Packet().reset(bufferWith(cases[0]!.bytes), AT);
  assert.equal(echo.ident(), 0x1234);
  assert.equal(echo.seq(), 1);
  echo.setSeq(2);
  assert.equal(echo.verifyChecksum(), false);
  echo.fillChecksum();
  assert.equal(echo.verifyChecksum(), true);
});

Deno.test("Icmpv4Repr.parse() rejects malformed messages without throwing", async (t) => {
  const echo = cases[0]!.bytes;
  await t.step("Icmpv4Packet.check() rejects a message shorter than 8 bytes", () => {
    const icmp = new Icmpv4Packet().reset(bufferWith(echo.slice(0, 7)), AT);
    assert.equal(icmp.check(), false);
    assert.equal(Icmpv4Repr.parse(icmp), null);
  });
  await t.step("Icmpv4Repr.parse() rejects a bad checksum", () => {
    const b = echo.slice();
    b[15] = 0;
    const icmp = new Icmpv4Packet().reset(bufferWith(b), AT);
    assert.equal(icmp.check(), true);
    assert.equal(Icmpv4Repr.parse(icmp), null);
  });
  await t.step("Icmpv4Repr.parse() rejects a length past the buffer", () => {
    const icmp = new Icmpv4Packet().reset(bufferWith(echo), AT);
    assert.equal(Icmpv4Repr.parse(icmp, echo.length + 1), null);
  });
  await t.step("Icmpv4Repr.parse() returns null for an unmodelled type (13, timestamp)", () => {
    const p = bufferWith(hex("0d00", "0000", "00010002", "000000000000000000000000"));
    const icmp = new Icmpv4Packet().reset(p, AT);
    icmp.fillChecksum();
    assert.equal(Icmpv4Repr.parse(icmp), null);
  });
  await t.step("Icmpv4Repr.parse() uses only `len` bytes, ignoring link padding", () => {
    const icmp = new Icmpv4Packet().reset(bufferWith(echo, 10), AT);
    assert.deepStrictEqual(Icmpv4Repr.parse(icmp, echo.length), cases[0]!.repr);
  });
});

Deno.test("Icmpv4Code values follow RFC 792 and RFC 1812 §5.2.7.1", () => {
  assert.deepStrictEqual(
    [
      Icmpv4Code.NET_UNREACHABLE,
      Icmpv4Code.HOST_UNREACHABLE,
      Icmpv4Code.PROTOCOL_UNREACHABLE,
      Icmpv4Code.PORT_UNREACHABLE,
      Icmpv4Code.FRAGMENTATION_NEEDED,
      Icmpv4Code.SOURCE_ROUTE_FAILED,
      Icmpv4Code.NET_PROHIBITED,
      Icmpv4Code.HOST_PROHIBITED,
      Icmpv4Code.ADMIN_PROHIBITED,
      Icmpv4Code.PRECEDENCE_CUTOFF,
    ],
    [0, 1, 2, 3, 4, 5, 9, 10, 13, 15],
  );
});
