import assert from "node:assert/strict";
import {
  mldMaxResponseCode,
  mldMaxResponseMs,
  MldPacket,
  mldQqicCode,
  mldQqiSeconds,
  MldRecordIterator,
  MldRecordType,
  MldRepr,
  writeMldPacket,
  writeRouterAlertHopByHop,
} from "../../../stack/wire/mld.ts";
import { Icmpv6Packet } from "../../../stack/wire/icmpv6.ts";
import { parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const ip6 = parseIpv6;
const A = ip6("2001:db8::1");
const B = ip6("2001:db8:1::2");

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors_ipv6.py; each
// is a whole IPv6 packet with the Router Alert Hop-by-Hop header.
// scapy 2.5.0: IPv6(src='fe80::ff', dst='ff02::1', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery2(mrd=10000, mladdr='::', S=0, QRV=2, QQIC=125)
const MLDV2_QUERY = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0024", // payload length 36
  "00", // next header 0
  "01", // hop limit 1
  "fe8000000000000000000000000000ff", // source fe80::ff
  "ff020000000000000000000000000001", // destination ff02::1
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "82", // ICMPv6 type 130
  "00", // code 0
  "5598", // checksum
  "2710", // maximum response 10000
  "0000", // reserved
  "00000000000000000000000000000000", // multicast address ::
  "02", // S=0 QRV=2
  "7d", // QQIC 125
  "0000", // number of sources 0
);

// scapy 2.5.0: IPv6(src='fe80::ff', dst='ff0e::101', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery2(mrd=0x8c00, mladdr='ff0e::101', S=1, QRV=7, QQIC=0x8f, sources=['2001:db8::1', '2001:db8:1::2'])
const MLDV2_GS_QUERY = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0044", // payload length 68
  "00", // next header 0
  "01", // hop limit 1
  "fe8000000000000000000000000000ff", // source fe80::ff
  "ff0e0000000000000000000000000101", // destination ff0e::101
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "82", // ICMPv6 type 130
  "00", // code 0
  "86e1", // checksum
  "8c00", // maximum response 35840
  "0000", // reserved
  "ff0e0000000000000000000000000101", // multicast address ff0e::101
  "0f", // S=1 QRV=7
  "8f", // QQIC 143
  "0002", // number of sources 2
  "20010db8000000000000000000000001", // source 2001:db8::1
  "20010db8000100000000000000000002", // source 2001:db8:1::2
);

// scapy 2.5.0: IPv6(src='fe80::1', dst='ff02::16', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst='ff02::1:ff00:1'), ICMPv6MLDMultAddrRec(rtype=1, dst='ff0e::101', sources=['2001:db8::ff']), ICMPv6MLDMultAddrRec(rtype=6, dst='ff0e::102', sources=['2001:db8::1', '2001:db8:1::2'])])
const MLDV2_REPORT = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "007c", // payload length 124
  "00", // next header 0
  "01", // hop limit 1
  "fe800000000000000000000000000001", // source fe80::1
  "ff020000000000000000000000000016", // destination ff02::16
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "8f", // ICMPv6 type 143
  "00", // code 0
  "df5a", // checksum
  "0000", // reserved
  "0003", // number of records 3
  "04000000", // record type 4, aux data 0, sources 0
  "ff0200000000000000000001ff000001", //   multicast address ff02::1:ff00:1
  "01000001", // record type 1, aux data 0, sources 1
  "ff0e0000000000000000000000000101", //   multicast address ff0e::101
  "20010db80000000000000000000000ff", //   source 2001:db8::ff
  "06000002", // record type 6, aux data 0, sources 2
  "ff0e0000000000000000000000000102", //   multicast address ff0e::102
  "20010db8000000000000000000000001", //   source 2001:db8::1
  "20010db8000100000000000000000002", //   source 2001:db8:1::2
);

// scapy 2.5.0: IPv6(src='fe80::ff', dst='ff02::1', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery(mrd=10000, mladdr='::')
const MLDV1_QUERY = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "00", // next header 0
  "01", // hop limit 1
  "fe8000000000000000000000000000ff", // source fe80::ff
  "ff020000000000000000000000000001", // destination ff02::1
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "82", // ICMPv6 type 130
  "00", // code 0
  "5819", // checksum
  "2710", // maximum response 10000
  "0000", // reserved
  "00000000000000000000000000000000", // multicast address ::
);

