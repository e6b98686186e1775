import assert from "node:assert/strict";
import { ArpOp, ArpPacket, ArpRepr } from "../../../stack/wire/arp.ts";
import { parseIpv4 } from "../../../stack/wire/ip_address.ts";
import { parseMac } from "../../../stack/wire/mac_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

// Byte vectors built with scapy 2.5.0 by testdata/gen_vectors.py.
const cases: { name: string; bytes: Uint8Array; repr: ArpRepr }[] = [
  {
    name: "ArpRepr parses and emits a request",
    // ARP(op=1, hwsrc='02:00:00:00:00:01', psrc='192.0.2.1', hwdst='00:00:00:00:00:00', pdst='192.0.2.2')
    bytes: hex(
      "0001", // hardware type 1 (Ethernet)
      "0800", // protocol type 0x0800 (IPv4)
      "06", // hardware length 6
      "04", // protocol length 4
      "0001", // operation 1 (request)
      "020000000001", // sender MAC 02:00:00:00:00:01
      "c0000201", // sender IP 192.0.2.1
      "000000000000", // target MAC 00:00:00:00:00:00
      "c0000202", // target IP 192.0.2.2
    ),
    repr: {
      op: ArpOp.REQUEST,
      senderMac: parseMac("02:00:00:00:00:01"),
      senderIp: parseIpv4("192.0.2.1"),
      targetMac: new Uint8Array(6),
      targetIp: parseIpv4("192.0.2.2"),
    },
  },
  {
    name: "ArpRepr parses and emits a reply",
    // ARP(op=2, hwsrc='02:00:00:00:00:02', psrc='192.0.2.2', hwdst='02:00:00:00:00:01', pdst='192.0.2.1')
    bytes: hex(
      "0001", // hardware type 1 (Ethernet)
      "0800", // protocol type 0x0800 (IPv4)
      "06", // hardware length 6
      "04", // protocol length 4
      "0002", // operation 2 (reply)
      "020000000002", // sender MAC 02:00:00:00:00:02
      "c0000202", // sender IP 192.0.2.2
      "020000000001", // target MAC 02:00:00:00:00:01
      "c0000201", // target IP 192.0.2.1
    ),
    repr: {
      op: ArpOp.REPLY,
      senderMac: parseMac("02:00:00:00:00:02"),
      senderIp: parseIpv4("192.0.2.2"),
      targetMac: parseMac("02:00:00:00:00:01"),
      targetIp: parseIpv4("192.0.2.1"),
    },
  },
];

Deno.test("ArpRepr parse and emit match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const arp = new ArpPacket().reset(bufferWith(c.bytes, 18), AT); // Ethernet padding after
      assert.equal(arp.check(), true);
      assert.deepStrictEqual(ArpRepr.parse(arp), c.repr);
      const out = blankBuffer(ArpRepr.bufferLen(c.repr));
      ArpRepr.emit(c.repr, out, AT);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + 28], 0xa5);
    });
  }
});

Deno.test("ArpPacket accessors", () => {
  const arp = new ArpPacket().reset(bufferWith(cases[1]!.bytes), AT);
  assert.equal(arp.op(), 2);
  assert.equal(arp.spa(), parseIpv4("192.0.2.2"));
  assert.equal(arp.tpa(), parseIpv4("192.0.2.1"));
  assert.equal(arp.shaOffset(), AT + 8);
  assert.equal(arp.thaOffset(), AT + 18);
  assert.equal(toHex(arp.sha()), "020000000002");
  arp.setTpa(0xffffffff);
  assert.equal(arp.tpa(), 0xffffffff);
});

const req = cases[0]!.bytes;
function patched(at: number, v: number): Uint8Array {
  const b = req.slice();
  b[at] = v;
  return b;
}

const malformed: { name: string; bytes: Uint8Array }[] = [
  { name: "ArpPacket.check() rejects 27 bytes", bytes: req.slice(0, 27) },
  { name: "ArpPacket.check() rejects hardware type 6 (IEEE 802)", bytes: patched(1, 6) },
  {
    name: "ArpPacket.check() rejects protocol type 0x86dd",
    bytes: hex("000186dd", toHex(req.slice(4))),
  },
  { name: "ArpPacket.check() rejects hardware length 8", bytes: patched(4, 8) },
  { name: "ArpPacket.check() rejects protocol length 16", bytes: patched(5, 16) },
];

Deno.test("ArpPacket.check() rejects other hardware and protocol types", async (t) => {
  for (const c of malformed) {
    await t.step(c.name, () => {
      const arp = new ArpPacket().reset(bufferWith(c.bytes), AT);
      assert.equal(arp.check(), false);
      assert.equal(ArpRepr.parse(arp), null);
    });
  }
  await t.step("ArpRepr.parse() rejects operation 3 (RARP request)", () => {
    const arp = new ArpPacket().reset(bufferWith(patched(7, 3)), AT);
    assert.equal(arp.check(), true);
    assert.equal(ArpRepr.parse(arp), null);
  });
});
