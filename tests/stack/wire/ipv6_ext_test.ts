import assert from "node:assert/strict";
import { Ipv6Packet } from "../../../stack/wire/ipv6.ts";
import {
  Ipv6ExtError,
  Ipv6ExtHeaderIterator,
  Ipv6FragmentHeader,
  ipv6IsExtensionHeader,
  ipv6OptionAction,
  Ipv6OptionIterator,
  ipv6OptionMayChange,
  Ipv6OptionsResult,
  Ipv6OptionsVerdict,
  Ipv6RoutingHeader,
  processIpv6Options,
  writeFragmentHeader,
} from "../../../stack/wire/ipv6_ext.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors_ipv6.py; each
// names the scapy expression.
// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])/IPv6ExtHdrFragment(offset=0, m=1, id=0x12345678)/UDP(sport=40000, dport=33434)/bytes(8)
const HBH_RA_FRAG = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "00", // next header 0
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "2c00", // Hop-by-Hop: next header 44, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "11000001", // Fragment: next header 17, offset 0 bytes, M=1
  "12345678", //   identification 0x12345678
  "9c40829a0010857d", // UDP 40000 -> 33434, length 16, checksum
  "0000000000000000", // UDP payload (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrFragment(nh=17, offset=2, m=0, id=0x12345678)/bytes(8)
const FRAG_NONFIRST = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "2c", // next header 44
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "11000010", // Fragment: next header 17, offset 16 bytes, M=0
  "12345678", //   identification 0x12345678
  "0000000000000000", // fragment data (8 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrFragment(nh=17, offset=0, m=0, id=7)/UDP(sport=1, dport=2)
const ATOMIC = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "2c", // next header 44
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "11000000", // Fragment: next header 17, offset 0 bytes, M=0
  "00000007", //   identification 0x00000007
  "000100020008a465", // UDP 1 -> 2, length 8, checksum
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrDestOpt(options=[Pad1(), PadN(optdata=b'\x00\x00\x00')])/IPv6ExtHdrRouting(type=0, segleft=0, addresses=['2001:db8::ff'])/UDP(sport=40000, dport=53)
const DEST_ROUTING = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0028", // payload length 40
  "3c", // next header 60
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "2b00", // Destination Options: next header 43, length 8 bytes
  "00", //   Pad1
  "0103000000", //   option 0x01 (PadN, action 00), length 3
  "11020000", // Routing: next header 17, length 24 bytes, type 0, segments left 0
  "0000000020010db80000000000000000000000ff", //   routing data
  "9c400035000807f3", // UDP 40000 -> 53, length 8, checksum
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2', nh=51)/(b'\x3a\x04\x00\x00' + bytes(20))/ICMPv6EchoRequest(id=1, seq=1)
const AH = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "33", // next header 51
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "3a040000", // Authentication Header: next header 58, length 24 bytes, reserved
  "0000000000000000000000000000000000000000", //   SPI, sequence number, ICV
  "80", // ICMPv6 type 128
  "00", // code 0
  "2445", // checksum
  "0001", // identifier 1
  "0001", // sequence 1
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2', nh=50)/bytes(16)
const ESP = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "32", // next header 50
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "00000000000000000000000000000000", // payload (16 bytes)
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=70000)])/UDP(sport=1, dport=2)
const JUMBO = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0010", // payload length 16
  "00", // next header 0
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "1100", // Hop-by-Hop: next header 17, length 8 bytes
  "c20400011170", //   option 0xc2 (Jumbo Payload, action 11), length 4
  "000100020008a465", // UDP 1 -> 2, length 8, checksum
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2')/IPv6ExtHdrDestOpt(options=[HAO(hoa='2001:db8::ff')])/UDP(sport=1, dport=2)
const HAO = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "3c", // next header 60
  "40", // hop limit 64
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
  "1102", // Destination Options: next header 17, length 24 bytes
  "01020000", //   option 0x01 (PadN, action 00), length 2
  "c91020010db80000000000000000000000ff", //   option 0xc9 (Home Address, action 11), length 16
  "000100020008a367", // UDP 1 -> 2, length 8, checksum
);