// scapy 2.5.0: IPv6(src='fe80::1', dst='ff0e::101', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport(mrd=0, mladdr='ff0e::101')
const MLDV1_REPORT = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "00", // next header 0
  "01", // hop limit 1
  "fe800000000000000000000000000001", // source fe80::1
  "ff0e0000000000000000000000000101", // destination ff0e::101
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "83", // ICMPv6 type 131
  "00", // code 0
  "7e0b", // checksum
  "0000", // maximum response 0
  "0000", // reserved
  "ff0e0000000000000000000000000101", // multicast address ff0e::101
);

// scapy 2.5.0: IPv6(src='fe80::1', dst='ff02::2', hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLDone(mrd=0, mladdr='ff0e::101')
const MLDV1_DONE = hex(
  "60000000", // version 6, traffic class 0x00, flow label 0x00000
  "0020", // payload length 32
  "00", // next header 0
  "01", // hop limit 1
  "fe800000000000000000000000000001", // source fe80::1
  "ff020000000000000000000000000002", // destination ff02::2
  "3a00", // Hop-by-Hop: next header 58, length 8 bytes
  "05020000", //   option 0x05 (Router Alert, action 00), length 2
  "0100", //   option 0x01 (PadN, action 00), length 0
  "84", // ICMPv6 type 132
  "00", // code 0
  "7e16", // checksum
  "0000", // maximum response 0
  "0000", // reserved
  "ff0e0000000000000000000000000101", // multicast address ff0e::101
);

const cases: { name: string; bytes: Uint8Array; repr: MldRepr }[] = [
  {
    name: "MldRepr parses and emits an MLDv2 general query",
    bytes: MLDV2_QUERY,
    repr: {
      kind: "queryV2",
      maxResponseCode: 10000,
      group: ip6("::"),
      suppress: false,
      qrv: 2,
      qqic: 125,
      sources: [],
    },
  },
  {
    name: "MldRepr parses and emits an MLDv2 group-and-source query with S, QRV 7, float codes",
    bytes: MLDV2_GS_QUERY,
    repr: {
      kind: "queryV2",
      maxResponseCode: 0x8c00,
      group: ip6("ff0e::101"),
      suppress: true,
      qrv: 7,
      qqic: 0x8f,
      sources: [A, B],
    },
  },
  {
    name: "MldRepr parses and emits an MLDv2 report with three records",
    bytes: MLDV2_REPORT,
    repr: {
      kind: "reportV2",
      records: [
        { type: MldRecordType.CHANGE_TO_EXCLUDE_MODE, group: ip6("ff02::1:ff00:1"), sources: [] },
        {
          type: MldRecordType.MODE_IS_INCLUDE,
          group: ip6("ff0e::101"),
          sources: [ip6("2001:db8::ff")],
        },
        { type: MldRecordType.BLOCK_OLD_SOURCES, group: ip6("ff0e::102"), sources: [A, B] },
      ],
    },
  },
  {
    name: "MldRepr parses and emits an MLDv1 query (24 bytes, RFC 3810 §8.1)",
    bytes: MLDV1_QUERY,
    repr: { kind: "queryV1", maxResponseDelay: 10000, group: ip6("::") },
  },
  {
    name: "MldRepr parses and emits an MLDv1 report",
    bytes: MLDV1_REPORT,
    repr: { kind: "reportV1", group: ip6("ff0e::101") },
  },
  {
    name: "MldRepr parses and emits an MLDv1 done",
    bytes: MLDV1_DONE,
    repr: { kind: "done", group: ip6("ff0e::101") },
  },
];

Deno.test("MldRepr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const mld = new MldPacket().reset(bufferWith(c.bytes), AT + 48);
      assert.equal(mld.check(), true);
      assert.equal(new Icmpv6Packet().reset(mld.buf, AT + 48).verifyChecksum(AT), true);
      assert.deepStrictEqual(MldRepr.parse(mld, AT), c.repr);
      const len = MldRepr.bufferLen(c.repr);
      assert.equal(len, c.bytes.length - 48);
      const out = blankBuffer(48 + len);
      out.data.set(c.bytes.subarray(0, 48), AT);
      MldRepr.emit(c.repr, out, AT + 48, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + 48 + len], 0xa5);
      // The whole-packet builder adds hop limit 1 and the Router Alert header.
      const whole = blankBuffer(48 + len);
      const n = writeMldPacket(whole, AT, c.bytes.slice(8, 24), c.bytes.slice(24, 40), c.repr);
      assert.equal(n, c.bytes.length);
      assert.equal(toHex(frameOf(whole)), toHex(c.bytes));
    });
  }
});

