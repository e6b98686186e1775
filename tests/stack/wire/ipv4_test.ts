import assert from "node:assert/strict";
import {
  IpProtocol,
  IPV4_MIN_HEADER_LEN,
  Ipv4Packet,
  Ipv4Repr,
  writeIpv4Header,
} from "../../../stack/wire/ipv4.ts";
import { internetChecksum } from "../../../stack/wire/checksum.ts";
import { parseIpv4 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, seeded, toHex } from "./_helpers.ts";

const A = parseIpv4("192.0.2.1");
const B = parseIpv4("198.51.100.2");

interface Case {
  name: string;
  bytes: Uint8Array;
  repr: Ipv4Repr;
}

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors.py; each
// names the scapy expression.
const cases: Case[] = [
  {
    name: "Ipv4Repr parses and emits a header without options",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x1234, flags='DF')/UDP(sport=40000, dport=53)/b'hello'
    bytes: hex(
      "45", // version 4, IHL 5
      "00", // DSCP/ECN 0x00
      "0021", // total length 33
      "1234", // identification 0x1234
      "4000", // flags DF=1 MF=0, fragment offset 0 bytes
      "40", // TTL 64
      "11", // protocol 17
      "3c61", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "9c400035000d3355", // UDP header
      "68656c6c6f", // payload b'hello'
    ),
    repr: {
      src: A,
      dst: B,
      protocol: IpProtocol.UDP,
      ttl: 64,
      id: 0x1234,
      dscpEcn: 0,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      options: new Uint8Array(0),
      payloadLen: 13,
    },
  },
  {
    name: "Ipv4Repr parses and emits a Record Route option",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=1, options=[IPOption(b'\x07\x0b\x04' + bytes(8))])/ICMP(id=7, seq=1)
    bytes: hex(
      "48", // version 4, IHL 8
      "00", // DSCP/ECN 0x00
      "0028", // total length 40
      "0001", // identification 0x0001
      "0000", // flags DF=0 MF=0, fragment offset 0 bytes
      "40", // TTL 64
      "01", // protocol 1
      "8092", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "070b04", // Record Route: type 7, length 11, pointer 4
      "00000000", //   route slot 0.0.0.0
      "00000000", //   route slot 0.0.0.0
      "00", // End of Option List and padding (1 bytes)
      "0800f7f700070001", // ICMP echo request id 7 seq 1
    ),
    repr: {
      src: A,
      dst: B,
      protocol: IpProtocol.ICMP,
      ttl: 64,
      id: 1,
      dscpEcn: 0,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      options: hex("070b04", "0000000000000000", "00"),
      payloadLen: 8,
    },
  },
  {
    name: "Ipv4Repr parses and emits a Timestamp option (flags 0)",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=2, options=[IPOption(b'\x44\x0c\x05\x00' + bytes(8))])/ICMP(id=7, seq=2)
    bytes: hex(
      "48", // version 4, IHL 8
      "00", // DSCP/ECN 0x00
      "0028", // total length 40
      "0002", // identification 0x0002
      "0000", // flags DF=0 MF=0, fragment offset 0 bytes
      "40", // TTL 64
      "01", // protocol 1
      "4290", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "440c0500", // Timestamp: type 68, length 12, pointer 5, overflow 0, flags 0
      "00000000", //   slot 0x00000000
      "00000000", //   slot 0x00000000
      "0800f7f600070002", // ICMP echo request id 7 seq 2
    ),
    repr: {
      src: A,
      dst: B,
      protocol: IpProtocol.ICMP,
      ttl: 64,
      id: 2,
      dscpEcn: 0,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      options: hex("440c0500", "0000000000000000"),
      payloadLen: 8,
    },
  },
  {
    name: "Ipv4Repr parses and emits a Router Alert option",
    // IP(src='192.0.2.1', dst='224.0.0.22', ttl=1, tos=0xc0, id=3, options=[IPOption(b'\x94\x04\x00\x00')], proto=2)/(b'\x22' + bytes(7))
    bytes: hex(
      "46", // version 4, IHL 6
      "c0", // DSCP/ECN 0xc0
      "0020", // total length 32
      "0003", // identification 0x0003
      "0000", // flags DF=0 MF=0, fragment offset 0 bytes
      "01", // TTL 1
      "02", // protocol 2 (IGMP)
      "81fd", // header checksum
      "c0000201", // source 192.0.2.1
      "e0000016", // destination 224.0.0.22
      "94040000", // Router Alert: type 148, length 4, value 0
      "2200000000000000", // payload (an IGMPv3 report type byte and zeros)
    ),
    repr: {
      src: A,
      dst: parseIpv4("224.0.0.22"),
      protocol: IpProtocol.IGMP,
      ttl: 1,
      id: 3,
      dscpEcn: 0xc0,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      options: hex("94040000"),
      payloadLen: 8,
    },
  },
  {
    name: "Ipv4Repr parses and emits a first fragment (MF, offset 0)",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0xabcd, flags='MF', frag=0, proto=17)/bytes(16)
    bytes: hex(
      "45", // version 4, IHL 5
      "00", // DSCP/ECN 0x00
      "0024", // total length 36
      "abcd", // identification 0xabcd
      "2000", // flags DF=0 MF=1, fragment offset 0 bytes
      "40", // TTL 64
      "11", // protocol 17
      "c2c4", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "00000000000000000000000000000000", // fragment data (16 bytes)
    ),
    repr: {
      src: A,
      dst: B,
      protocol: IpProtocol.UDP,
      ttl: 64,
      id: 0xabcd,
      dscpEcn: 0,
      dontFragment: false,
      moreFragments: true,
      fragmentOffset: 0,
      options: new Uint8Array(0),
      payloadLen: 16,
    },
  },
  {
    name: "Ipv4Repr parses and emits a last fragment (offset 16 bytes)",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0xabcd, flags=0, frag=2, proto=17)/bytes(8)
    bytes: hex(
      "45", // version 4, IHL 5
      "00", // DSCP/ECN 0x00
      "001c", // total length 28
      "abcd", // identification 0xabcd
      "0002", // flags DF=0 MF=0, fragment offset 2 units = 16 bytes
      "40", // TTL 64
      "11", // protocol 17
      "e2ca", // header checksum
      "c0000201", // source 192.0.2.1
      "c6336402", // destination 198.51.100.2
      "0000000000000000", // fragment data (8 bytes)
    ),
    repr: {
      src: A,
      dst: B,
      protocol: IpProtocol.UDP,
      ttl: 64,
      id: 0xabcd,
      dscpEcn: 0,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 16,
      options: new Uint8Array(0),
      payloadLen: 8,
    },
  },
];