// scapy 2.5.0: IPv6(src='2001:db8::1', dst='2001:db8:1::2', hlim=255, nh=59)
const NO_NEXT = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0000", // payload length 0
  "3b", // next header 59
  "ff", // hop limit 255
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // destination 2001:db8:1::2
);

/** One header the walker yields; offsets and pointers count from the IPv6 header. */
type Hdr = [type: number, offset: number, length: number, nextHeader: number, typeOffset: number];

const chains: { name: string; bytes: Uint8Array; headers: Hdr[] }[] = [
  {
    name: "Ipv6ExtHeaderIterator walks Hop-by-Hop, Fragment (first) and UDP",
    bytes: HBH_RA_FRAG,
    headers: [[0, 40, 8, 44, 6], [44, 48, 8, 17, 40], [17, 56, 16, -1, 48]],
  },
  {
    name: "Ipv6ExtHeaderIterator stops at the data of a non-first fragment",
    bytes: FRAG_NONFIRST,
    headers: [[44, 40, 8, 17, 6], [17, 48, 8, -1, 40]],
  },
  {
    name: "Ipv6ExtHeaderIterator walks an atomic fragment into UDP",
    bytes: ATOMIC,
    headers: [[44, 40, 8, 17, 6], [17, 48, 8, -1, 40]],
  },
  {
    name: "Ipv6ExtHeaderIterator walks Destination Options and Routing",
    bytes: DEST_ROUTING,
    headers: [[60, 40, 8, 43, 6], [43, 48, 24, 17, 40], [17, 72, 8, -1, 48]],
  },
  {
    name: "Ipv6ExtHeaderIterator sizes AH in 4-byte units (RFC 4302 §2.2)",
    bytes: AH,
    headers: [[51, 40, 24, 58, 6], [58, 64, 8, -1, 40]],
  },
  {
    name: "Ipv6ExtHeaderIterator ends at ESP",
    bytes: ESP,
    headers: [[50, 40, 16, -1, 6]],
  },
  {
    name: "Ipv6ExtHeaderIterator walks a Hop-by-Hop Jumbo option header",
    bytes: JUMBO,
    headers: [[0, 40, 8, 17, 6], [17, 48, 8, -1, 40]],
  },
  {
    name: "Ipv6ExtHeaderIterator walks a 24-byte Destination Options header",
    bytes: HAO,
    headers: [[60, 40, 24, 17, 6], [17, 64, 8, -1, 40]],
  },
  {
    name: "Ipv6ExtHeaderIterator yields No Next Header with no payload",
    bytes: NO_NEXT,
    headers: [[59, 40, 0, -1, 6]],
  },
];

function walk(bytes: Uint8Array): { it: Ipv6ExtHeaderIterator; got: Hdr[] } {
  const ip = new Ipv6Packet().reset(bufferWith(bytes), AT);
  assert.equal(ip.check(), true);
  const it = new Ipv6ExtHeaderIterator().reset(ip);
  const got: Hdr[] = [];
  while (it.next()) {
    got.push([
      it.type,
      it.pointer(it.offset),
      it.length,
      it.nextHeader,
      it.pointer(it.typeOffset),
    ]);
    if (it.isUpperLayer) assert.equal(it.nextHeaderOffset, -1);
    else assert.equal(it.nextHeaderOffset, it.offset);
  }
  return { it, got };
}

Deno.test("Ipv6ExtHeaderIterator walks the header chains of the byte vectors", async (t) => {
  for (const c of chains) {
    await t.step(c.name, () => {
      const { it, got } = walk(c.bytes);
      assert.deepStrictEqual(got, c.headers);
      assert.equal(it.error, Ipv6ExtError.NONE);
      assert.equal(it.errorPointer, -1);
      assert.equal(it.isUpperLayer, true);
      assert.equal(it.next(), false);
    });
  }
});

function patched(b: Uint8Array, patch: (x: Uint8Array) => void): Uint8Array {
  const x = b.slice();
  patch(x);
  return x;
}

