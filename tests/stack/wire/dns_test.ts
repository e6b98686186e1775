/**
 * DNS messages (stack/wire/dns.ts): byte vectors written by hand from
 * RFC 1035 §4 (header, questions, records, compression) and RFC 6891 (OPT),
 * every parse error on a minimal vector, names and their escapes, the
 * writer's compression; a differential test against the dns-packet npm
 * package on a seeded corpus (both directions), a tshark cross-check of a
 * response the writer built, and a seeded mutation fuzz of the reader.
 * Without tshark that test is ignored, except under CI=true.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
// The oracle is a test-only dependency, pinned here rather than in deno.json.
import dnsPacket from "dns-packet";
// Its own tables of type, class, RCODE and opcode numbers, so that those are not ours too.
import dpClasses from "dns-packet/classes.js";
import dpOpcodes from "dns-packet/opcodes.js";
import dpRcodes from "dns-packet/rcodes.js";
import dpTypes from "dns-packet/types.js";
import {
  DNS_HEADER_LEN,
  DNS_PORT,
  DnsClass,
  DnsFlag,
  type DnsMessage,
  dnsNameKey,
  type DnsParseError,
  DnsQueryView,
  type DnsRecord,
  DnsType,
  DnsWriter,
  encodeDnsName,
  parseDns,
  readDnsName,
  readDnsQuery,
  rewriteDnsTtls,
  setDnsId,
  walkDnsName,
} from "../../../stack/wire/dns.ts";
import { formatIpv4, parseIpv4, parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { parseMac } from "../../../stack/wire/mac_address.ts";
import { writeEthernetHeader } from "../../../stack/wire/ethernet.ts";
import { IpProtocol, IPV4_MIN_HEADER_LEN, writeIpv4Header } from "../../../stack/wire/ipv4.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { UdpRepr } from "../../../stack/wire/udp.ts";
import { AT, hex, seeded, toHex } from "./_helpers.ts";
import { haveTshark, pcap, tshark } from "./_pcap.ts";

/** `b` placed at {@link AT} in a larger buffer of 0xa5, as a view, so byteOffset is not 0. */
function atOffset(b: Uint8Array): Uint8Array {
  const big = new Uint8Array(AT + b.length + 16).fill(0xa5);
  big.set(b, AT);
  return big.subarray(AT, AT + b.length);
}

function ok(r: DnsMessage | DnsParseError, what = "message"): DnsMessage {
  assert.ok(typeof r !== "string", `${what}: parse failed: ${r}`);
  return r;
}

function name(r: ReturnType<typeof readDnsName>): { name: string; end: number } {
  assert.ok(typeof r !== "string", `name: ${r}`);
  return r;
}

/** A header: id, flags, then the four counts. */
function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number) {
  const h = (n: number) => n.toString(16).padStart(4, "0");
  return h(id) + h(flags) + h(qd) + h(an) + h(ns) + h(ar);
}

// ---------------------------------------------------------------------------
// 1. Hand-written vectors (RFC 1035 §4.1, §4.1.4; RFC 6891 §6.1.2).

/** A standard query for www.example.com A, recursion desired. */
const QUERY = hex(
  "1234", // ID
  "0100", // QR=0 opcode QUERY, RD
  "0001 0000 0000 0000", // QDCOUNT 1
  "03 777777 07 6578616d706c65 03 636f6d 00", // @12 www.example.com
  "0001 0001", // @29 QTYPE A, QCLASS IN
);

/**
 * Its answer: a CNAME chain whose owner names are pointers (the first to the
 * question), an A record, an NS in authority, a glue A and an OPT record
 * (UDP size 1232, DO) in additional.
 */
const RESPONSE = hex(
  "1234 8180", // ID, QR RD RA, NOERROR
  "0001 0003 0001 0002",
  "03 777777 07 6578616d706c65 03 636f6d 00", // @12 www.example.com
  "0001 0001", // A IN
  // @33 www.example.com (→12) CNAME IN 300: cdn + →16 (example.com)
  "c00c 0005 0001 0000012c 0006",
  "03 63646e c010", // @45 cdn.example.com
  // @51 cdn.example.com (→45) CNAME IN 60: edge.net
  "c02d 0005 0001 0000003c 000a",
  "04 65646765 03 6e6574 00", // @63 edge.net, "net" @68
  // @73 edge.net (→63) A IN 30 192.0.2.1
  "c03f 0001 0001 0000001e 0004 c0000201",
  // @89 net (→68) NS IN 172800: a.gtld-servers.net
  "c044 0002 0001 0002a300 0011",
  "01 61 0c 67746c642d73657276657273 c044", // @101 a.gtld-servers.net
  // @118 a.gtld-servers.net (→101) A IN 172800 192.5.6.30
  "c065 0001 0001 0002a300 0004 c005061e",
  // @134 OPT: root, type 41, UDP size 1232, ext-rcode 0, version 0, DO, no options
  "00 0029 04d0 00 00 8000 0000",
);

Deno.test("dns: a hand-written query parses field by field", () => {
  for (const b of [QUERY, atOffset(QUERY)]) {
    assert.deepEqual(ok(parseDns(b)), {
      id: 0x1234,
      flags: 0x0100,
      rcode: 0,
      opcode: 0,
      questions: [{
        name: "www.example.com",
        type: DnsType.A,
        class: DnsClass.IN,
        offset: 12,
        end: 33,
      }],
      answers: [],
      authority: [],
      additional: [],
      edns: null,
      length: 33,
    });
  }
  assert.equal(QUERY.length, 33);
});

Deno.test("dns: a hand-written response with compression, NS, glue and OPT", () => {
  const rr = (
    name: string,
    type: number,
    ttl: number,
    ttlOffset: number,
    rdataLength: number,
  ): DnsRecord => ({
    name,
    type,
    class: DnsClass.IN,
    ttl,
    ttlOffset,
    rdataOffset: ttlOffset + 6,
    rdataLength,
  });
  const expected: DnsMessage = {
    id: 0x1234,
    flags: 0x8180,
    rcode: 0,
    opcode: 0,
    questions: [{
      name: "www.example.com",
      type: DnsType.A,
      class: DnsClass.IN,
      offset: 12,
      end: 33,
    }],
    answers: [
      rr("www.example.com", DnsType.CNAME, 300, 39, 6),
      rr("cdn.example.com", DnsType.CNAME, 60, 57, 10),
      rr("edge.net", DnsType.A, 30, 79, 4),
    ],
    authority: [rr("net", DnsType.NS, 172800, 95, 17)],
    additional: [rr("a.gtld-servers.net", DnsType.A, 172800, 124, 4)],
    edns: { udpSize: 1232, extendedRcode: 0, version: 0, dnssecOk: true, udpSizeOffset: 137 },
    length: 145,
  };
  assert.equal(RESPONSE.length, 145);
  for (const b of [RESPONSE, atOffset(RESPONSE)]) assert.deepEqual(ok(parseDns(b)), expected);
  // The rest of a datagram after the message is ignored.
  const padded = new Uint8Array(RESPONSE.length + 3).fill(0xee);
  padded.set(RESPONSE);
  assert.deepEqual(ok(parseDns(padded)), expected);

  // The data of each record, read where the offsets say.
  const m = ok(parseDns(RESPONSE));
  const rdataName = (r: DnsRecord) => {
    const n = name(readDnsName(RESPONSE, r.rdataOffset));
    assert.equal(n.end, r.rdataOffset + r.rdataLength, "the name fills the rdata");
    return n.name;
  };
  assert.equal(rdataName(m.answers[0]!), "cdn.example.com");
  assert.equal(rdataName(m.answers[1]!), "edge.net");
  assert.equal(toHex(RESPONSE.subarray(85, 89)), "c0000201");
  assert.equal(rdataName(m.authority[0]!), "a.gtld-servers.net");
  assert.equal(toHex(RESPONSE.subarray(130, 134)), "c005061e");
  // The OPT record's class field holds the UDP size.
  assert.equal((RESPONSE[137]! << 8) | RESPONSE[138]!, 1232);
  // readDnsName returns where the name ends in place: after the first pointer.
  assert.deepEqual(readDnsName(RESPONSE, 33), { name: "www.example.com", end: 35 });
  assert.deepEqual(readDnsName(RESPONSE, 45), { name: "cdn.example.com", end: 51 });
  assert.deepEqual(readDnsName(RESPONSE, 16), { name: "example.com", end: 29 });
  assert.deepEqual(readDnsName(RESPONSE, 134), { name: "", end: 135 });
});