Deno.test("Ipv4Repr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const ip = new Ipv4Packet().reset(bufferWith(c.bytes), AT);
      assert.equal(ip.check(), true);
      assert.equal(ip.verifyChecksum(), true);
      assert.deepStrictEqual(Ipv4Repr.parse(ip), c.repr);
      const hl = Ipv4Repr.bufferLen(c.repr);
      assert.equal(hl, ip.headerLen());
      const out = blankBuffer(hl);
      Ipv4Repr.emit(c.repr, out, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes.subarray(0, hl)));
      // Nothing past the header was written.
      assert.equal(out.data[AT + hl], 0xa5);
    });
  }
});

Deno.test("Ipv4Packet accessors read the byte vectors", () => {
  const c = cases[5]!;
  const ip = new Ipv4Packet().reset(bufferWith(c.bytes), AT);
  assert.equal(ip.check(), true);
  assert.equal(ip.version(), 4);
  assert.equal(ip.ihl(), 5);
  assert.equal(ip.headerLen(), 20);
  assert.equal(ip.totalLength(), 28);
  assert.equal(ip.id(), 0xabcd);
  assert.equal(ip.fragmentOffset(), 16);
  assert.equal(ip.isFragment(), true);
  assert.equal(ip.optionsLength(), 0);
  assert.equal(ip.payloadOffset(), AT + 20);
  assert.equal(ip.payloadLength(), 8);
  assert.equal(ip.checksum(), 0xe2ca);
  ip.setFragmentOffset(1480);
  ip.setMoreFragments(true);
  ip.setDontFragment(true);
  assert.equal(ip.fragmentOffset(), 1480);
  assert.equal(ip.moreFragments(), true);
  assert.equal(ip.dontFragment(), true);
  ip.setMoreFragments(false);
  assert.equal(ip.flagsFragment(), 0x4000 | (1480 / 8));
  ip.setSrc(0xffffffff);
  assert.equal(ip.src(), 0xffffffff);
  ip.fillChecksum();
  assert.equal(ip.verifyChecksum(), true);
});

const good = cases[0]!.bytes;

function withBytes(patch: (b: Uint8Array) => void, len = good.length): Uint8Array {
  const b = good.slice(0, len);
  patch(b);
  return b;
}

const malformed: { name: string; bytes: Uint8Array; extra?: number }[] = [
  { name: "Ipv4Packet.check() rejects a buffer shorter than 20 bytes", bytes: good.slice(0, 19) },
  {
    name: "Ipv4Packet.check() rejects IHL below 5",
    bytes: withBytes((b) => (b[0] = 0x44)),
  },
  {
    name: "Ipv4Packet.check() rejects IHL 0",
    bytes: withBytes((b) => (b[0] = 0x40)),
  },
  {
    name: "Ipv4Packet.check() rejects total length past the buffer",
    bytes: withBytes((b) => (b[3] = 0x22)), // 34 > 33 bytes present
  },
  {
    name: "Ipv4Packet.check() rejects total length below the header length",
    bytes: withBytes((b) => (b[3] = 19)),
  },
  {
    name: "Ipv4Packet.check() rejects a header longer than total length (IHL 15)",
    bytes: withBytes((b) => (b[0] = 0x4f)), // 60-byte header, total length 33
  },
  {
    name: "Ipv4Packet.check() rejects options past the buffer",
    // IHL 8 with total length 32 but only 24 bytes present.
    bytes: withBytes((b) => {
      b[0] = 0x48;
      b[3] = 32;
    }, 24),
  },
];

