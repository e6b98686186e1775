/**
 * Micro-benchmarks of the forwarding fast path's wire operations: Ethernet
 * parse, IPv4 check + TTL decrement with the incremental checksum, the
 * Internet checksum over 64 B and 1500 B, and checksumUpdate16.
 */
import { EthernetFrame, writeEthernetHeader } from "../stack/wire/ethernet.ts";
import { PacketBuffer } from "../stack/wire/packet_buffer.ts";
import { Ipv4Packet, writeIpv4Header } from "../stack/wire/ipv4.ts";
import { checksumUpdate16, internetChecksum } from "../stack/wire/checksum.ts";

const p = new PacketBuffer();
p.setFrame(128, 14 + 1500);
writeEthernetHeader(
  p,
  128,
  new Uint8Array([2, 0, 0, 0, 0, 2]),
  new Uint8Array([2, 0, 0, 0, 0, 1]),
  0x0800,
);
writeIpv4Header(p, 142, {
  src: 0xc0000201,
  dst: 0xc6336402,
  protocol: 17,
  payloadLen: 1480,
  ttl: 255,
});
for (let i = 162; i < p.end; i++) p.data[i] = i & 0xff;

const eth = new EthernetFrame();
const ip = new Ipv4Packet();
let sink = 0;

Deno.bench("Ethernet parse (reset + check + etherType)", () => {
  eth.reset(p, p.start);
  if (eth.check()) sink ^= eth.etherType();
});

Deno.bench("IPv4 check + TTL decrement (incremental checksum)", () => {
  ip.reset(p, 142);
  if (ip.check() && ip.version() === 4) {
    if (ip.ttl() <= 1) {
      ip.setTtl(255);
      ip.fillChecksum();
    }
    sink ^= ip.decrementTtl();
  }
});

Deno.bench("IPv4 header verifyChecksum (20 B)", () => {
  ip.reset(p, 142);
  if (ip.verifyChecksum()) sink ^= 1;
});

Deno.bench("internetChecksum 64 B", () => {
  sink ^= internetChecksum(p.data, 142, 64);
});

Deno.bench("internetChecksum 1500 B", () => {
  sink ^= internetChecksum(p.data, 142, 1500);
});

Deno.bench("checksumUpdate16", () => {
  sink = checksumUpdate16(sink & 0xffff, 0x4001, 0x3f01);
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