Deno.test("dns: opcode, RCODE and the OPT record's extended RCODE and version", () => {
  const b = RESPONSE.slice();
  b[2] = 0x2d; // QR=0, opcode 5 (UPDATE), AA, RD
  b[3] = 0x05; // RA=0, RCODE 5 (REFUSED)
  b[139] = 0x01; // extended RCODE upper bits 1
  b[140] = 0x00; // version 0
  b[141] = 0x00; // DO clear
  const m = ok(parseDns(b));
  assert.equal(m.flags, 0x2d05);
  assert.equal(m.opcode, 5);
  assert.equal(m.rcode, 5);
  assert.equal(m.flags & DnsFlag.AA, DnsFlag.AA);
  assert.equal(m.flags & DnsFlag.RD, DnsFlag.RD);
  assert.equal(m.flags & DnsFlag.QR, 0);
  assert.deepEqual(m.edns, {
    udpSize: 1232,
    extendedRcode: 1,
    version: 0,
    dnssecOk: false,
    udpSizeOffset: 137,
  });
  b[140] = 0x01; // version 1
  b[141] = 0x7f; // every Z bit but DO
  b[142] = 0xff;
  assert.deepEqual(ok(parseDns(b)).edns?.version, 1);
  assert.deepEqual(ok(parseDns(b)).edns?.dnssecOk, false);
  b[2] = 0xf8; // QR, opcode 15
  assert.equal(ok(parseDns(b)).opcode, 15);
});

// ---------------------------------------------------------------------------
// 2. Errors.

function err(b: Uint8Array): DnsMessage | DnsParseError {
  const r = parseDns(b);
  // The same answer when the bytes sit at an offset in a larger buffer.
  const r2 = parseDns(atOffset(b));
  assert.deepEqual(r2, r);
  return r;
}

Deno.test("dns: malformed messages are named, never thrown", () => {
  // Header.
  assert.equal(err(new Uint8Array(0)), "truncated");
  assert.equal(err(hex("1234 0100 0000 0000 0000 00")), "truncated", "11 bytes");
  assert.deepEqual(ok(err(hex(header(1, 0, 0, 0, 0, 0)))).length, 12, "12 bytes, no sections");

  // Counts larger than the bytes could hold (5 per question, 11 per record).
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0))), "count-overrun");
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "00 0001 00")), "count-overrun", "4 < 5");
  assert.equal(err(hex(header(1, 0, 0, 1, 0, 0), "00 0001 0001 00000000 00")), "count-overrun");
  assert.equal(err(hex(header(1, 0, 0, 0, 0, 0xffff), "00".repeat(100))), "count-overrun");
  assert.equal(err(hex(header(1, 0, 0xffff, 0xffff, 0xffff, 0xffff))), "count-overrun");
  // Exactly the minimum: a root question, a root record with no data.
  const tight = ok(
    err(hex(header(1, 0, 1, 1, 0, 0), "00 0001 0001", "00 0001 0001 00000007 0000")),
  );
  assert.equal(tight.questions[0]!.name, "");
  assert.equal(tight.answers[0]!.ttl, 7);
  assert.equal(tight.length, 28);

  // A label running past the end; a name with no final zero; a cut pointer.
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "07 6578616d706c")), "truncated");
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "03 636f6d 02 6f")), "truncated");
  const cut = hex(header(1, 0, 1, 0, 0, 0), "03 636f6d c0");
  assert.equal(err(cut), "truncated");
  assert.equal(readDnsName(cut, 12), "truncated", "the pointer's second byte is missing");
  assert.equal(readDnsName(hex("03 636f6d c1"), 0), "truncated");
  // The question's type and class cut; a record's fixed part cut; rdlength past the end.
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "03 636f6d 00 00")), "truncated");
  assert.equal(
    err(hex(header(1, 0, 0, 1, 0, 0), "05 6162636465 00 0001 0001 00")),
    "truncated",
  );
  assert.equal(
    err(hex(header(1, 0, 0, 1, 0, 0), "00 0001 0001 00000000 0005 0102 03 04")),
    "truncated",
  );
  const rd = RESPONSE.slice();
  rd[128] = 0x00;
  rd[129] = 0x05; // glue A rdlength 5: its data runs into the OPT record...
  assert.equal(err(rd), "truncated", "...which then runs past the end");
  rd[129] = 0xff;
  assert.equal(err(rd), "truncated");

  // Label types 0x40 (extended, RFC 6891 §5) and 0x80 (reserved).
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "41 61 00 0001 0001")), "bad-label-type");
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "80 61 00 0001 0001")), "bad-label-type");
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "bf 61 00 0001 0001")), "bad-label-type");
  // A 64-byte label: its length byte 0x40 is the extended label type, so
  // the wire cannot carry a label over 63 ("label-too-long" is for text).
  const l64 = "40" + "61".repeat(64) + "00 0001 0001";
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), l64)), "bad-label-type");
  const l63 = "3f" + "61".repeat(63) + "00 0001 0001";
  assert.equal(ok(err(hex(header(1, 0, 1, 0, 0, 0), l63))).questions[0]!.name, "a".repeat(63));

  // Two OPT records.
  const opt = "00 0029 1000 00000000 0000";
  assert.equal(err(hex(header(1, 0, 0, 0, 0, 2), opt, opt)), "two-opt");
  assert.equal(ok(err(hex(header(1, 0, 0, 0, 0, 1), opt))).edns?.udpSize, 4096);
  // An OPT record outside the additional section is an ordinary record.
  const inAnswer = ok(err(hex(header(1, 0, 0, 1, 0, 1), opt, opt)));
  assert.equal(inAnswer.answers[0]!.type, DnsType.OPT);
  assert.equal(inAnswer.edns?.udpSize, 4096);
});

Deno.test("dns: compression pointers must point back, before the name", () => {
  // A pointer to itself.
  const self = hex(header(1, 0, 1, 0, 0, 0), "c00c 0001 0001");
  assert.equal(err(self), "pointer-loop");
  assert.equal(readDnsName(self, 12), "pointer-loop");
  // A pointer back into the labels of its own name: 12: "abc" then →12.
  const own = hex(header(1, 0, 1, 0, 0, 0), "03 616263 c00c 0001 0001");
  assert.equal(err(own), "pointer-loop");
  // A forward pointer, to a name that is there and well formed.
  const fwd = hex(header(1, 0, 2, 0, 0, 0), "c012 0001 0001", "03 636f6d 00 0001 0001");
  assert.equal(err(fwd), "bad-pointer");
  assert.deepEqual(readDnsName(fwd, 18), { name: "com", end: 23 });
  assert.throws(() => dnsPacket.decode(Buffer.from(fwd)), /bad pointer/, "dns-packet agrees");
  // A pointer past the end of the message.
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "c0ff 0001 0001")), "bad-pointer");
  assert.equal(err(hex(header(1, 0, 1, 0, 0, 0), "ffff 0001 0001")), "bad-pointer");

  // Two names pointing at each other: 12 → 18 and 18 → 12. Read from 12 the
  // first jump is forward; read from 18 the jump back to 12 is fine and the
  // next one (to 18) goes forward from 12. Neither hangs.
  const pair = hex(header(1, 0, 2, 0, 0, 0), "c012 0001 0001", "c00c 0001 0001");
  assert.equal(err(pair), "bad-pointer");
  assert.equal(readDnsName(pair, 12), "bad-pointer");
  assert.equal(readDnsName(pair, 18), "bad-pointer");
  // A chain of names, each pointing at the one before: every hop goes back.
  const chain = hex(
    header(1, 0, 3, 0, 0, 0),
    "01 61 00 0001 0001", // @12 "a"
    "01 62 c00c 0001 0001", // @19 "b" →12
    "01 63 c013 0001 0001", // @27 "c" →19
  );
  assert.deepEqual(ok(err(chain)).questions.map((q) => q.name), ["a", "b.a", "c.b.a"]);
  // Close the loop: @14 (the end of "a") becomes →27, and 27 →19 →12 →27.
  const loop = chain.slice();
  loop[14] = 0xc0;
  loop[15] = 27;
  assert.equal(readDnsName(loop, 27), "bad-pointer", "27 →19 →12 then forward to 27");
  assert.equal(err(loop), "bad-pointer");

  // A chain of pointers, each to the one before it: @12 the root, @13 →12,
  // @15 →13, ... Up to 127 hops are followed; a 128th is taken for a loop.
  const steps = new Uint8Array(13 + 2 * 200);
  for (let k = 0; k < 200; k++) {
    const to = k === 0 ? 12 : 13 + 2 * (k - 1);
    steps[13 + 2 * k] = 0xc0 | (to >> 8);
    steps[14 + 2 * k] = to & 0xff;
  }
  const hop127 = 13 + 2 * 126;
  assert.deepEqual(readDnsName(steps, hop127), { name: "", end: hop127 + 2 });
  assert.equal(readDnsName(steps, hop127 + 2), "pointer-loop");
  assert.equal(readDnsName(steps, 13 + 2 * 199), "pointer-loop");
  // The same with a label before each pointer: @12 "a" and the root, then
  // @16, @20, ... a label and a pointer to the name before. 127 labels are 255 bytes.
  const labels = new Uint8Array(12 + 4 * 200);
  labels.set([1, 0x61, 0, 0], 12);
  for (let k = 1; k < 200; k++) {
    const at = 12 + 4 * k, to = at - 4;
    labels.set([1, 0x61 + (k % 26), 0xc0 | (to >> 8), to & 0xff], at);
  }
  const n127 = name(readDnsName(labels, 12 + 4 * 126));
  assert.equal(n127.name.split(".").length, 127);
  assert.equal(n127.end, 12 + 4 * 126 + 4);
  assert.equal(readDnsName(labels, 12 + 4 * 127), "name-too-long");
  assert.equal(readDnsName(labels, 12 + 4 * 199), "name-too-long");
});

