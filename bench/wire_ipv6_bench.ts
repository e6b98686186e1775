/**
 * Micro-benchmarks of the IPv6 forwarding fast path's wire operations:
 * IPv6 check + hop limit decrement, the same behind an extension-header
 * walk (Hop-by-Hop + Fragment), Hop-by-Hop option processing, and the
 * ICMPv6 checksum over 64 B with the pseudo header.
 */
import { writeEthernetHeader } from "../stack/wire/ethernet.ts";
import { PacketBuffer } from "../stack/wire/packet_buffer.ts";
import { Ipv6Packet, writeIpv6Header } from "../stack/wire/ipv6.ts";
import {
  Ipv6ExtHeaderIterator,
  Ipv6OptionsResult,
  processIpv6Options,
  writeFragmentHeader,
} from "../stack/wire/ipv6_ext.ts";
import { Icmpv6Packet } from "../stack/wire/icmpv6.ts";
import { writeRouterAlertHopByHop } from "../stack/wire/mld.ts";
import { parseIpv6 } from "../stack/wire/ip_address.ts";

const SRC = parseIpv6("2001:db8::1");
const DST = parseIpv6("2001:db8:1::2");
const IP = 142;

// A 1500-byte UDP packet.
const p = new PacketBuffer();
p.setFrame(128, 14 + 1500);
writeEthernetHeader(
  p,
  128,
  new Uint8Array([2, 0, 0, 0, 0, 2]),
  new Uint8Array([2, 0, 0, 0, 0, 1]),
  0x86dd,
);
writeIpv6Header(p, IP, { src: SRC, dst: DST, nextHeader: 17, payloadLen: 1460, hopLimit: 255 });

// Hop-by-Hop (Router Alert) + Fragment + UDP.
const q = new PacketBuffer();
q.setFrame(128, 14 + 1500);
writeIpv6Header(q, IP, { src: SRC, dst: DST, nextHeader: 0, payloadLen: 1460, hopLimit: 255 });
writeRouterAlertHopByHop(q, IP + 40, 44, 2);
writeFragmentHeader(q, IP + 48, {
  nextHeader: 17,
  fragmentOffset: 0,
  moreFragments: true,
  identification: 1,
});

// An ICMPv6 echo request of 64 bytes.
const e = new PacketBuffer();
e.setFrame(128, 14 + 40 + 64);
writeIpv6Header(e, IP, { src: SRC, dst: DST, nextHeader: 58, payloadLen: 64 });
e.data[IP + 40] = 128;

const ip = new Ipv6Packet();
const ext = new Ipv6ExtHeaderIterator();
const res = new Ipv6OptionsResult();
const icmp = new Icmpv6Packet();
let sink = 0;

Deno.bench("IPv6 check + hop limit decrement", () => {
  ip.reset(p, IP);
  if (ip.check() && ip.version() === 6) {
    if (ip.hopLimit() <= 1) ip.setHopLimit(255);
    sink ^= ip.decrementHopLimit();
  }
});

Deno.bench("IPv6 check + Hop-by-Hop options + hop limit decrement", () => {
  ip.reset(q, IP);
  if (ip.check() && ip.version() === 6) {
    if (ip.nextHeader() === 0) {
      processIpv6Options(q.data, IP + 40, 8, IP, true, false, res);
      sink ^= res.verdict;
    }
    if (ip.hopLimit() <= 1) ip.setHopLimit(255);
    sink ^= ip.decrementHopLimit();
  }
});

Deno.bench("IPv6 extension-header walk to the upper layer (HBH + Fragment)", () => {
  ext.reset(ip.reset(q, IP));
  while (ext.next()) sink ^= ext.type;
});

Deno.bench("ICMPv6 fillChecksum 64 B (pseudo header)", () => {
  icmp.reset(e, IP + 40);
  icmp.fillChecksum(IP, 64);
  sink ^= icmp.checksum();
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