Deno.test("Ipv6ExtHeaderIterator stops on malformed chains without throwing", async (t) => {
  const rows: { name: string; bytes: Uint8Array; error: number; pointer: number; seen: number }[] =
    [
      {
        name: "Ipv6ExtHeaderIterator rejects Hop-by-Hop after Destination Options (RFC 8200 §4.1)",
        bytes: patched(DEST_ROUTING, (x) => (x[40] = 0)),
        error: Ipv6ExtError.HOP_BY_HOP_NOT_FIRST,
        pointer: 40, // the Next Header field that names Hop-by-Hop
        seen: 1,
      },
      {
        name: "Ipv6ExtHeaderIterator rejects a Routing header longer than the payload",
        bytes: patched(DEST_ROUTING, (x) => (x[49] = 5)),
        error: Ipv6ExtError.TRUNCATED,
        pointer: 49, // its Hdr Ext Len
        seen: 1,
      },
      {
        name: "Ipv6ExtHeaderIterator rejects an extension header shorter than 8 bytes",
        bytes: patched(JUMBO, (x) => (x[5] = 4)).subarray(0, 44),
        error: Ipv6ExtError.TRUNCATED,
        pointer: 40,
        seen: 0,
      },
      {
        name: "Ipv6ExtHeaderIterator rejects AH longer than the payload",
        bytes: patched(AH, (x) => (x[41] = 7)),
        error: Ipv6ExtError.TRUNCATED,
        pointer: 41,
        seen: 0,
      },
    ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const { it, got } = walk(r.bytes);
      assert.equal(got.length, r.seen);
      assert.equal(it.error, r.error);
      assert.equal(it.errorPointer, r.pointer);
      assert.equal(it.next(), false);
    });
  }
});

Deno.test("ipv6IsExtensionHeader knows the RFC 7045 list", () => {
  assert.deepStrictEqual(
    [0, 43, 44, 51, 60, 135, 139, 140].map(ipv6IsExtensionHeader),
    Array(8).fill(true),
  );
  assert.deepStrictEqual([6, 17, 50, 58, 59, 253].map(ipv6IsExtensionHeader), Array(6).fill(false));
});

/** A Hop-by-Hop (or Destination Options) header with one option of `type` and 4 data bytes. */
function oneOption(nextHeader: number, type: number, dataLen = 4): Uint8Array {
  const pad = 6 - (dataLen + 2) > 0 ? 6 - (dataLen + 2) : 0;
  const hdr = hex(
    "60000000", // version 6
    "0008", // payload length 8
    nextHeader.toString(16).padStart(2, "0"), // Hop-by-Hop (0) or Destination Options (60)
    "40", // hop limit 64
    "20010db8000000000000000000000001", // source 2001:db8::1
    "20010db8000100000000000000000002", // destination 2001:db8:1::2
    "3b00", // next header 59, length 8 bytes
  );
  const opts = new Uint8Array(6);
  opts[0] = type;
  opts[1] = dataLen;
  if (pad >= 2) {
    opts[2 + dataLen] = 1; // PadN
    opts[3 + dataLen] = pad - 2;
  }
  const out = new Uint8Array(48);
  out.set(hdr);
  out.set(opts, 42);
  return out;
}

const P = Ipv6OptionsVerdict.PARAMETER_PROBLEM;
const D = Ipv6OptionsVerdict.DISCARD;
const OK = Ipv6OptionsVerdict.ACCEPT;