Deno.test("dns: a name expanded through pointers is at most 255 bytes", () => {
  const label = (c: string, n: number) => n.toString(16).padStart(2, "0") + c.repeat(n);
  // @12 three 63-byte labels: 3 × 64 + 1 = 193 bytes.
  const base = label("61", 63) + label("62", 63) + label("63", 63) + "00 0001 0001";
  // @209 a 61-byte label + →12: 62 + 193 = 255, the limit.
  const at = 12 + 193 + 4;
  const fits = hex(header(1, 0, 2, 0, 0, 0), base, label("64", 61), "c00c 0001 0001");
  const m = ok(err(fits));
  assert.equal(m.questions[1]!.name.length, 253, "255 wire bytes are 253 characters");
  assert.equal(m.questions[1]!.offset, at);
  assert.equal(m.questions[1]!.end, at + 62 + 2 + 4);
  // One byte more: 256.
  const over = hex(header(1, 0, 2, 0, 0, 0), base, label("64", 62), "c00c 0001 0001");
  assert.equal(err(over), "name-too-long");
  assert.equal(readDnsName(over, at), "name-too-long");
  assert.deepEqual(readDnsName(over, 12), { name: m.questions[0]!.name, end: 12 + 193 });
  // The same without pointers: four labels of 63, 63, 63, 62.
  const flat = hex(header(1, 0, 1, 0, 0, 0), label("61", 63).repeat(3), label("62", 62), "00");
  assert.equal(readDnsName(flat, 12), "name-too-long");
  assert.throws(() => dnsPacket.decode(Buffer.from(over)), /name too long/, "dns-packet agrees");
});

// ---------------------------------------------------------------------------
// 3. Names.

Deno.test("dns: labels as text escape '.', '\\\\' and non-printable bytes", () => {
  const b = hex(header(1, 0, 1, 0, 0, 0), "03 612e62 01 00 02 5c41 03 20 7f ff 00 0001 0001");
  const q = ok(parseDns(b)).questions[0]!;
  assert.equal(q.name, "a\\.b.\\000.\\\\A.\\032\\127\\255");
  // Back to the same bytes.
  assert.equal(toHex(encodeDnsName(q.name)), toHex(b.subarray(12, b.length - 4)));
  // "!" and "~" are the printable ends.
  const edges = hex(header(1, 0, 1, 0, 0, 0), "02 217e 00 0001 0001");
  assert.equal(ok(parseDns(edges)).questions[0]!.name, "!~");
});

Deno.test("dns: dnsNameKey folds ASCII letters only", () => {
  assert.equal(dnsNameKey("WwW.ExAmPlE.CoM"), "www.example.com");
  assert.equal(dnsNameKey("A-Z0-9.az"), "a-z0-9.az");
  assert.equal(dnsNameKey("\\065\\.B"), "\\065\\.b", "escapes are left as they are");
  assert.equal(dnsNameKey("ÀÉ"), "ÀÉ", "not beyond ASCII (RFC 4343 §3)");
  assert.equal(dnsNameKey(""), "");
  // Names that differ only in case have one key.
  const a = ok(parseDns(QUERY)).questions[0]!.name;
  const upper = QUERY.slice();
  for (let i = 13; i < 28; i++) if (upper[i]! >= 0x61 && upper[i]! <= 0x7a) upper[i]! -= 0x20;
  const b = ok(parseDns(upper)).questions[0]!.name;
  assert.equal(b, "WWW.EXAMPLE.COM");
  assert.equal(dnsNameKey(b), dnsNameKey(a));
});

Deno.test("dns: encodeDnsName writes labels, escapes, and round-trips", () => {
  assert.equal(toHex(encodeDnsName("www.example.com")), "03777777076578616d706c6503636f6d00");
  assert.equal(toHex(encodeDnsName("www.example.com.")), "03777777076578616d706c6503636f6d00");
  assert.equal(toHex(encodeDnsName("")), "00");
  assert.equal(toHex(encodeDnsName(".")), "00");
  assert.equal(toHex(encodeDnsName("a\\.b")), "03612e6200", "an escaped dot is in the label");
  assert.equal(toHex(encodeDnsName("a\\.")), "02612e00", "a final escaped dot is not the root");
  assert.equal(toHex(encodeDnsName("\\000")), "010000");
  assert.equal(toHex(encodeDnsName("\\255\\032x")), "03ff207800");
  assert.equal(toHex(encodeDnsName("\\\\")), "015c00");
  assert.equal(toHex(encodeDnsName("a\\\\")), "02615c00");
  assert.equal(
    toHex(encodeDnsName("a\\\\.")),
    "02615c00",
    "an escaped backslash, then the root dot",
  );
  assert.equal(toHex(encodeDnsName("a\\\\\\.")), "03615c2e00", "\\\\ then \\.");
  assert.equal(toHex(encodeDnsName("\\x")), "017800", "\\X is X");
  for (
    const n of [
      "www.example.com",
      "a\\.b.c",
      "\\000\\001.\\255",
      "\\\\.x\\\\y",
      "\\032sp\\127",
      "a".repeat(63) + ".b",
      "MiXeD.CaSe",
      "x\\\\",
      "",
    ]
  ) {
    const w = encodeDnsName(n);
    assert.deepEqual(readDnsName(w, 0), { name: n, end: w.length }, n);
    if (n !== "") assert.deepEqual(encodeDnsName(n + "."), w, `${n} with a trailing dot`);
  }
  // The longest name: 255 bytes.
  const max = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
  assert.equal(encodeDnsName(max).length, 255);
  assert.equal(encodeDnsName(max + ".").length, 255);
});

Deno.test("dns: encodeDnsName throws RangeError for names the wire cannot carry", () => {
  for (const n of ["a..b", ".a", "a.b..", "..", "a.\\"]) {
    assert.throws(() => encodeDnsName(n), RangeError, n);
  }
  assert.throws(() => encodeDnsName("a".repeat(64)), RangeError);
  assert.throws(() => encodeDnsName("x." + "a".repeat(64) + ".y"), RangeError);
  assert.throws(() => encodeDnsName("\\097".repeat(64)), RangeError, "64 bytes written as escapes");
  const over = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".");
  assert.throws(() => encodeDnsName(over), RangeError, "256 bytes");
  assert.throws(() => encodeDnsName(over + "."), RangeError, "256 bytes, trailing dot");
  assert.throws(() => encodeDnsName("a\\"), RangeError, "a lone backslash at the end");
});

// ---------------------------------------------------------------------------
// 4. The writer, setDnsId, rewriteDnsTtls.

