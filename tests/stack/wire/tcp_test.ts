import assert from "node:assert/strict";
import { TcpFlags, TcpPacket, TcpRepr } from "../../../stack/wire/tcp.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

const A = parseIpv4("192.0.2.1");
const B = parseIpv4("198.51.100.2");

// TCP parts of testdata/gen_vectors.py's "tcp syn mss" and "tcp ack data" cases (scapy 2.5.0).
const cases: { name: string; bytes: Uint8Array; repr: TcpRepr; src: number; dst: number }[] = [
  {
    name: "TcpRepr parses and emits a SYN with MSS 1460",
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x4321, flags='DF')/TCP(sport=40000,
    //   dport=80, seq=1000, flags='S', window=64240, options=[('MSS', 1460)])
    bytes: hex(
      "9c40", // source port 40000
      "0050", // destination port 80
      "000003e8", // sequence 1000
      "00000000", // acknowledgment 0
      "60", // data offset 6
      "02", // flags 0x02 (SYN)
      "faf0", // window 64240
      "1086", // checksum
      "0000", // urgent pointer 0
      "020405b4", // MSS option: kind 2, length 4, value 1460
    ),
    repr: {
      srcPort: 40000,
      dstPort: 80,
      seq: 1000,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
      urgent: 0,
      mss: 1460,
      payload: new Uint8Array(0),
    },
    src: A,
    dst: B,
  },
  {
    name: "TcpRepr parses and emits a PSH/ACK segment with data",
    // IP(src='198.51.100.2', dst='192.0.2.1', ttl=64, id=0x4322, flags='DF')/TCP(sport=80,
    //   dport=40000, seq=5000, ack=1001, flags='PA', window=502)/b'HTTP'
    bytes: hex(
      "0050", // source port 80
      "9c40", // destination port 40000
      "00001388", // sequence 5000
      "000003e9", // acknowledgment 1001
      "50", // data offset 5
      "18", // flags 0x18 (PSH ACK)
      "01f6", // window 502
      "70f5", // checksum
      "0000", // urgent pointer 0
      "48545450", // payload b'HTTP'
    ),
    repr: {
      srcPort: 80,
      dstPort: 40000,
      seq: 5000,
      ack: 1001,
      flags: TcpFlags.PSH | TcpFlags.ACK,
      window: 502,
      urgent: 0,
      mss: null,
      payload: hex("48545450"),
    },
    src: B,
    dst: A,
  },
];

Deno.test("TcpRepr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const tcp = new TcpPacket().reset(bufferWith(c.bytes), AT);
      assert.equal(tcp.check(), true);
      assert.equal(tcp.verifyChecksumV4(c.src, c.dst), true);
      assert.equal(tcp.verifyChecksumV4(c.dst, c.src + 1), false);
      assert.deepStrictEqual(TcpRepr.parse(tcp), c.repr);
      const len = TcpRepr.bufferLen(c.repr);
      const out = blankBuffer(len);
      TcpRepr.emit(c.repr, out, AT, { src: c.src, dst: c.dst });
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + len], 0xa5);
    });
  }
});

Deno.test("TcpPacket accessors, MSS and checksums", async (t) => {
  await t.step("TcpPacket reads ports, flags and lengths", () => {
    const tcp = new TcpPacket().reset(bufferWith(cases[0]!.bytes), AT);
    assert.equal(tcp.dataOffset(), 6);
    assert.equal(tcp.headerLen(), 24);
    assert.equal(tcp.hasFlags(TcpFlags.SYN), true);
    assert.equal(tcp.hasFlags(TcpFlags.SYN | TcpFlags.ACK), false);
    assert.equal(tcp.payloadOffset(), AT + 24);
    tcp.setSeq(0xffffffff);
    assert.equal(tcp.seq(), 0xffffffff);
  });
  await t.step("TcpPacket.setMss() patches the checksum incrementally (even offset)", () => {
    const tcp = new TcpPacket().reset(bufferWith(cases[0]!.bytes), AT);
    assert.equal(tcp.setMss(1400), true);
    assert.equal(tcp.mss(), 1400);
    assert.equal(tcp.verifyChecksumV4(A, B), true);
  });
  await t.step(
    "TcpPacket.setMss() patches the checksum when MSS follows a NOP (odd offset)",
    () => {
      // scapy: TCP(sport=40000, dport=80, seq=1000, flags='S', window=64240,
      //   options=[NOP, ('MSS', 1460), NOP, NOP, NOP]) from 192.0.2.1 to 198.51.100.2
      const before = hex(
        "9c400050000003e800000000",
        "7002faf0",
        "4e30",
        "0000",
        "01",
        "020405b4",
        "010101",
      );
      // The same with MSS 1400 (scapy), checksum 8a30.
      const after = hex(
        "9c400050000003e800000000",
        "7002faf0",
        "8a30",
        "0000",
        "01",
        "02040578",
        "010101",
      );
      const p = bufferWith(before);
      const tcp = new TcpPacket().reset(p, AT);
      assert.equal(tcp.verifyChecksumV4(A, B), true);
      assert.equal(tcp.mss(), 1460);
      tcp.setMss(1400);
      assert.equal(toHex(frameOf(p)), toHex(after));
    },
  );
  await t.step("TcpPacket.setMss() returns false without an MSS option", () => {
    const tcp = new TcpPacket().reset(bufferWith(cases[1]!.bytes), AT);
    assert.equal(tcp.mss(), -1);
    assert.equal(tcp.setMss(1200), false);
  });
  await t.step("TcpPacket.verifyChecksumV6() accepts a scapy IPv6 SYN", () => {
    // IPv6(src='2001:db8::1', dst='2001:db8::2')/TCP(sport=40000, dport=80, seq=1000,
    //   flags='S', window=64240, options=[('MSS', 1440)])
    const bytes = hex("9c400050000003e800000000", "6002faf0", "a15c", "0000", "020405a0");
    const tcp = new TcpPacket().reset(bufferWith(bytes), AT);
    const s = parseIpv6("2001:db8::1");
    const d = parseIpv6("2001:db8::2");
    assert.equal(tcp.verifyChecksumV6(s, d), true);
    tcp.fillChecksumV6(s, d);
    assert.equal(tcp.checksum(), 0xa15c);
  });
});

const syn = cases[0]!.bytes;
const malformed: { name: string; bytes: Uint8Array }[] = [
  { name: "TcpPacket.check() rejects a buffer shorter than 20 bytes", bytes: syn.slice(0, 19) },
  {
    name: "TcpPacket.check() rejects data offset below 5",
    bytes: hex(toHex(syn.slice(0, 12)), "40", toHex(syn.slice(13))),
  },
  {
    name: "TcpPacket.check() rejects options past the buffer",
    bytes: hex(toHex(syn.slice(0, 12)), "70", toHex(syn.slice(13))),
  },
];

Deno.test("TcpPacket.check() rejects malformed headers without throwing", async (t) => {
  for (const c of malformed) {
    await t.step(c.name, () => {
      const tcp = new TcpPacket().reset(bufferWith(c.bytes), AT);
      assert.equal(tcp.check(), false);
      assert.equal(TcpRepr.parse(tcp), null);
    });
  }
  await t.step("TcpPacket.mss() ignores a malformed option list", () => {
    const tcp = new TcpPacket().reset(bufferWith(hex(toHex(syn.slice(0, 20)), "02090000")), AT);
    assert.equal(tcp.check(), true);
    assert.equal(tcp.mss(), -1);
  });
});