Deno.test("processIpv6Options applies the action bits of unrecognised options (RFC 8200 §4.2)", async (t) => {
  // [option type, destination multicast?, verdict, pointer]
  const table: [number, boolean, number, number][] = [
    [0x1e, false, OK, -1], // 00: skip
    [0x1e, true, OK, -1],
    [0x3e, false, OK, -1], // 00 with the may-change bit
    [0x5e, false, D, 42], // 01: discard
    [0x5e, true, D, 42],
    [0x9e, false, P, 42], // 10: discard + Parameter Problem code 2 always
    [0x9e, true, P, 42],
    [0xde, false, P, 42], // 11: discard + Parameter Problem unless multicast
    [0xde, true, D, 42],
  ];
  const res = new Ipv6OptionsResult();
  for (const [type, mcast, verdict, pointer] of table) {
    const bits = (type >> 6).toString(2).padStart(2, "0");
    await t.step(
      `processIpv6Options on option 0x${type.toString(16)} (action ${bits}) to a ${
        mcast ? "multicast" : "unicast"
      } destination`,
      () => {
        for (const nh of [0, 60]) {
          const b = oneOption(nh, type);
          const p = bufferWith(b);
          assert.equal(processIpv6Options(p.data, AT + 40, 8, AT, nh === 0, mcast, res), verdict);
          assert.equal(res.verdict, verdict);
          assert.equal(res.pointer, pointer);
          assert.equal(res.routerAlert, -1);
        }
      },
    );
  }
  await t.step("ipv6OptionAction and ipv6OptionMayChange read the type bits", () => {
    assert.deepStrictEqual([0x1e, 0x5e, 0x9e, 0xde].map(ipv6OptionAction), [0, 1, 2, 3]);
    assert.deepStrictEqual([0x1e, 0x3e].map(ipv6OptionMayChange), [false, true]);
  });
});

Deno.test("processIpv6Options on the byte vectors", async (t) => {
  const res = new Ipv6OptionsResult();
  const run = (bytes: Uint8Array, hopByHop: boolean, mcast = false) => {
    const p = bufferWith(bytes);
    const ext = new Ipv6ExtHeaderIterator().reset(new Ipv6Packet().reset(p, AT));
    assert.equal(ext.next(), true);
    return processIpv6Options(p.data, ext.offset, ext.length, AT, hopByHop, mcast, res);
  };
  await t.step("processIpv6Options records Router Alert value 0 (RFC 2711)", () => {
    assert.equal(run(HBH_RA_FRAG, true), OK);
    assert.equal(res.routerAlert, 0);
  });
  await t.step("processIpv6Options skips Pad1 and PadN", () => {
    assert.equal(run(DEST_ROUTING, false), OK);
    assert.equal(res.pointer, -1);
  });
  await t.step("processIpv6Options treats Jumbo Payload as unrecognised (pointer 42)", () => {
    assert.equal(run(JUMBO, true), P);
    assert.equal(res.pointer, 42);
    assert.equal(run(JUMBO, true, true), D);
  });
  await t.step("processIpv6Options treats Home Address as unrecognised (pointer 46)", () => {
    assert.equal(run(HAO, false), P);
    assert.equal(res.pointer, 46);
  });
  await t.step("processIpv6Options skips Router Alert in Destination Options (action 00)", () => {
    const p = bufferWith(HBH_RA_FRAG);
    assert.equal(processIpv6Options(p.data, AT + 40, 8, AT, false, false, res), OK);
    assert.equal(res.routerAlert, -1);
  });
  await t.step("processIpv6Options discards a Router Alert of the wrong length", () => {
    const b = oneOption(0, 0x05, 3);
    assert.equal(processIpv6Options(bufferWith(b).data, AT + 40, 8, AT, true, false, res), D);
    assert.equal(res.pointer, 42);
  });
  await t.step("processIpv6Options discards an option that runs past the header", () => {
    const b = oneOption(0, 0x1e, 4);
    b[43] = 5; // 2 + 5 bytes from offset 42 passes the end at 48
    assert.equal(processIpv6Options(bufferWith(b).data, AT + 40, 8, AT, true, false, res), D);
    assert.equal(res.pointer, 42);
  });
});

Deno.test("Ipv6OptionIterator yields Pad1, PadN and each option's data", () => {
  const p = bufferWith(DEST_ROUTING);
  const it = new Ipv6OptionIterator().reset(p.data, AT + 40, 8, AT);
  const got: number[][] = [];
  while (it.next()) got.push([it.type, it.pointer(), it.length, it.dataOffset - AT, it.dataLength]);
  assert.deepStrictEqual(got, [[0, 42, 1, 43, 0], [1, 43, 5, 45, 3]]);
  assert.equal(it.errorPointer, -1);
  const ext = new Ipv6ExtHeaderIterator().reset(new Ipv6Packet().reset(bufferWith(HAO), AT));
  ext.next();
  const opt = new Ipv6OptionIterator().resetFrom(ext);
  assert.equal(opt.next() && opt.next(), true);
  assert.deepStrictEqual([opt.type, opt.pointer(), opt.dataLength], [0xc9, 46, 16]);
  assert.equal(opt.next(), false);
});