Deno.test("dns: the writer compresses names against those written before", () => {
  const w = new DnsWriter(new Uint8Array(512).fill(0xa5));
  w.header({ id: 0xbeef, flags: DnsFlag.QR | DnsFlag.RD, qd: 2, an: 3 })
    .question("www.example.com", DnsType.A) // @12
    .question("mail.Example.COM", DnsType.MX) // @33: "mail" + →16
    .nameRecord("WWW.EXAMPLE.COM", DnsType.CNAME, 60, "mail.example.com") // @44: →12, rdata →33
    .nameRecord("com", DnsType.NS, 3600, "x.mail.example.com") // @58: →24, rdata "x" →33
    .record("x.mail.example.com", DnsType.A, 5, hex("c0000201")) // @74: →70
    .name(""); // the root is one byte
  const b = w.bytes();
  assert.equal(
    toHex(b),
    toHex(hex(
      "beef 8100 0002 0003 0000 0000",
      "03 777777 07 6578616d706c65 03 636f6d 00 0001 0001",
      "04 6d61696c c010 000f 0001",
      "c00c 0005 0001 0000003c 0002 c021",
      "c018 0002 0001 00000e10 0004 01 78 c021",
      "c046 0001 0001 00000005 0004 c0000201",
      "00",
    )),
  );
  assert.equal(w.length, b.length);
  assert.equal(b.buffer, w.buf.buffer, "bytes() is a view");
  const m = ok(parseDns(b.subarray(0, b.length - 1)));
  assert.deepEqual(m.questions.map((q) => [q.name, q.type]), [
    ["www.example.com", DnsType.A],
    ["mail.example.com", DnsType.MX], // the suffix's case comes from the first one
  ]);
  assert.deepEqual(m.answers.map((r) => [r.name, r.type, r.ttl, r.rdataLength]), [
    ["www.example.com", DnsType.CNAME, 60, 2],
    ["com", DnsType.NS, 3600, 4],
    ["x.mail.example.com", DnsType.A, 5, 4],
  ]);
  assert.equal(name(readDnsName(b, m.answers[0]!.rdataOffset)).name, "mail.example.com");
  assert.equal(name(readDnsName(b, m.answers[1]!.rdataOffset)).name, "x.mail.example.com");

  // header() starts over: no pointer into the previous message.
  w.header({ id: 1, flags: 0, qd: 1 }).question("mail.example.com", DnsType.A);
  assert.equal(toHex(w.bytes().subarray(12, 30)), "046d61696c076578616d706c6503636f6d00");
  assert.equal(ok(parseDns(w.bytes())).questions[0]!.name, "mail.example.com");

  // Labels with escapes compress as labels: "a\.b" is one label, not "a" + "b".
  w.header({ id: 2, flags: 0, qd: 3 })
    .question("a\\.b.example", DnsType.A)
    .question("b.example", DnsType.A)
    .question("x.a\\.b.example", DnsType.A);
  assert.equal(
    toHex(w.bytes().subarray(12)),
    "03612e62076578616d706c6500 00010001 0162c010 00010001 0178c00c 00010001".replace(/ /g, ""),
  );
  assert.deepEqual(ok(parseDns(w.bytes())).questions.map((q) => q.name), [
    "a\\.b.example",
    "b.example",
    "x.a\\.b.example",
  ]);
});

Deno.test("dns: the writer points only below 0x4000", () => {
  const w = new DnsWriter(new Uint8Array(0x5000));
  w.header({ id: 3, flags: 0, an: 3 })
    .record("far.example", DnsType.TXT, 1, new Uint8Array(0x4000))
    .nameRecord("b.test", DnsType.CNAME, 1, "b.test")
    .nameRecord("far.example", DnsType.CNAME, 1, "a.far.example");
  const b = w.bytes();
  const m = ok(parseDns(b));
  const [, second, third] = m.answers;
  // "b.test" first appears past 0x4000: written out both times.
  assert.ok(second!.ttlOffset - 4 - 8 >= 0x4000);
  assert.equal(second!.rdataLength, 8);
  assert.equal(name(readDnsName(b, second!.rdataOffset)).name, "b.test");
  // "far.example" (@12) is still a pointer target.
  assert.equal(toHex(b.subarray(third!.ttlOffset - 6, third!.ttlOffset - 4)), "c00c");
  assert.equal(third!.rdataLength, 4);
  assert.equal(toHex(b.subarray(third!.rdataOffset, b.length)), "0161c00c");
  assert.equal(name(readDnsName(b, third!.rdataOffset)).name, "a.far.example");
});

Deno.test("dns: the writer's OPT record and its size checks", () => {
  const w = new DnsWriter(new Uint8Array(64));
  w.header({ id: 9, flags: DnsFlag.RD, qd: 1, ar: 1 }).question("a.b", DnsType.AAAA).opt(
    1232,
    true,
  );
  assert.equal(toHex(w.bytes().subarray(21)), toHex(hex("00 0029 04d0 00008000 0000")));
  assert.deepEqual(ok(parseDns(w.bytes())).edns, {
    udpSize: 1232,
    extendedRcode: 0,
    version: 0,
    dnssecOk: true,
    udpSizeOffset: 24,
  });
  w.header({ id: 9, flags: 0, ar: 1 }).opt(512);
  assert.equal(toHex(w.bytes().subarray(12)), "0000290200000000000000");
  assert.equal(ok(parseDns(w.bytes())).edns?.dnssecOk, false);

  assert.throws(() => new DnsWriter(new Uint8Array(11)).header({ id: 1, flags: 0 }), RangeError);
  assert.throws(
    () => new DnsWriter(new Uint8Array(22)).header({ id: 1, flags: 0 }).opt(512),
    RangeError,
  );
  new DnsWriter(new Uint8Array(23)).header({ id: 1, flags: 0 }).opt(512);
  // "a.b" takes 5 bytes, the question 9.
  assert.throws(
    () => new DnsWriter(new Uint8Array(20)).header({ id: 1, flags: 0 }).question("a.b", 1),
    RangeError,
  );
  new DnsWriter(new Uint8Array(21)).header({ id: 1, flags: 0 }).question("a.b", 1);
  // A compressed name needs only its labels and the pointer.
  const c = new DnsWriter(new Uint8Array(21 + 5));
  c.header({ id: 1, flags: 0 }).question("a.b", 1).name("x.b");
  assert.equal(toHex(c.bytes().subarray(21)), "0178c00e");
  assert.throws(() => c.name("yy.b"), RangeError);
  // Record and nameRecord.
  const r = new DnsWriter(new Uint8Array(12 + 2 + 10 + 3));
  r.header({ id: 1, flags: 0 });
  assert.throws(() => r.record("a", 1, 1, new Uint8Array(4)), RangeError);
  assert.throws(
    () => new DnsWriter(new Uint8Array(70_000)).record("a", 1, 1, new Uint8Array(65_536)),
    RangeError,
  );
  const n = new DnsWriter(new Uint8Array(12 + 3 + 10 + 2));
  n.header({ id: 1, flags: 0 }).nameRecord("a", DnsType.CNAME, 1, "a");
  assert.equal(
    toHex(n.bytes().subarray(12)),
    "0161 00 0005 0001 00000001 0002 c00c".replace(/ /g, ""),
  );
  assert.throws(() => encodeDnsName("a".repeat(64)), RangeError);
  assert.throws(() => n.name("a".repeat(64)), RangeError, "a bad name is a RangeError too");
});

Deno.test("dns: setDnsId and rewriteDnsTtls change only their bytes", () => {
  const diff = (a: Uint8Array, b: Uint8Array) => {
    const at: number[] = [];
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) at.push(i);
    return at;
  };
  const b = atOffset(RESPONSE);
  const whole = new Uint8Array(b.buffer);
  const before = whole.slice();
  setDnsId(b, 0xabcd);
  assert.deepEqual(diff(before, whole), [AT, AT + 1]);
  assert.equal(ok(parseDns(b)).id, 0xabcd);
  setDnsId(b, 0x1234);
  assert.deepEqual(diff(before, whole), []);

  const m = ok(parseDns(b));
  const seen: number[] = [];
  rewriteDnsTtls(b, m, (t) => {
    seen.push(t);
    return t === 30 ? 0 : t - 10;
  });
  assert.deepEqual(seen, [300, 60, 30, 172800, 172800], "answers, authority, additional; not OPT");
  const changed = diff(before, whole).map((i) => i - AT);
  assert.deepEqual(changed, [42, 60, 82, 97, 98, 126, 127]);
  const again = ok(parseDns(b));
  assert.deepEqual(
    [...again.answers, ...again.authority, ...again.additional].map((r) => r.ttl),
    [290, 50, 0, 172790, 172790],
  );
  assert.deepEqual(again.edns, m.edns, "the OPT record's TTL field (DO bit) is left alone");
  // A value over 32 bits is taken modulo 2^32; all four bytes are written.
  rewriteDnsTtls(b, again, () => 0x1_0203_0405);
  assert.equal(toHex(b.subarray(39, 43)), "02030405");
  assert.equal(toHex(b.subarray(124, 128)), "02030405");
  assert.equal(whole[AT - 1], 0xa5);
  assert.equal(whole[AT + b.length], 0xa5);
});

