/**
 * DHCPv6 messages, nested options and the writer against byte vectors
 * written by hand from RFC 8415 §8 (message formats), §9 (relay messages),
 * §11 (DUIDs), §21 (options) and RFC 3646 (DNS options), plus a tshark
 * cross-check of a REPLY. Without tshark that test is ignored, except
 * under CI=true.
 */
import assert from "node:assert/strict";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  decodeDomainList,
  DHCPV6_CLIENT_PORT,
  DHCPV6_HEADER_LEN,
  DHCPV6_MESSAGE_NAMES,
  DHCPV6_RELAY_HEADER_LEN,
  DHCPV6_SERVER_PORT,
  type Dhcpv6Message,
  Dhcpv6MessageType as T,
  Dhcpv6Option as O,
  type Dhcpv6RelayMessage,
  Dhcpv6Status,
  Dhcpv6Writer,
  duidLl,
  duidMac,
  encodeDomainList,
  findOption,
  hexColon,
  parseDhcpv6,
  parseDhcpv6Options,
  parseIa,
  parseIaAddr,
  parseIaPrefix,
  parseOro,
  parseStatus,
} from "../../../stack/wire/dhcpv6.ts";
import { formatIpv6, parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { parseMac } from "../../../stack/wire/mac_address.ts";
import { writeEthernetHeader } from "../../../stack/wire/ethernet.ts";
import { IPV6_HEADER_LEN, writeIpv6Header } from "../../../stack/wire/ipv6.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { UdpPacket, UdpRepr } from "../../../stack/wire/udp.ts";
import { AT, hex, toHex } from "./_helpers.ts";
import { haveTshark, pcap, tshark } from "./_pcap.ts";

/** `b` placed at {@link AT} in a larger buffer of 0xa5, as a view, so byteOffset is not 0. */
function atOffset(b: Uint8Array): Uint8Array {
  const big = new Uint8Array(AT + b.length + 16).fill(0xa5);
  big.set(b, AT);
  return big.subarray(AT, AT + b.length);
}

function message(r: ReturnType<typeof parseDhcpv6>): Dhcpv6Message {
  assert.ok(typeof r !== "string", `parse failed: ${r}`);
  assert.ok(!("hopCount" in r), "a client/server message");
  return r;
}

function relay(r: ReturnType<typeof parseDhcpv6>): Dhcpv6RelayMessage {
  assert.ok(typeof r !== "string", `parse failed: ${r}`);
  assert.ok("hopCount" in r, "a relay message");
  return r;
}

function ok<V>(r: V | string): V {
  assert.ok(typeof r !== "string", `parse failed: ${r}`);
  return r as V;
}

/** A SOLICIT from DUID-LL 02:00:00:00:00:01 asking for an address and a prefix. */
const SOLICIT = hex(
  "01 12 34 56", // msg-type SOLICIT, transaction-id 0x123456
  "0001 000a", // CLIENTID, 10 bytes
  "0003 0001 020000000001", //   DUID-LL, hardware type 1 (Ethernet), MAC
  "0008 0002 0064", // ELAPSED_TIME 100 (1 s)
  "0006 0004 0017 0018", // ORO: DNS_SERVERS, DOMAIN_LIST
  "0003 0028", // IA_NA, 40 bytes
  "00000001 00000e10 00001518", //   IAID 1, T1 3600, T2 5400
  "0005 0018", //   IAADDR, 24 bytes
  "20010db8 00000000 00000000 00000100", //     2001:db8::100
  "00001c20 00003840", //     preferred 7200, valid 14400
  "0019 0029", // IA_PD, 41 bytes
  "00000002 00000000 00000000", //   IAID 2, T1 0, T2 0
  "001a 0019", //   IAPREFIX, 25 bytes
  "00000e10 00001c20", //     preferred 3600, valid 7200
  "38", //     prefix length 56
  "20010db8 00abcd00 00000000 00000000", //     2001:db8:ab:cd00::
);

Deno.test("dhcpv6: constants match RFC 8415 §7", () => {
  assert.equal(DHCPV6_CLIENT_PORT, 546);
  assert.equal(DHCPV6_SERVER_PORT, 547);
  assert.equal(formatIpv6(ALL_DHCP_RELAY_AGENTS_AND_SERVERS), "ff02::1:2");
  assert.equal(DHCPV6_HEADER_LEN, 4);
  assert.equal(DHCPV6_RELAY_HEADER_LEN, 2 + 16 + 16);
  assert.equal(DHCPV6_MESSAGE_NAMES[T.INFORMATION_REQUEST], "INFORMATION-REQUEST");
  assert.equal(DHCPV6_MESSAGE_NAMES[T.RELAY_REPL], "RELAY-REPL");
  for (const [name, value] of Object.entries(T)) {
    assert.equal(DHCPV6_MESSAGE_NAMES[value], name.replace("_", "-"));
  }
});

Deno.test("dhcpv6: a SOLICIT parses into its header and options, in order", () => {
  const m = message(parseDhcpv6(atOffset(SOLICIT)));
  assert.equal(m.msgType, T.SOLICIT);
  assert.equal(m.xid, 0x123456);
  assert.deepEqual(m.options.map((o) => o.code), [
    O.CLIENTID,
    O.ELAPSED_TIME,
    O.ORO,
    O.IA_NA,
    O.IA_PD,
  ]);
  assert.deepEqual(m.options.map((o) => o.data.length), [10, 2, 4, 40, 41]);

  const clientId = findOption(m.options, O.CLIENTID)!;
  assert.equal(toHex(clientId), "00030001020000000001");
  assert.equal(hexColon(duidMac(clientId)!), "02:00:00:00:00:01");
  assert.equal(toHex(findOption(m.options, O.ELAPSED_TIME)!), "0064");
  assert.deepEqual(parseOro(findOption(m.options, O.ORO)!), [O.DNS_SERVERS, O.DOMAIN_LIST]);
  assert.equal(findOption(m.options, O.SERVERID), undefined);

  const na = ok(parseIa(findOption(m.options, O.IA_NA)!));
  assert.deepEqual([na.iaid, na.t1, na.t2], [1, 3600, 5400]);
  assert.deepEqual(na.options.map((o) => o.code), [O.IAADDR]);
  const addr = ok(parseIaAddr(na.options[0]!.data));
  assert.equal(formatIpv6(addr.address), "2001:db8::100");
  assert.deepEqual([addr.preferred, addr.valid], [7200, 14400]);
  assert.deepEqual(addr.options, []);

  const pd = ok(parseIa(findOption(m.options, O.IA_PD)!));
  assert.deepEqual([pd.iaid, pd.t1, pd.t2], [2, 0, 0]);
  assert.deepEqual(pd.options.map((o) => o.code), [O.IAPREFIX]);
  const prefix = ok(parseIaPrefix(pd.options[0]!.data));
  assert.deepEqual([prefix.preferred, prefix.valid, prefix.prefixLen], [3600, 7200, 56]);
  assert.equal(formatIpv6(prefix.prefix), "2001:db8:ab:cd00::");
  assert.deepEqual(prefix.options, []);
});

Deno.test("dhcpv6: option data are views of the packet, not copies", () => {
  const b = atOffset(SOLICIT);
  const m = message(parseDhcpv6(b));
  const na = findOption(m.options, O.IA_NA)!;
  assert.equal(na.buffer, b.buffer);
  assert.equal(na.byteOffset, b.byteOffset + 4 + 14 + 6 + 8 + 4);
  b[4 + 14 + 6 + 8 + 4 + 3] = 9; // IAID 1 -> 9
  assert.equal(ok(parseIa(na)).iaid, 9);
});

Deno.test("dhcpv6: findOption returns the first of repeated options", () => {
  const m = message(parseDhcpv6(hex("0b 000001", "0010 0001 aa", "0010 0002 bbbb")));
  assert.equal(m.msgType, T.INFORMATION_REQUEST);
  assert.equal(m.xid, 1);
  assert.equal(toHex(findOption(m.options, O.VENDOR_CLASS)!), "aa");
  assert.equal(m.options.length, 2);
});

Deno.test("dhcpv6: the header alone is a message without options; zero-length options parse", () => {
  assert.deepEqual(parseDhcpv6(hex("02 ffffff")), { msgType: 2, xid: 0xffffff, options: [] });
  const m = message(parseDhcpv6(hex("07 000102", "000e 0000", "0014 0000")));
  assert.deepEqual(m.options.map((o) => [o.code, o.data.length]), [[O.RAPID_COMMIT, 0], [
    O.RECONF_ACCEPT,
    0,
  ]]);
});

/** The inner message of the relay: an INFORMATION-REQUEST with ELAPSED_TIME 0. */
const INNER = hex("0b abcdef", "0008 0002 0000");

/** A RELAY-FORW (RFC 8415 §9.1) from a relay on 2001:db8::1 for client fe80::2. */
const RELAY_FORW = hex(
  "0c 01", // msg-type RELAY-FORW, hop-count 1
  "20010db8 00000000 00000000 00000001", // link-address 2001:db8::1
  "fe800000 00000000 00000000 00000002", // peer-address fe80::2
  "0012 0004 65746830", // INTERFACE_ID "eth0"
  "0009 000a", // RELAY_MSG, 10 bytes
  toHex(INNER),
);

Deno.test("dhcpv6: a RELAY-FORW parses into its relay header and the relayed message", () => {
  const r = relay(parseDhcpv6(atOffset(RELAY_FORW)));
  assert.equal(r.msgType, T.RELAY_FORW);
  assert.equal(r.hopCount, 1);
  assert.equal(formatIpv6(r.linkAddress), "2001:db8::1");
  assert.equal(formatIpv6(r.peerAddress), "fe80::2");
  assert.deepEqual(r.options.map((o) => o.code), [O.INTERFACE_ID, O.RELAY_MSG]);
  assert.equal(new TextDecoder().decode(findOption(r.options, O.INTERFACE_ID)), "eth0");
  const inner = message(parseDhcpv6(findOption(r.options, O.RELAY_MSG)!));
  assert.equal(inner.msgType, T.INFORMATION_REQUEST);
  assert.equal(inner.xid, 0xabcdef);
  assert.deepEqual(inner.options.map((o) => [o.code, toHex(o.data)]), [[O.ELAPSED_TIME, "0000"]]);
});

Deno.test("dhcpv6: a RELAY-REPL of exactly 34 bytes has no options", () => {
  const b = new Uint8Array(34);
  b[0] = T.RELAY_REPL;
  b[1] = 32;
  b[17] = 1;
  b[33] = 2;
  const r = relay(parseDhcpv6(b));
  assert.equal(r.msgType, T.RELAY_REPL);
  assert.equal(r.hopCount, 32);
  assert.equal(formatIpv6(r.linkAddress), "::1");
  assert.equal(formatIpv6(r.peerAddress), "::2");
  assert.deepEqual(r.options, []);
});

Deno.test("dhcpv6: short or overrunning messages are refused with the reason", () => {
  assert.equal(parseDhcpv6(new Uint8Array(0)), "truncated");
  assert.equal(parseDhcpv6(hex("01 1234")), "truncated");
  // An option header cut after 3 of its 4 bytes.
  assert.equal(parseDhcpv6(hex("01 000001", "0008 00")), "truncated");
  // An option header cut after a whole option.
  assert.equal(parseDhcpv6(hex("01 000001", "0008 0002 0000", "00")), "truncated");
  // ELAPSED_TIME claims 3 bytes but 2 follow.
  assert.equal(parseDhcpv6(hex("01 000001", "0008 0003 0000")), "option-overrun");
  assert.equal(parseDhcpv6(hex("01 000001", "0001 ffff")), "option-overrun");
  assert.equal(parseDhcpv6Options(hex("0008 0002 00")), "option-overrun");
  assert.deepEqual(parseDhcpv6Options(new Uint8Array(0)), []);
});

Deno.test("dhcpv6: relay messages shorter than 34 bytes or with bad options are refused", () => {
  assert.equal(parseDhcpv6(RELAY_FORW.subarray(0, 33)), "truncated");
  assert.equal(parseDhcpv6(hex("0d 00", "00".repeat(31))), "truncated");
  // The relay header's 34 bytes are not read as a client message's options.
  assert.equal(parseDhcpv6(RELAY_FORW.subarray(0, 34 + 2)), "truncated");
  assert.equal(parseDhcpv6(RELAY_FORW.subarray(0, RELAY_FORW.length - 1)), "option-overrun");
});

Deno.test("dhcpv6: IA, IAADDR and IAPREFIX bodies shorter than their fixed part are truncated", () => {
  assert.equal(parseIa(new Uint8Array(11)), "truncated");
  assert.deepEqual(parseIa(hex("00000007 00000001 00000002")), {
    iaid: 7,
    t1: 1,
    t2: 2,
    options: [],
  });
  assert.equal(parseIaAddr(new Uint8Array(23)), "truncated");
  assert.deepEqual(ok(parseIaAddr(new Uint8Array(24))).options, []);
  assert.equal(parseIaPrefix(new Uint8Array(24)), "truncated");
  assert.deepEqual(ok(parseIaPrefix(new Uint8Array(25))).options, []);
});

Deno.test("dhcpv6: an overrun nested in an IA, IAADDR or IAPREFIX is an option-overrun", () => {
  // IA_NA body: IAID/T1/T2 then an IAADDR claiming 24 bytes with 4 present.
  assert.equal(
    parseIa(hex("00000001 00000000 00000000", "0005 0018 20010db8")),
    "option-overrun",
  );
  assert.equal(parseIa(hex("00000001 00000000 00000000", "0005")), "truncated");
  // IAADDR with a STATUS_CODE claiming 6 bytes with 2 present.
  assert.equal(parseIaAddr(hex("00".repeat(24), "000d 0006 0000")), "option-overrun");
  // IAPREFIX with a STATUS_CODE claiming 2 bytes with 1 present.
  assert.equal(parseIaPrefix(hex("00".repeat(25), "000d 0002 00")), "option-overrun");
  // And a well-formed nested STATUS_CODE is found.
  const a = ok(parseIaAddr(hex("00".repeat(24), "000d 0004 0002 6869")));
  assert.deepEqual(parseStatus(findOption(a.options, O.STATUS_CODE)!), {
    code: Dhcpv6Status.NO_ADDRS_AVAIL,
    message: "hi",
  });
});

Deno.test("dhcpv6: parseStatus and parseOro read their bodies", () => {
  assert.equal(parseStatus(new Uint8Array(0)), null);
  assert.equal(parseStatus(hex("00")), null);
  assert.deepEqual(parseStatus(hex("0000")), { code: Dhcpv6Status.SUCCESS, message: "" });
  assert.deepEqual(parseStatus(hex("0104 c3a9")), { code: 0x0104, message: "é" });
  assert.deepEqual(parseOro(new Uint8Array(0)), []);
  assert.deepEqual(parseOro(hex("0017 0018 0052 00")), [23, 24, 82], "odd byte ignored");
});

/** The writer's IA_NA example: REPLY 0xabcdef, IA_NA > IAADDR > STATUS_CODE. */
const NESTED = hex(
  "07 abcdef", // REPLY
  "0003 0030", // IA_NA, 48 bytes
  "01020304 00000708 00000b40", //   IAID, T1 1800, T2 2880
  "0005 0020", //   IAADDR, 32 bytes
  "20010db8 00000000 00000000 00000100", //     2001:db8::100
  "00000e10 00001c20", //     preferred 3600, valid 7200
  "000d 0004 0000 6f6b", //     STATUS_CODE Success "ok"
);

function writeNested(w: Dhcpv6Writer): Dhcpv6Writer {
  return w.header(T.REPLY, 0xabcdef)
    .open(O.IA_NA).u32(0x01020304).u32(1800).u32(2880)
    .open(O.IAADDR).raw(parseIpv6("2001:db8::100")).u32(3600).u32(7200)
    .status(Dhcpv6Status.SUCCESS, "ok")
    .close()
    .close();
}

Deno.test("dhcpv6: the writer builds nested options with back-patched lengths", () => {
  const big = new Uint8Array(AT + 128).fill(0xa5);
  const w = writeNested(new Dhcpv6Writer(big.subarray(AT)));
  assert.equal(w.length, NESTED.length);
  assert.equal(toHex(w.bytes()), toHex(NESTED));
  assert.equal(w.bytes().buffer, big.buffer, "bytes() is a view of the buffer");
  assert.ok(big.subarray(0, AT).every((x) => x === 0xa5), "nothing written before the buffer");
  assert.ok(big.subarray(AT + NESTED.length).every((x) => x === 0xa5), "nothing written past");
});

Deno.test("dhcpv6: the writer's options, integers and status have the RFC layout", () => {
  const w = new Dhcpv6Writer(new Uint8Array(64));
  assert.equal(w.length, 0);
  assert.equal(w.bytes().length, 0);
  w.header(T.ADVERTISE, 0x1abcdef) // only 24 bits of the xid
    .option(O.PREFERENCE, new Uint8Array([255]))
    .option(O.RAPID_COMMIT)
    .status(Dhcpv6Status.NO_ADDRS_AVAIL, "none")
    .open(O.VENDOR_OPTS).u32(-1).u16(0x1234).u8(0x56).close();
  assert.equal(
    toHex(w.bytes()),
    toHex(hex(
      "02 abcdef",
      "0007 0001 ff",
      "000e 0000",
      "000d 0006 0002 6e6f6e65",
      "0011 0007 ffffffff 1234 56",
    )),
  );
  assert.equal(w.length, 4 + 5 + 4 + 10 + 11);
  // header() restarts the message and forgets open options.
  w.header(T.RENEW, 5).open(O.IA_NA);
  w.header(T.RENEW, 5);
  assert.equal(toHex(w.bytes()), "05000005");
  assert.throws(() => w.close(), /without open/);
});

Deno.test("dhcpv6: the writer throws RangeError when the buffer is too small, writing nothing", () => {
  assert.throws(() => new Dhcpv6Writer(new Uint8Array(3)).header(1, 1), RangeError);
  const buf = new Uint8Array(10).fill(0xa5);
  const w = new Dhcpv6Writer(buf).header(1, 1); // 6 bytes left
  assert.throws(() => w.option(O.ELAPSED_TIME, new Uint8Array(3)), RangeError);
  assert.equal(w.length, 4);
  assert.ok(buf.subarray(4).every((x) => x === 0xa5), "a refused option writes nothing");
  w.option(O.ELAPSED_TIME, new Uint8Array(2)); // exactly fills the buffer
  assert.equal(w.length, 10);
  assert.throws(() => w.option(O.RAPID_COMMIT), RangeError);
  assert.throws(() => w.open(O.IA_NA), RangeError);
  assert.throws(() => w.u8(0), RangeError);
  assert.throws(() => w.raw(new Uint8Array(1)), RangeError);
  assert.deepEqual(w.raw(new Uint8Array(0)).length, 10);

  const v = new Dhcpv6Writer(new Uint8Array(9)).header(1, 1).u8(1); // 4 bytes left
  assert.throws(() => v.status(0, "x"), RangeError);
  assert.throws(() => v.u32(1).u8(1), RangeError);
  assert.equal(v.length, 9);
  const u = new Dhcpv6Writer(new Uint8Array(7)).header(1, 1);
  assert.throws(() => u.u32(1), RangeError);
  assert.throws(() => u.u16(1).u16(1), RangeError);
  assert.equal(u.length, 6);
});

Deno.test("dhcpv6: close() without open() throws; options over 65535 bytes throw RangeError", () => {
  const w = new Dhcpv6Writer(new Uint8Array(70_000)).header(1, 1);
  assert.throws(() => w.close(), (e) => e instanceof Error && /without open/.test(e.message));
  w.open(O.IA_NA).close();
  assert.throws(() => w.close(), /without open/);

  assert.throws(() => w.option(O.VENDOR_OPTS, new Uint8Array(65_536)), RangeError);
  assert.equal(w.length, 8, "nothing written");
  w.option(O.VENDOR_OPTS, new Uint8Array(65_535));
  assert.equal(w.length, 8 + 4 + 65_535);

  const n = new Dhcpv6Writer(new Uint8Array(70_000)).header(1, 1);
  n.open(O.VENDOR_OPTS).raw(new Uint8Array(65_536));
  assert.throws(() => n.close(), RangeError);
  const m = new Dhcpv6Writer(new Uint8Array(70_000)).header(1, 1);
  m.open(O.VENDOR_OPTS).raw(new Uint8Array(65_535)).close();
  assert.deepEqual([...m.bytes().subarray(4, 8)], [0, O.VENDOR_OPTS, 0xff, 0xff]);
});

Deno.test("dhcpv6: writer output parses back to the same values", () => {
  const w = writeNested(new Dhcpv6Writer(new Uint8Array(128)));
  const m = message(parseDhcpv6(w.bytes()));
  assert.equal(m.msgType, T.REPLY);
  assert.equal(m.xid, 0xabcdef);
  assert.deepEqual(m.options.map((o) => o.code), [O.IA_NA]);
  const na = ok(parseIa(m.options[0]!.data));
  assert.deepEqual([na.iaid, na.t1, na.t2], [0x01020304, 1800, 2880]);
  const a = ok(parseIaAddr(findOption(na.options, O.IAADDR)!));
  assert.equal(formatIpv6(a.address), "2001:db8::100");
  assert.deepEqual([a.preferred, a.valid], [3600, 7200]);
  assert.deepEqual(parseStatus(findOption(a.options, O.STATUS_CODE)!), {
    code: 0,
    message: "ok",
  });

  // A relay wrapping it, built with the same writer.
  const r = new Dhcpv6Writer(new Uint8Array(256));
  r.u8(T.RELAY_REPL).u8(0).raw(parseIpv6("2001:db8::1")).raw(parseIpv6("fe80::2"))
    .option(O.RELAY_MSG, w.bytes());
  const rm = relay(parseDhcpv6(r.bytes()));
  assert.equal(rm.msgType, T.RELAY_REPL);
  assert.equal(formatIpv6(rm.peerAddress), "fe80::2");
  assert.equal(toHex(findOption(rm.options, O.RELAY_MSG)!), toHex(NESTED));

  // An IA_PD with an IAPREFIX.
  const p = new Dhcpv6Writer(new Uint8Array(128)).header(T.REPLY, 9)
    .open(O.IA_PD).u32(2).u32(0).u32(0)
    .open(O.IAPREFIX).u32(3600).u32(7200).u8(56).raw(parseIpv6("2001:db8:ab:cd00::"))
    .close().close();
  const pd = ok(parseIa(findOption(message(parseDhcpv6(p.bytes())).options, O.IA_PD)!));
  const px = ok(parseIaPrefix(pd.options[0]!.data));
  assert.deepEqual([px.preferred, px.valid, px.prefixLen], [3600, 7200, 56]);
  assert.equal(formatIpv6(px.prefix), "2001:db8:ab:cd00::");
});

Deno.test("dhcpv6: DUID-LL and DUID-LLT give their Ethernet MAC (RFC 8415 §11.2, §11.4)", () => {
  const mac = parseMac("02:00:5e:10:20:30");
  const ll = duidLl(mac);
  assert.equal(toHex(ll), "00030001" + "02005e102030");
  assert.equal(hexColon(duidMac(ll)!), "02:00:5e:10:20:30");
  // DUID-LLT: type 1, hardware type 1, time 0x2a2a2a2a, MAC.
  assert.equal(hexColon(duidMac(hex("0001 0001 2a2a2a2a 02005e102030"))!), "02:00:5e:10:20:30");
  // Hardware type 6 (IEEE 802) is not Ethernet.
  assert.equal(duidMac(hex("0003 0006 02005e102030")), null);
  assert.equal(duidMac(hex("0001 0006 2a2a2a2a 02005e102030")), null);
  // Wrong lengths.
  assert.equal(duidMac(hex("0003 0001 02005e1020")), null);
  assert.equal(duidMac(hex("0003 0001 02005e10203040")), null);
  assert.equal(duidMac(hex("0001 0001 2a2a2a2a 02005e1020")), null);
  assert.equal(duidMac(hex("0001 0001 02005e102030")), null, "an LL-sized LLT");
  assert.equal(duidMac(hex("000300")), null);
  // Other DUID types (EN, UUID) and a type with a high byte carry no MAC.
  assert.equal(duidMac(hex("0002 0001 02005e102030")), null);
  assert.equal(duidMac(hex("0004 0001 02005e102030")), null);
  assert.equal(duidMac(hex("0103 0001 02005e102030")), null);
});

Deno.test("dhcpv6: domain lists encode uncompressed and decode back (RFC 8415 §10)", () => {
  const bytes = encodeDomainList(["example.com", "lab.example."]);
  assert.equal(
    toHex(bytes),
    toHex(hex(
      "07 6578616d706c65 03 636f6d 00", // example.com
      "03 6c6162 07 6578616d706c65 00", // lab.example
    )),
  );
  assert.deepEqual(decodeDomainList(bytes), ["example.com", "lab.example"]);
  assert.deepEqual(encodeDomainList([]), new Uint8Array(0));
  assert.deepEqual(decodeDomainList(new Uint8Array(0)), []);

  const l63 = "a".repeat(63);
  assert.equal(encodeDomainList([`${l63}.com`])[0], 63);
  assert.deepEqual(decodeDomainList(encodeDomainList([`${l63}.com`])), [`${l63}.com`]);
  assert.throws(() => encodeDomainList([`${"a".repeat(64)}.com`]), RangeError);

  assert.equal(decodeDomainList(hex("07 6578616d")), null, "label runs past the end");
  assert.equal(decodeDomainList(hex("03 636f6d")), null, "no final zero");
  assert.equal(decodeDomainList(hex("03 636f6d 00 03 6f7267")), null, "second name unfinished");
  assert.equal(decodeDomainList(hex("03 636f6d 00 c0 00")), null, "a compression pointer");
  const long = new Uint8Array([64, ...new Uint8Array(64).fill(0x61), 0]);
  assert.equal(decodeDomainList(long), null, "a 64-byte label, even when the bytes are there");
  const pointer = new Uint8Array([0xc0, ...new Uint8Array(0xc0).fill(0x61), 0]);
  assert.equal(decodeDomainList(pointer), null, "a pointer byte is not a label length");
});

Deno.test("dhcpv6: hexColon writes two lower-case digits per byte", () => {
  assert.equal(hexColon(new Uint8Array(0)), "");
  assert.equal(hexColon(new Uint8Array([0])), "00");
  assert.equal(hexColon(hex("000a ff 1B")), "00:0a:ff:1b");
});

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();
if (!tsharkFound && !CI) {
  console.log("dhcpv6_test.ts: tshark test ignored because tshark is not installed");
}

const SERVER_MAC = parseMac("02:00:00:00:00:01");
const CLIENT_MAC = parseMac("02:00:00:00:00:02");

/** A REPLY from fe80::1 port 547 to fe80::2 port 546 in an Ethernet frame. */
function replyFrame(): Uint8Array {
  const w = new Dhcpv6Writer(new Uint8Array(512));
  w.header(T.REPLY, 0x0a0b0c)
    .option(O.SERVERID, duidLl(SERVER_MAC))
    .option(O.CLIENTID, duidLl(CLIENT_MAC))
    .open(O.IA_NA).u32(0x11223344).u32(1800).u32(2880)
    .open(O.IAADDR).raw(parseIpv6("2001:db8::100")).u32(3600).u32(7200)
    .close()
    .close()
    .option(O.DNS_SERVERS, parseIpv6("2001:db8::53"))
    .option(O.DOMAIN_LIST, encodeDomainList(["example.com"]));
  const repr = { srcPort: DHCPV6_SERVER_PORT, dstPort: DHCPV6_CLIENT_PORT, payload: w.bytes() };
  const udpLen = UdpRepr.bufferLen(repr);
  const b = new PacketBuffer(14 + IPV6_HEADER_LEN + udpLen);
  b.setFrame(0, 14 + IPV6_HEADER_LEN + udpLen);
  writeEthernetHeader(b, 0, CLIENT_MAC, SERVER_MAC, 0x86dd);
  writeIpv6Header(b, 14, {
    src: parseIpv6("fe80::1"),
    dst: parseIpv6("fe80::2"),
    nextHeader: 17,
    payloadLen: udpLen,
  });
  UdpRepr.emit(repr, b, 14 + IPV6_HEADER_LEN);
  new UdpPacket().reset(b, 14 + IPV6_HEADER_LEN).fillChecksumV6(b.data, b.data, 14 + 8, 14 + 24);
  return b.data.slice(0, b.end);
}

Deno.test({
  name: "dhcpv6: tshark dissects a REPLY built by the writer",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const dir = await Deno.makeTempDir({ prefix: "tapir_dhcpv6_" });
    const file = `${dir}/dhcpv6.pcap`;
    try {
      await Deno.writeFile(file, pcap([replyFrame()]));
      const fields = [
        "frame.protocols",
        "udp.checksum.status",
        "dhcpv6.msgtype",
        "dhcpv6.xid",
        "dhcpv6.duidll.link_layer_addr",
        "dhcpv6.iaid",
        "dhcpv6.iaid.t1",
        "dhcpv6.iaid.t2",
        "dhcpv6.iaaddr.ip",
        "dhcpv6.iaaddr.pref_lifetime",
        "dhcpv6.iaaddr.valid_lifetime",
        "dhcpv6.dns_server",
        "dhcpv6.search_list_entry",
        "_ws.malformed",
        "_ws.expert.message",
      ];
      const out = await tshark([
        "-r",
        file,
        "-o",
        "udp.check_checksum:TRUE",
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
        "frame.protocols": "eth:ethertype:ipv6:udp:dhcpv6",
        "udp.checksum.status": "1",
        "dhcpv6.msgtype": "7",
        "dhcpv6.xid": "0x0a0b0c",
        "dhcpv6.duidll.link_layer_addr": "02:00:00:00:00:01,02:00:00:00:00:02",
        "dhcpv6.iaid": "11223344",
        "dhcpv6.iaid.t1": "1800",
        "dhcpv6.iaid.t2": "2880",
        "dhcpv6.iaaddr.ip": "2001:db8::100",
        "dhcpv6.iaaddr.pref_lifetime": "3600",
        "dhcpv6.iaaddr.valid_lifetime": "7200",
        "dhcpv6.dns_server": "2001:db8::53",
        "dhcpv6.search_list_entry": "example.com.",
        "_ws.malformed": "",
        "_ws.expert.message": "",
      });

      // Negative control: the same run flags a domain list whose first label overruns.
      const bad = replyFrame();
      assert.equal(bad[bad.length - 13], 7, 'the length of the label "example"');
      bad[bad.length - 13] = 8;
      await Deno.writeFile(file, pcap([bad]));
      const control = await tshark(["-r", file, "-T", "fields", "-e", "_ws.expert.message"]);
      assert.match(control, /not a DNS record encoded/, control);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