Deno.test("Ipv6FragmentHeader reads and writeFragmentHeader writes the vectors", async (t) => {
  const rows: {
    name: string;
    bytes: Uint8Array;
    at: number;
    f: {
      nextHeader: number;
      fragmentOffset: number;
      moreFragments: boolean;
      identification: number;
    };
    atomic: boolean;
  }[] = [
    {
      name: "Ipv6FragmentHeader: first fragment (offset 0, M=1)",
      bytes: HBH_RA_FRAG,
      at: 48,
      f: { nextHeader: 17, fragmentOffset: 0, moreFragments: true, identification: 0x12345678 },
      atomic: false,
    },
    {
      name: "Ipv6FragmentHeader: last fragment (offset 16, M=0)",
      bytes: FRAG_NONFIRST,
      at: 40,
      f: { nextHeader: 17, fragmentOffset: 16, moreFragments: false, identification: 0x12345678 },
      atomic: false,
    },
    {
      name: "Ipv6FragmentHeader: atomic fragment (RFC 6946)",
      bytes: ATOMIC,
      at: 40,
      f: { nextHeader: 17, fragmentOffset: 0, moreFragments: false, identification: 7 },
      atomic: true,
    },
  ];
  for (const r of rows) {
    await t.step(r.name, () => {
      const fh = new Ipv6FragmentHeader().reset(bufferWith(r.bytes), AT + r.at);
      assert.equal(fh.check(), true);
      assert.deepStrictEqual(
        {
          nextHeader: fh.nextHeader(),
          fragmentOffset: fh.fragmentOffset(),
          moreFragments: fh.moreFragments(),
          identification: fh.identification(),
        },
        r.f,
      );
      assert.equal(fh.isAtomic(), r.atomic);
      const out = blankBuffer(8);
      assert.equal(writeFragmentHeader(out, AT, r.f), 8);
      assert.equal(toHex(frameOf(out)), toHex(r.bytes.subarray(r.at, r.at + 8)));
      assert.equal(out.data[AT + 8], 0xa5);
    });
  }
  await t.step("Ipv6FragmentHeader setters keep the other bits", () => {
    const out = bufferWith(FRAG_NONFIRST);
    const fh = new Ipv6FragmentHeader().reset(out, AT + 40);
    fh.setMoreFragments(true);
    fh.setFragmentOffset(65_528);
    fh.setIdentification(0xffffffff);
    fh.setNextHeader(58);
    assert.deepStrictEqual(
      [fh.moreFragments(), fh.fragmentOffset(), fh.identification(), fh.nextHeader()],
      [true, 65_528, 0xffffffff, 58],
    );
    fh.setMoreFragments(false);
    assert.equal(fh.fragmentOffset(), 65_528);
  });
  await t.step("Ipv6FragmentHeader.check() rejects 7 bytes", () => {
    const p = bufferWith(FRAG_NONFIRST.subarray(0, 47));
    assert.equal(new Ipv6FragmentHeader().reset(p, AT + 40).check(), false);
  });
});

Deno.test("Ipv6RoutingHeader reads type and segments left", () => {
  const p = bufferWith(DEST_ROUTING);
  const rh = new Ipv6RoutingHeader().reset(p, AT + 48);
  assert.equal(rh.check(), true);
  assert.deepStrictEqual(
    [rh.nextHeader(), rh.headerLen(), rh.routingType(), rh.segmentsLeft()],
    [17, 24, 0, 0],
  );
  assert.equal(rh.routingTypeOffset() - AT, 50);
  assert.equal(rh.segmentsLeftOffset() - AT, 51);
  rh.setSegmentsLeft(1);
  assert.equal(rh.segmentsLeft(), 1);
  const short = bufferWith(DEST_ROUTING.subarray(0, 60));
  assert.equal(new Ipv6RoutingHeader().reset(short, AT + 48).check(), false);
});