// ---------------------------------------------------------------------------
// 5. Differential against dns-packet.

// deno-lint-ignore no-explicit-any
type Dp = any;

/** A small generator over {@link seeded}. */
class Rand {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = seeded(seed);
  }
  u32(): number {
    return this.#next();
  }
  int(n: number): number {
    return this.#next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(n: number): boolean {
    return this.int(n) === 0;
  }
}

const LDH = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";

function randLabel(r: Rand): string {
  const len = r.chance(12) ? 20 + r.int(44) : 1 + r.int(10);
  let s = "";
  for (let k = 0; k < len; k++) s += r.pick([...LDH]);
  return s;
}

function randName(r: Rand): string {
  const labels: string[] = [];
  const n = 1 + r.int(5);
  for (let k = 0; k < n; k++) labels.push(randLabel(r));
  while (labels.reduce((w, l) => w + 1 + l.length, 1) > 255) labels.pop();
  return labels.join(".");
}

function randCase(r: Rand, s: string): string {
  return [...s].map((c) => r.chance(2) ? c.toUpperCase() : c.toLowerCase()).join("");
}

const RR_TYPES = ["A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SRV", "SOA"] as const;

function randAaaa(r: Rand): string {
  const g: string[] = [];
  for (let k = 0; k < 8; k++) g.push((r.chance(3) ? 0 : r.int(0x10000)).toString(16));
  return g.join(":");
}

function randData(r: Rand, type: string, names: () => string): Dp {
  switch (type) {
    case "A":
      return [r.int(256), r.int(256), r.int(256), r.int(256)].join(".");
    case "AAAA":
      return randAaaa(r);
    case "CNAME":
    case "NS":
    case "PTR":
      return names();
    case "MX":
      return { preference: r.int(0x10000), exchange: names() };
    case "SRV":
      return {
        priority: r.int(0x10000),
        weight: r.int(0x10000),
        port: r.int(0x10000),
        target: names(),
      };
    case "SOA":
      return {
        mname: names(),
        rname: names(),
        serial: r.u32(),
        refresh: r.u32(),
        retry: r.u32(),
        expire: r.u32(),
        minimum: r.u32(),
      };
    case "TXT": {
      const out: string[] = [];
      for (let k = r.int(4); k >= 0; k--) {
        let s = "";
        for (let j = r.int(40); j > 0; j--) s += String.fromCharCode(0x20 + r.int(95));
        out.push(s);
      }
      return out;
    }
  }
  throw new Error(type);
}

/** A random message in dns-packet's form; `names` gives owner and target names. */
function randPacket(r: Rand, names: () => string, forWriter: boolean): Dp {
  const record = () => {
    const type = r.pick(RR_TYPES);
    const rec: Dp = { type, name: names(), ttl: r.u32(), data: randData(r, type, names) };
    if (r.chance(8)) rec.class = "CH";
    if (!forWriter && r.chance(16)) rec.flush = true;
    return rec;
  };
  const list = (max: number) => Array.from({ length: r.int(max + 1) }, record);
  const questions = Array.from({ length: r.chance(8) ? r.int(3) : 1 }, () => ({
    type: r.pick([...RR_TYPES, "ANY"]),
    class: r.pick(["IN", "IN", "IN", "CH", "ANY"]),
    name: names(),
  }));
  const additionals = list(4);
  if (r.chance(3)) {
    const opt: Dp = {
      type: "OPT",
      name: ".",
      udpPayloadSize: 512 + r.int(65536 - 512),
      flags: r.chance(2) ? dnsPacket.DNSSEC_OK : 0,
    };
    if (!forWriter) {
      if (r.chance(4)) opt.extendedRcode = r.int(256);
      if (r.chance(4)) opt.ednsVersion = r.int(256);
      if (r.chance(4)) opt.flags |= r.int(0x8000);
      if (r.chance(3)) opt.options = [{ code: 12, length: r.int(20) }];
      if (r.chance(3)) {
        (opt.options ??= []).push({ code: 10, data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) });
      }
    }
    additionals.splice(r.int(additionals.length + 1), 0, opt);
  }
  return {
    type: r.chance(2) ? "response" : "query",
    id: r.int(0x10000),
    flags: r.int(0x8000),
    questions,
    answers: list(4),
    authorities: list(4),
    additionals,
  };
}

interface Tally {
  messages: number;
  questions: number;
  records: number;
  /** Records whose rdata bytes equal dns-packet's re-encoding of what it decoded. */
  rdataBytes: number;
  names: number;
  opt: number;
}

function tally(): Tally {
  return { messages: 0, questions: 0, records: 0, rdataBytes: 0, names: 0, opt: 0 };
}

/** dns-packet writes the root as "."; exact: the bytes were not compressed, so the case is kept. */
function sameName(ours: string, theirs: string, exact: boolean, where: string): void {
  const t = theirs === "." ? "" : theirs;
  if (exact) assert.equal(ours, t, where);
  else assert.equal(dnsNameKey(ours), dnsNameKey(t), where);
}

function agreeRecord(
  b: Uint8Array,
  r: DnsRecord,
  a: Dp,
  exact: boolean,
  where: string,
  t: Tally,
): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  sameName(r.name, a.name, exact, `${where} name`);
  assert.equal(dpTypes.toString(r.type), a.type, `${where} type`);
  assert.equal(dpClasses.toString(r.class & 0x7fff), a.class, `${where} class`);
  assert.equal((r.class & 0x8000) !== 0, a.flush, `${where} flush bit`);
  assert.equal(r.ttl, a.ttl, `${where} ttl`);
  assert.equal(v.getUint32(r.ttlOffset), r.ttl, `${where} ttlOffset`);
  assert.equal(v.getUint16(r.rdataOffset - 2), r.rdataLength, `${where} rdlength`);
  assert.ok(r.rdataOffset + r.rdataLength <= b.length);
  const o = r.rdataOffset, end = o + r.rdataLength;
  const nameAt = (at: number, expected: string, what: string) => {
    const n = name(readDnsName(b, at));
    sameName(n.name, expected, exact, `${where} ${what}`);
    t.names++;
    return n.end;
  };
  switch (r.type) {
    case DnsType.A:
      assert.equal(r.rdataLength, 4);
      assert.equal(formatIpv4(v.getUint32(o)), a.data, `${where} A`);
      break;
    case DnsType.AAAA:
      assert.equal(r.rdataLength, 16);
      assert.equal(toHex(b.subarray(o, end)), toHex(parseIpv6(a.data)), `${where} AAAA`);
      break;
    case DnsType.CNAME:
    case DnsType.NS:
    case DnsType.PTR:
      assert.equal(nameAt(o, a.data, "target"), end);
      break;
    case DnsType.MX:
      assert.equal(v.getUint16(o), a.data.preference);
      assert.equal(nameAt(o + 2, a.data.exchange, "exchange"), end);
      break;
    case DnsType.SRV:
      assert.deepEqual(
        [v.getUint16(o), v.getUint16(o + 2), v.getUint16(o + 4)],
        [a.data.priority, a.data.weight, a.data.port],
      );
      assert.equal(nameAt(o + 6, a.data.target, "target"), end);
      break;
    case DnsType.SOA: {
      const m = nameAt(o, a.data.mname, "mname");
      const n = nameAt(m, a.data.rname, "rname");
      assert.equal(n + 20, end);
      const d = a.data;
      assert.deepEqual(
        [0, 4, 8, 12, 16].map((k) => v.getUint32(n + k)),
        [d.serial, d.refresh, d.retry, d.expire, d.minimum],
      );
      break;
    }
    case DnsType.TXT: {
      const strings: string[] = [];
      for (let i = o; i < end; i += 1 + b[i]!) {
        strings.push(toHex(b.subarray(i + 1, i + 1 + b[i]!)));
      }
      assert.deepEqual(strings, a.data.map((s: Uint8Array) => toHex(s)), `${where} TXT`);
      break;
    }
  }
  if (exact) {
    // Not compressed: dns-packet's own encoding of what it decoded is our rdata.
    const enc: Uint8Array = dnsPacket.record(a.type).encode(a.data);
    assert.equal(toHex(b.subarray(o, end)), toHex(enc.subarray(2)), `${where} rdata bytes`);
    assert.equal((enc[0]! << 8) | enc[1]!, r.rdataLength);
    t.rdataBytes++;
  }
  t.records++;
}