Deno.test("MldPacket reads the MLDv2 query fields in place", () => {
  const q = new MldPacket().reset(bufferWith(MLDV2_GS_QUERY), AT + 48);
  assert.equal(q.isV2Query(), true);
  assert.equal(q.maxResponseCode(), 0x8c00);
  assert.equal(q.maxResponseMs(), 57344); // (0xc00 | 0x1000) << 3
  assert.equal(q.suppressRouterProcessing(), true);
  assert.equal(q.qrv(), 7);
  assert.equal(q.qqic(), 0x8f);
  assert.equal(q.qqiSeconds(), 248); // (0xf | 0x10) << 3
  assert.equal(q.numberOfSources(), 2);
  assert.equal(q.sourceOffset(1), AT + 48 + 44);
  assert.equal(q.multicastAddressOffset(), AT + 56);
  const v1 = new MldPacket().reset(bufferWith(MLDV1_QUERY), AT + 48);
  assert.equal(v1.isV2Query(), false);
  assert.equal(v1.maxResponseMs(), 10000);
  const r = new MldPacket().reset(bufferWith(MLDV2_REPORT), AT + 48);
  const it = new MldRecordIterator().reset(r);
  const got: number[][] = [];
  while (it.next()) {
    got.push([it.recordType, it.numberOfSources, it.length, it.addressOffset() - AT]);
  }
  assert.deepStrictEqual(got, [[4, 0, 20, 60], [1, 1, 36, 80], [6, 2, 52, 116]]);
  assert.equal(it.error, false);
});

Deno.test("MLD Maximum Response Code and QQIC encodings (RFC 3810 §5.1.3, §5.1.9)", async (t) => {
  const rows: [number, number][] = [[0, 0], [10000, 10000], [32767, 32767], [0x8000, 32768], [
    0xffff,
    (0x0fff | 0x1000) * 2 ** 10,
  ]];
  for (const [code, ms] of rows) {
    await t.step(`mldMaxResponseMs(0x${code.toString(16)}) is ${ms}`, () => {
      assert.equal(mldMaxResponseMs(code), ms);
      assert.equal(mldMaxResponseCode(ms), code);
    });
  }
  await t.step("mldQqiSeconds and mldQqicCode round-trip", () => {
    for (const [c, s] of [[125, 125], [127, 127], [0x80, 128], [0x8f, 248], [0xff, 31744]]) {
      assert.equal(mldQqiSeconds(c!), s);
      assert.equal(mldQqicCode(s!), c);
    }
  });
});

Deno.test("MldPacket.check() rejects malformed messages without throwing", async (t) => {
  const rows: [string, Uint8Array, (b: Uint8Array) => void][] = [
    ["MldPacket.check() rejects an MLDv1 report of 23 bytes", MLDV1_REPORT.slice(0, 71), () => {}],
    ["MldPacket.check() rejects a query of 25 bytes", MLDV2_QUERY.slice(0, 73), () => {}],
    [
      "MldPacket.check() rejects a query whose sources run past the message",
      MLDV2_GS_QUERY.slice(),
      (b) => (b[48 + 27] = 3),
    ],
    [
      "MldPacket.check() rejects a report with more records than bytes",
      MLDV2_REPORT.slice(),
      (b) => (b[48 + 7] = 4),
    ],
    [
      "MldPacket.check() rejects a record whose sources run past the message",
      MLDV2_REPORT.slice(),
      (b) => (b[48 + 8 + 3] = 9),
    ],
    [
      "MldPacket.check() rejects a record whose aux data runs past the message",
      MLDV2_REPORT.slice(),
      (b) => (b[48 + 8 + 1] = 1),
    ],
    ["MldPacket.check() rejects a non-MLD type", MLDV1_DONE.slice(), (b) => (b[48] = 128)],
  ];
  for (const [name, bytes, patch] of rows) {
    await t.step(name, () => {
      patch(bytes);
      const mld = new MldPacket().reset(bufferWith(bytes), AT + 48);
      assert.equal(mld.check(), false);
      assert.equal(MldRepr.parse(mld, AT), null);
    });
  }
  await t.step("MldRepr.parse() rejects a bad checksum", () => {
    const b = MLDV1_DONE.slice();
    b[71] = b[71]! ^ 1;
    assert.equal(MldRepr.parse(new MldPacket().reset(bufferWith(b), AT + 48), AT), null);
  });
});

Deno.test("writeRouterAlertHopByHop writes the header scapy builds", () => {
  const out = blankBuffer(8);
  assert.equal(writeRouterAlertHopByHop(out, AT, 58), 8);
  assert.equal(toHex(frameOf(out)), toHex(MLDV1_DONE.subarray(40, 48)));
  assert.equal(out.data[AT + 8], 0xa5);
});
