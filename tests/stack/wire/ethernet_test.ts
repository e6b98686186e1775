import assert from "node:assert/strict";
import {
  ETHERNET_HEADER_LEN,
  EthernetFrame,
  EtherType,
  writeEthernetHeader,
} from "../../../stack/wire/ethernet.ts";
import { BROADCAST_MAC, parseMac } from "../../../stack/wire/mac_address.ts";
import { AT, blankBuffer, bufferWith, frameOf, hex, toHex } from "./_helpers.ts";

// Ethernet headers built with scapy 2.5.0.
const cases: { name: string; bytes: Uint8Array; dst: string; src: string; type: number }[] = [
  {
    name: "EthernetFrame reads and writeEthernetHeader writes a broadcast ARP header",
    // Ether(dst='ff:ff:ff:ff:ff:ff', src='02:00:00:00:00:01', type=0x0806)
    bytes: hex(
      "ffffffffffff", // destination ff:ff:ff:ff:ff:ff
      "020000000001", // source 02:00:00:00:00:01
      "0806", // EtherType ARP
    ),
    dst: "ff:ff:ff:ff:ff:ff",
    src: "02:00:00:00:00:01",
    type: EtherType.ARP,
  },
  {
    name: "EthernetFrame reads and writeEthernetHeader writes a unicast IPv6 header",
    // Ether(dst='02:00:00:00:00:02', src='02:00:00:00:00:01', type=0x86dd)
    bytes: hex(
      "020000000002", // destination 02:00:00:00:00:02
      "020000000001", // source 02:00:00:00:00:01
      "86dd", // EtherType IPv6
    ),
    dst: "02:00:00:00:00:02",
    src: "02:00:00:00:00:01",
    type: EtherType.IPV6,
  },
];

Deno.test("EthernetFrame and writeEthernetHeader match the byte vectors", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      const p = bufferWith(c.bytes, 46);
      const eth = new EthernetFrame().reset(p, AT);
      assert.equal(eth.check(), true);
      assert.equal(eth.etherType(), c.type);
      assert.equal(
        toHex(p.data.subarray(eth.dstOffset(), eth.dstOffset() + 6)),
        c.dst.replaceAll(":", ""),
      );
      assert.equal(
        toHex(p.data.subarray(eth.srcOffset(), eth.srcOffset() + 6)),
        c.src.replaceAll(":", ""),
      );
      assert.equal(eth.dstIsMulticast(), c.dst === "ff:ff:ff:ff:ff:ff");
      assert.equal(eth.payloadOffset(), AT + ETHERNET_HEADER_LEN);
      const out = blankBuffer(14);
      writeEthernetHeader(out, AT, parseMac(c.dst), parseMac(c.src), c.type);
      assert.equal(toHex(frameOf(out)), toHex(c.bytes));
      assert.equal(out.data[AT + 14], 0xa5);
    });
  }
});

Deno.test("EthernetFrame setters and check()", async (t) => {
  await t.step("EthernetFrame.check() rejects a 13-byte frame", () => {
    const eth = new EthernetFrame().reset(bufferWith(cases[0]!.bytes.slice(0, 13)), AT);
    assert.equal(eth.check(), false);
  });
  await t.step("EthernetFrame setters write in place", () => {
    const p = blankBuffer(14);
    const eth = new EthernetFrame().reset(p, AT);
    eth.setDst(BROADCAST_MAC);
    eth.setSrc(parseMac("02:00:00:00:00:01"));
    eth.setEtherType(EtherType.IPV4);
    assert.equal(toHex(frameOf(p)), "ffffffffffff" + "020000000001" + "0800");
  });
});