/** parseDns and dnsPacket.decode agree on every field both expose. */
function agree(b: Uint8Array, exact: boolean, where: string, t: Tally): DnsMessage {
  const m = ok(parseDns(b), where);
  const d: Dp = dnsPacket.decode(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  assert.equal(m.length, dnsPacket.decode.bytes, `${where} length`);
  assert.equal(m.id, d.id, `${where} id`);
  assert.equal(m.flags & 0x7fff, d.flags, `${where} flags`);
  assert.equal((m.flags & DnsFlag.QR) !== 0, d.type === "response", `${where} QR`);
  assert.equal(dpRcodes.toString(m.rcode), d.rcode, `${where} rcode`);
  assert.equal(dpOpcodes.toString(m.opcode), d.opcode, `${where} opcode`);
  assert.equal(m.questions.length, d.questions.length, `${where} questions`);
  m.questions.forEach((q, i) => {
    const p = d.questions[i];
    sameName(q.name, p.name, exact, `${where} q${i} name`);
    assert.equal(dpTypes.toString(q.type), p.type, `${where} q${i} type`);
    assert.equal(dpClasses.toString(q.class), p.class, `${where} q${i} class`);
    t.questions++;
  });
  const sections: [DnsRecord[], Dp[], string][] = [
    [m.answers, d.answers, "an"],
    [m.authority, d.authorities, "ns"],
    [m.additional, d.additionals.filter((a: Dp) => a.type !== "OPT"), "ar"],
  ];
  for (const [ours, theirs, s] of sections) {
    assert.equal(ours.length, theirs.length, `${where} ${s} count`);
    ours.forEach((r, i) => agreeRecord(b, r, theirs[i], exact, `${where} ${s}${i}`, t));
  }
  const opts = d.additionals.filter((a: Dp) => a.type === "OPT");
  assert.equal(opts.length, m.edns === null ? 0 : 1, `${where} OPT`);
  if (m.edns !== null) {
    const o = opts[0];
    assert.equal(m.edns.udpSize, o.udpPayloadSize);
    assert.equal(m.edns.extendedRcode, o.extendedRcode);
    assert.equal(m.edns.version, o.ednsVersion);
    assert.equal(m.edns.dnssecOk, o.flag_do);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(v.getUint16(m.edns.udpSizeOffset), o.udpPayloadSize);
    assert.equal(v.getUint16(m.edns.udpSizeOffset + 4), o.flags, "the OPT flags word");
    const rdlen = o.options.reduce((n: number, x: Dp) => n + 4 + x.data.length, 0);
    assert.equal(v.getUint16(m.edns.udpSizeOffset + 6), rdlen, "the OPT rdlength");
    t.opt++;
  }
  t.messages++;
  return m;
}

const DP_CORPUS_SIZE = 250;
const WRITER_CORPUS_SIZE = 150;

/** Messages dns-packet encoded (no compression) from seeded random specs. */
function dnsPacketCorpus(): Uint8Array[] {
  const r = new Rand(0x646e7331);
  const out: Uint8Array[] = [];
  for (let k = 0; k < DP_CORPUS_SIZE; k++) {
    const pool = Array.from({ length: 1 + r.int(6) }, () => randName(r));
    const names = () => r.chance(30) ? "." : r.chance(2) ? r.pick(pool) : randName(r);
    const buf: Uint8Array = dnsPacket.encode(randPacket(r, names, false));
    out.push(new Uint8Array(buf));
  }
  return out;
}

/** Write a dns-packet-form message with the DnsWriter (names compressed). */
function writePacket(p: Dp, buf: Uint8Array): Uint8Array {
  const w = new DnsWriter(buf);
  w.header({
    id: p.id,
    flags: (p.type === "response" ? DnsFlag.QR : 0) | p.flags,
    qd: p.questions.length,
    an: p.answers.length,
    ns: p.authorities.length,
    ar: p.additionals.length,
  });
  for (const q of p.questions) {
    w.question(q.name, dpTypes.toType(q.type), dpClasses.toClass(q.class));
  }
  const u16 = (n: number) => [n >>> 8, n & 0xff];
  const u32 = (n: number) => [...u16(n >>> 16), ...u16(n & 0xffff)];
  for (const a of [...p.answers, ...p.authorities, ...p.additionals]) {
    if (a.type === "OPT") {
      w.opt(a.udpPayloadSize, a.flags === dnsPacket.DNSSEC_OK);
      continue;
    }
    const type = dpTypes.toType(a.type);
    const klass = dpClasses.toClass(a.class ?? "IN");
    const d = a.data;
    if (["CNAME", "NS", "PTR"].includes(a.type) && klass === DnsClass.IN) {
      w.nameRecord(a.name, type, a.ttl, d);
      continue;
    }
    let rdata: Uint8Array;
    switch (a.type) {
      case "A":
        rdata = new Uint8Array(u32(parseIpv4(d)));
        break;
      case "AAAA":
        rdata = parseIpv6(d);
        break;
      case "CNAME":
      case "NS":
      case "PTR":
        rdata = encodeDnsName(d);
        break;
      case "MX":
        rdata = new Uint8Array([...u16(d.preference), ...encodeDnsName(d.exchange)]);
        break;
      case "SRV":
        rdata = new Uint8Array([
          ...u16(d.priority),
          ...u16(d.weight),
          ...u16(d.port),
          ...encodeDnsName(d.target),
        ]);
        break;
      case "SOA":
        rdata = new Uint8Array([
          ...encodeDnsName(d.mname),
          ...encodeDnsName(d.rname),
          ...[d.serial, d.refresh, d.retry, d.expire, d.minimum].flatMap(u32),
        ]);
        break;
      case "TXT":
        rdata = new Uint8Array(
          d.flatMap((s: string) => [s.length, ...[...s].map((c) => c.charCodeAt(0))]),
        );
        break;
      default:
        throw new Error(a.type);
    }
    w.record(a.name, type, a.ttl, rdata, klass);
  }
  return w.bytes().slice();
}

/** Seeded specs whose names share suffixes in random case, written with the DnsWriter. */
function writerCorpus(): { spec: Dp; bytes: Uint8Array }[] {
  const r = new Rand(0x646e7332);
  const buf = new Uint8Array(16384);
  const out: { spec: Dp; bytes: Uint8Array }[] = [];
  for (let k = 0; k < WRITER_CORPUS_SIZE; k++) {
    const bases = Array.from({ length: 1 + r.int(3) }, () => {
      const l = 1 + r.int(2);
      return Array.from({ length: l }, () => randLabel(r).slice(0, 12)).join(".");
    });
    const names = () => {
      const base = r.pick(bases);
      const n = r.int(3);
      const pre = Array.from({ length: n }, () => r.pick(["www", "mail", "ns1", "a", "x-1"]));
      return randCase(r, [...pre, base].join("."));
    };
    const spec = randPacket(r, names, true);
    out.push({ spec, bytes: writePacket(spec, buf) });
  }
  return out;
}

Deno.test("dns: parseDns agrees with dns-packet on messages dns-packet encoded", () => {
  const t = tally();
  dnsPacketCorpus().forEach((b, i) => {
    agree(b, true, `dp#${i}`, t);
    agree(atOffset(b), true, `dp#${i}@${AT}`, tally());
  });
  for (const [b, what] of [[QUERY, "QUERY"], [RESPONSE, "RESPONSE"]] as const) {
    agree(b, false, what, t);
  }
  assert.equal(t.messages, DP_CORPUS_SIZE + 2);
  // The corpus covers what it should.
  assert.ok(t.records > 4 * DP_CORPUS_SIZE, `${t.records} records`);
  assert.ok(t.opt > DP_CORPUS_SIZE / 5, `${t.opt} OPT records`);
  assert.ok(t.rdataBytes === t.records - 5, "every dns-packet record compared byte for byte");
  console.log(
    `dns-packet → parseDns: ${t.messages} messages, ${t.questions} questions, ` +
      `${t.records} records (${t.rdataBytes} rdata byte-equal), ${t.names} rdata names, ` +
      `${t.opt} OPT: all agree`,
  );
});

Deno.test("dns: dns-packet decodes what the DnsWriter wrote to the same questions and records", () => {
  const t = tally();
  let compressed = 0, written = 0, plain = 0;
  writerCorpus().forEach(({ spec, bytes }, i) => {
    const where = `writer#${i}`;
    agree(bytes, false, where, t);
    written += bytes.length;
    const flat = dnsPacket.encodingLength(spec);
    plain += flat;
    if (bytes.length < flat) compressed++;
    assert.ok(bytes.length <= flat, `${where}: compression never grows a message`);
    // dns-packet's reading of our bytes against the spec they were written from.
    const d: Dp = dnsPacket.decode(Buffer.from(bytes));
    assert.equal(d.id, spec.id);
    assert.equal(d.type, spec.type);
    assert.equal(d.flags, spec.flags);
    assert.deepEqual(
      d.questions.map((q: Dp) => [q.name.toLowerCase(), q.type, q.class]),
      spec.questions.map((q: Dp) => [q.name.toLowerCase(), q.type, q.class]),
      where,
    );
    const lower = (x: Dp): Dp => {
      if (typeof x !== "object") return typeof x === "string" ? x.toLowerCase() : x;
      if (typeof x === "string") return x.toLowerCase();
      if (Array.isArray(x)) return x.map((s) => toHex(Buffer.from(s)));
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, lower(v)]));
    };
    const recs = (list: Dp[]) =>
      list.map((a: Dp) =>
        a.type === "OPT" ? ["OPT", a.udpPayloadSize, (a.flags & dnsPacket.DNSSEC_OK) !== 0] : [
          a.name.toLowerCase(),
          a.type,
          a.class ?? "IN",
          a.ttl,
          a.type === "AAAA" ? toHex(parseIpv6(a.data)) : lower(a.data),
        ]
      );
    for (const s of ["answers", "authorities", "additionals"]) {
      assert.deepEqual(recs(d[s]), recs(spec[s]), `${where} ${s}`);
    }
  });
  assert.equal(t.messages, WRITER_CORPUS_SIZE);
  assert.ok(compressed > WRITER_CORPUS_SIZE * 0.8, `${compressed} messages compressed`);
  console.log(
    `DnsWriter → dns-packet: ${t.messages} messages, ${t.questions} questions, ` +
      `${t.records} records, ${t.names} rdata names, ${t.opt} OPT: all agree; ` +
      `${compressed} compressed, ${written} bytes instead of ${plain}`,
  );
});