Deno.test("Ipv4Packet.check() rejects malformed headers without throwing", async (t) => {
  for (const c of malformed) {
    await t.step(c.name, () => {
      const ip = new Ipv4Packet().reset(bufferWith(c.bytes), AT);
      assert.equal(ip.check(), false);
      assert.equal(Ipv4Repr.parse(ip), null);
    });
  }
});

Deno.test("Ipv4Packet.check() accepts link padding after total length", () => {
  const ip = new Ipv4Packet().reset(bufferWith(good, 27), AT); // padded to a 60-byte frame
  assert.equal(ip.check(), true);
  assert.equal(Ipv4Repr.parse(ip)!.payloadLen, 13);
});

Deno.test("Ipv4Repr.parse() rejects a bad checksum and version 6", async (t) => {
  await t.step("Ipv4Repr.parse() rejects a bad header checksum", () => {
    const ip = new Ipv4Packet().reset(bufferWith(withBytes((b) => (b[11] = b[11]! ^ 1))), AT);
    assert.equal(ip.check(), true);
    assert.equal(ip.verifyChecksum(), false);
    assert.equal(Ipv4Repr.parse(ip), null);
  });
  await t.step("Ipv4Repr.parse() rejects version 6", () => {
    const b = withBytes((x) => (x[0] = 0x65));
    const ip = new Ipv4Packet().reset(bufferWith(b), AT);
    ip.fillChecksum();
    assert.equal(ip.check(), true);
    assert.equal(ip.version(), 6);
    assert.equal(Ipv4Repr.parse(ip), null);
  });
});

Deno.test("writeIpv4Header pads options and rejects oversized headers", async (t) => {
  await t.step("writeIpv4Header pads 3 option bytes with End of Option List", () => {
    const p = blankBuffer(24);
    const hl = writeIpv4Header(p, AT, {
      src: A,
      dst: B,
      protocol: IpProtocol.UDP,
      payloadLen: 0,
      options: hex("010101"),
    });
    assert.equal(hl, 24);
    assert.equal(toHex(frameOf(p).subarray(20)), "01010100");
    assert.equal(new Ipv4Packet().reset(p, AT).verifyChecksum(), true);
  });
  await t.step("writeIpv4Header throws on 41 option bytes", () => {
    const p = blankBuffer(64);
    assert.throws(() =>
      writeIpv4Header(p, AT, {
        src: A,
        dst: B,
        protocol: 17,
        payloadLen: 0,
        options: new Uint8Array(41),
      }), RangeError);
  });
  await t.step("writeIpv4Header throws when the total exceeds 65535", () => {
    const p = blankBuffer(64);
    assert.throws(
      () => writeIpv4Header(p, AT, { src: A, dst: B, protocol: 17, payloadLen: 65_516 }),
      RangeError,
    );
  });
});

Deno.test("Ipv4Packet.decrementTtl() patches the checksum as a full recompute would", () => {
  // Property test (RFC 1624 eqn. 3 vs RFC 1071): random headers of every
  // IHL, TTL 1..255, seeded for reproducibility.
  const rnd = seeded(0x7a91);
  const p = blankBuffer(60);
  const ip = new Ipv4Packet().reset(p, AT);
  for (let n = 0; n < 20_000; n++) {
    const ihl = 5 + (rnd() % 11);
    for (let i = 0; i < ihl * 4; i++) p.data[AT + i] = rnd() & 0xff;
    p.data[AT] = 0x40 | ihl;
    p.data[AT + 8] = 1 + (rnd() % 255);
    ip.fillChecksum();
    const ttl = ip.ttl();
    assert.equal(ip.decrementTtl(), ttl - 1);
    const incremental = ip.checksum();
    ip.setChecksum(0);
    const full = internetChecksum(p.data, AT, ihl * 4);
    if (incremental !== full) {
      assert.fail(
        `case ${n}: incremental ${incremental.toString(16)} != full ${full.toString(16)}`,
      );
    }
    ip.setChecksum(incremental);
    assert.equal(ip.verifyChecksum(), true);
  }
});

Deno.test("IPV4_MIN_HEADER_LEN and IpProtocol values", () => {
  assert.equal(IPV4_MIN_HEADER_LEN, 20);
  assert.deepStrictEqual(
    [IpProtocol.ICMP, IpProtocol.TCP, IpProtocol.UDP, IpProtocol.ICMPV6],
    [1, 6, 17, 58],
  );
});