// ---------------------------------------------------------------------------
// 6. tshark.

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();
if (!tsharkFound && !CI) {
  console.log("dns_test.ts: tshark test ignored because tshark is not installed");
}

const SERVER_MAC = parseMac("02:00:00:00:00:35");
const CLIENT_MAC = parseMac("02:00:00:00:00:02");
const SERVER_IP = parseIpv4("192.0.2.53");
const CLIENT_IP = parseIpv4("192.0.2.2");

/** A response to www.example.com A: CNAME, A, AAAA, OPT, from 192.0.2.53 port 53. */
function responseFrame(): Uint8Array {
  const w = new DnsWriter(new Uint8Array(512));
  w.header({ id: 0x4242, flags: DnsFlag.QR | DnsFlag.RD | DnsFlag.RA, qd: 1, an: 3, ar: 1 })
    .question("www.example.com", DnsType.A)
    .nameRecord("www.example.com", DnsType.CNAME, 300, "cdn.example.com")
    .record("cdn.example.com", DnsType.A, 60, hex("c0000201"))
    .record("cdn.example.com", DnsType.AAAA, 60, parseIpv6("2001:db8::1"))
    .opt(1232, true);
  const repr = { srcPort: DNS_PORT, dstPort: 40000, payload: w.bytes() };
  const udpLen = UdpRepr.bufferLen(repr);
  const len = 14 + IPV4_MIN_HEADER_LEN + udpLen;
  const b = new PacketBuffer(len);
  b.setFrame(0, len);
  writeEthernetHeader(b, 0, CLIENT_MAC, SERVER_MAC, 0x0800);
  writeIpv4Header(b, 14, {
    src: SERVER_IP,
    dst: CLIENT_IP,
    protocol: IpProtocol.UDP,
    payloadLen: udpLen,
  });
  UdpRepr.emit(repr, b, 14 + IPV4_MIN_HEADER_LEN, { src: SERVER_IP, dst: CLIENT_IP });
  return b.data.slice(0, b.end);
}

Deno.test({
  name: "dns: tshark dissects a response built by the writer",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const dir = await Deno.makeTempDir({ prefix: "tapir_dns_" });
    const file = `${dir}/dns.pcap`;
    try {
      await Deno.writeFile(file, pcap([responseFrame()]));
      const fields = [
        "frame.protocols",
        "ip.checksum.status",
        "udp.checksum.status",
        "dns.id",
        "dns.flags.response",
        "dns.flags.rcode",
        "dns.count.queries",
        "dns.count.answers",
        "dns.count.add_rr",
        "dns.qry.name",
        "dns.resp.name",
        "dns.resp.ttl",
        "dns.cname",
        "dns.a",
        "dns.aaaa",
        "dns.rr.udp_payload_size",
        "dns.resp.z.do",
        "_ws.malformed",
        "_ws.expert.message",
      ];
      const out = await tshark([
        "-r",
        file,
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-E",
        "aggregator=,",
        ...fields.flatMap((f) => ["-e", f]),
      ]);
      const lines = out.trim().split("\n");
      assert.equal(lines.length, 1, out);
      const got = Object.fromEntries(lines[0]!.split(";").map((v, i) => [fields[i]!, v]));
      assert.deepEqual(got, {
        "frame.protocols": "eth:ethertype:ip:udp:dns",
        "ip.checksum.status": "1",
        "udp.checksum.status": "1",
        "dns.id": "0x4242",
        "dns.flags.response": "1",
        "dns.flags.rcode": "0",
        "dns.count.queries": "1",
        "dns.count.answers": "3",
        "dns.count.add_rr": "1",
        "dns.qry.name": "www.example.com",
        "dns.resp.name": "www.example.com,cdn.example.com,cdn.example.com,<Root>",
        "dns.resp.ttl": "300,60,60",
        "dns.cname": "cdn.example.com",
        "dns.a": "192.0.2.1",
        "dns.aaaa": "2001:db8::1",
        "dns.rr.udp_payload_size": "1232",
        "dns.resp.z.do": "1",
        "_ws.malformed": "",
        "_ws.expert.message": "",
      });

      // Negative control: the same run flags a CNAME whose target label overruns.
      const bad = responseFrame();
      const dns = 14 + IPV4_MIN_HEADER_LEN + 8;
      const m = ok(parseDns(bad.subarray(dns)));
      const at = dns + m.answers[0]!.rdataOffset;
      assert.equal(bad[at], 3, 'the length of the label "cdn"');
      bad[at] = 0x3f;
      await Deno.writeFile(file, pcap([bad]));
      const control = await tshark([
        "-r",
        file,
        "-T",
        "fields",
        "-e",
        "_ws.malformed",
        "-e",
        "_ws.expert.message",
      ]);
      assert.notEqual(control.trim(), "", "tshark flags the broken name");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------
// 7. Fuzz.

const ERRORS: ReadonlySet<string> = new Set<DnsParseError>([
  "truncated",
  "bad-label-type",
  "label-too-long",
  "name-too-long",
  "bad-pointer",
  "pointer-loop",
  "count-overrun",
  "two-opt",
]);

function mutate(r: Rand, seed: Uint8Array): Uint8Array {
  let b = seed.slice();
  for (let n = 1 + r.int(3); n > 0; n--) {
    const at = b.length === 0 ? 0 : r.int(b.length);
    switch (r.int(7)) {
      case 0: // a bit flip
        if (b.length > 0) b[at]! ^= 1 << r.int(8);
        break;
      case 1: // a truncation
        b = b.slice(0, r.int(b.length + 1));
        break;
      case 2: { // inserted bytes
        const k = 1 + r.int(4);
        const c = new Uint8Array(b.length + k);
        c.set(b.subarray(0, at));
        for (let j = 0; j < k; j++) c[at + j] = r.int(256);
        c.set(b.subarray(at), at + k);
        b = c;
        break;
      }
      case 3: // a count set large, or off by a few
        if (b.length >= 12) {
          const f = 4 + 2 * r.int(4);
          const v = r.chance(2) ? r.int(0x10000) : ((b[f]! << 8) | b[f + 1]!) + 1 + r.int(3);
          b[f] = (v >>> 8) & 0xff;
          b[f + 1] = v & 0xff;
        }
        break;
      case 4: // a pointer, anywhere, to anywhere near
        if (b.length >= 2) {
          const to = r.chance(4) ? r.int(0x4000) : r.int(b.length + 4);
          const p = Math.min(at, b.length - 2);
          b[p] = 0xc0 | (to >>> 8);
          b[p + 1] = to & 0xff;
        }
        break;
      case 5: // a label type byte
        if (b.length > 0) b[at] = r.pick([0x40, 0x80, 0x3f, 0x00, 0xff, r.int(64)]);
        break;
      case 6: // a random byte
        if (b.length > 0) b[at] = r.int(256);
        break;
    }
  }
  return b;
}

Deno.test("dns: 20 000 mutated messages never throw and never point outside the bytes", () => {
  const seeds = [
    QUERY,
    RESPONSE,
    ...dnsPacketCorpus().slice(0, 80),
    ...writerCorpus().slice(0, 80).map((w) => w.bytes),
  ];
  const r = new Rand(0x66757a7a);
  const kinds = new Map<string, number>();
  let parsed = 0;
  const start = performance.now();
  for (let k = 0; k < 20_000; k++) {
    const mutated = mutate(r, r.pick(seeds));
    const b = k % 2 === 0 ? mutated : atOffset(mutated);
    let res: DnsMessage | DnsParseError;
    try {
      res = parseDns(b);
    } catch (e) {
      throw new Error(`parseDns threw on ${toHex(b)}: ${e}`);
    }
    if (typeof res === "string") {
      assert.ok(ERRORS.has(res), res);
      kinds.set(res, (kinds.get(res) ?? 0) + 1);
      continue;
    }
    parsed++;
    const n = b.length;
    const check = (c: boolean, what: string) => {
      if (!c) assert.fail(`${what} on ${toHex(b)}`);
    };
    check(res.length >= DNS_HEADER_LEN && res.length <= n, "length");
    for (const q of res.questions) check(q.offset < q.end && q.end <= n, "question");
    for (const rec of [...res.answers, ...res.authority, ...res.additional]) {
      check(rec.rdataOffset + rec.rdataLength <= n, "rdata");
      check(rec.ttlOffset + 4 <= n, "ttlOffset");
      check(rec.rdataOffset === rec.ttlOffset + 6, "rdataOffset");
    }
    if (res.edns !== null) check(res.edns.udpSizeOffset + 8 <= n, "OPT");
    // The message alone, without what followed it, parses the same.
    assert.deepEqual(parseDns(b.subarray(0, res.length)), res);
  }
  const ms = performance.now() - start;
  // The mutations reach every check the reader has, and leave some messages whole.
  for (const e of ["truncated", "count-overrun", "bad-pointer", "pointer-loop", "bad-label-type"]) {
    assert.ok((kinds.get(e) ?? 0) > 20, `${e}: ${kinds.get(e) ?? 0}`);
  }
  assert.ok(parsed > 1000, `${parsed} parsed`);
  console.log(
    `fuzz: 20000 mutations in ${ms.toFixed(0)} ms, ${parsed} parsed, ` +
      [...kinds].sort().map(([e, c]) => `${e} ${c}`).join(", "),
  );
});

// ---------------------------------------------------------------------------
// 7. readDnsQuery, the forwarder's in-place reader, against parseDns.

/**
 * What readDnsQuery should say of `b`, from parseDns: the same error, or
 * the same header, first question and OPT fields, and the first question's
 * name as its labels with letters folded (encodeDnsName of dnsNameKey of
 * parseDns's text).
 */
function expectQueryView(b: Uint8Array, base: number, q: DnsQueryView, what: string): boolean {
  const m = parseDns(b.subarray(base));
  const r = readDnsQuery(b, base, b.length - base, q);
  if (typeof m === "string") {
    assert.equal(r, m, `${what}: the same error`);
    return false;
  }
  assert.equal(r, null, what);
  const q0 = m.questions[0];
  assert.deepEqual(
    {
      id: q.id,
      flags: q.flags,
      opcode: q.opcode,
      questions: q.questions,
      length: q.length,
      edns: q.edns,
      udpSize: q.edns ? q.udpSize : null,
      dnssecOk: q.dnssecOk,
      udpSizeOffset: q.udpSizeOffset,
    },
    {
      id: m.id,
      flags: m.flags,
      opcode: m.opcode,
      questions: m.questions.length,
      length: m.length,
      edns: m.edns !== null,
      udpSize: m.edns?.udpSize ?? null,
      dnssecOk: m.edns?.dnssecOk ?? false,
      udpSizeOffset: m.edns?.udpSizeOffset ?? -1,
    },
    what,
  );
  if (q0 === undefined) return true;
  assert.deepEqual([q.qOffset, q.qEnd, q.qType, q.qClass], [q0.offset, q0.end, q0.type, q0.class]);
  const want = encodeDnsName(dnsNameKey(q0.name));
  assert.equal(toHex(q.name.subarray(0, q.nameLength)), toHex(want), `${what}: the key name`);
  return true;
}

Deno.test("dns: readDnsQuery agrees with parseDns on every corpus message and 20 000 mutations, at any base", () => {
  const seeds = [
    QUERY,
    RESPONSE,
    ...dnsPacketCorpus(),
    ...writerCorpus().map((w) => w.bytes),
  ];
  const q = new DnsQueryView();
  let same = 0, errors = 0;
  for (const [i, b] of seeds.entries()) {
    if (expectQueryView(b, 0, q, `seed ${i}`)) same++;
    else errors++;
  }
  const r = new Rand(0x71756572);
  const kinds = new Set<string>();
  for (let k = 0; k < 20_000; k++) {
    const mutated = mutate(r, r.pick(seeds));
    // Inside a larger buffer (a UDP payload where it lies), after `base` bytes of 0xa5.
    const base = r.int(3) * 21;
    const b = new Uint8Array(base + mutated.length).fill(0xa5);
    b.set(mutated, base);
    if (expectQueryView(b, base, q, `mutation ${k}: ${toHex(mutated)}`)) same++;
    else {
      errors++;
      kinds.add(readDnsQuery(b, base, mutated.length, q)!);
    }
  }
  // Both sides of every check are reached.
  for (const e of ["truncated", "count-overrun", "bad-pointer", "pointer-loop", "bad-label-type"]) {
    assert.ok(kinds.has(e), e);
  }
  assert.ok(same > 5000 && errors > 5000, `${same} read, ${errors} rejected`);
});

Deno.test("dns: readDnsQuery folds the question name's letters only, through pointers", () => {
  // Two questions, the second's name ending in a pointer to the first's.
  const b = hex(
    "abcd 0100 0002 0000 0000 0000",
    "03 577757 02 45d8 00", // @12 WwW.<E, 0xd8> (0xd8 is not a letter: kept)
    "0001 0001",
    "02 4142 c00c", // @24 AB + a pointer to 12
    "001c 0001",
  );
  const q = new DnsQueryView();
  assert.equal(readDnsQuery(b, 0, b.length, q), null);
  assert.equal(toHex(q.name.subarray(0, q.nameLength)), "037777770265d800");
  assert.deepEqual([q.questions, q.qType, q.qEnd], [2, 1, 24]);
  const out = new Uint8Array(255);
  assert.equal(walkDnsName(b, 0, b.length, 24, out, true), 29);
  assert.equal(toHex(out.subarray(0, 11)), "026162037777770265d800");
  assert.equal(walkDnsName(b, 0, b.length, 24, out, false), 29);
  assert.equal(toHex(out.subarray(0, 11)), "024142035777570245d800");
  // The same message further into a buffer: offsets stay relative to the message.
  const big = new Uint8Array(7 + b.length).fill(0xa5);
  big.set(b, 7);
  assert.equal(readDnsQuery(big, 7, b.length, q), null);
  assert.deepEqual([q.qOffset, q.qEnd, q.id], [12, 24, 0xabcd]);
});
