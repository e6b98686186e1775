/**
 * IPv6's TCP answer when nothing listens: a reset (RFC 9293 §3.5.2), as a
 * Linux host without listeners answers; and the upper-layer checksum
 * fixers the output path uses once it chose a source. UDP lives in
 * stack/transport/udp.ts.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv6 } from "./ipv6.ts";
import { Ipv6 as Ipv6Layer } from "./ipv6.ts";
import type { Ipv6Packet } from "../wire/ipv6.ts";
import { IPV6_HEADER_LEN } from "../wire/ipv6.ts";
import { finishChecksum, ipv6PseudoHeaderSum, onesSum } from "../wire/checksum.ts";
import { ipv6IsMulticast } from "../wire/ip_address.ts";
import { VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM } from "../wire/packet_buffer.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";

const UDP = 17, TCP = 6;
const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

function checksumOk(
  pkt: PacketBuffer,
  ip: Ipv6Packet,
  off: number,
  len: number,
  proto: number,
): boolean {
  if ((pkt.vnetFlags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0) return true;
  const sum = ipv6PseudoHeaderSum(pkt.data, ip.srcOffset(), ip.dstOffset(), proto, len);
  return finishChecksum(onesSum(pkt.data, off, len, sum)) === 0;
}

/** Register the TCP handler and the UDP/TCP checksum fixers for IPv6. */
export function installIpv6Transports(ipv6: Ipv6): void {
  ipv6.transports.set(TCP, (nic, pkt, ip, off, len) => tcp6(ipv6, nic, pkt, ip, off, len));
  ipv6.checksumFixers.set(UDP, (pkt, ipOff) => {
    const l4 = ipOff + IPV6_HEADER_LEN;
    const len = pkt.view.getUint16(ipOff + 4);
    pkt.view.setUint16(l4 + 6, 0);
    const sum = ipv6PseudoHeaderSum(pkt.data, ipOff + 8, ipOff + 24, UDP, len);
    const c = finishChecksum(onesSum(pkt.data, l4, len, sum));
    // RFC 8200 §8.1: a computed 0 is sent as 0xffff.
    pkt.view.setUint16(l4 + 6, c === 0 ? 0xffff : c);
  });
  ipv6.checksumFixers.set(TCP, (pkt, ipOff) => {
    const l4 = ipOff + IPV6_HEADER_LEN;
    const len = pkt.view.getUint16(ipOff + 4);
    pkt.view.setUint16(l4 + 16, 0);
    const sum = ipv6PseudoHeaderSum(pkt.data, ipOff + 8, ipOff + 24, TCP, len);
    pkt.view.setUint16(l4 + 16, finishChecksum(onesSum(pkt.data, l4, len, sum)));
  });
}

function tcp6(
  ipv6: Ipv6,
  nic: Nic | null,
  pkt: PacketBuffer,
  ip: Ipv6Packet,
  off: number,
  len: number,
): void {
  if (len < 20 || ipv6IsMulticast(pkt.data, ip.dstOffset())) return;
  if (!checksumOk(pkt, ip, off, len, TCP)) return;
  sendTcpReset6(ipv6, nic, pkt, ip.off, off);
}

/**
 * Answer the TCP segment at `l4Off` of the IPv6 packet at `ipOff` with a
 * reset from its destination (RFC 9293 §3.5.2), out of `inNic`.
 *
 * @returns true when a reset was sent (never for a reset)
 */
export function sendTcpReset6(
  ipv6: Ipv6,
  inNic: Nic | null,
  pkt: PacketBuffer,
  ipOff: number,
  l4Off: number,
): boolean {
  const d = pkt.data, v = pkt.view;
  const len = ipOff + 40 + v.getUint16(ipOff + 4) - l4Off;
  if (len < 20 || l4Off + 20 > pkt.end) return false;
  const flags = d[l4Off + 13]!;
  if ((flags & RST) !== 0) return false;
  const dataOff = (d[l4Off + 12]! >> 4) << 2;
  const segLen = Math.max(0, len - dataOff) + ((flags & SYN) ? 1 : 0) + ((flags & FIN) ? 1 : 0);
  const hasAck = (flags & ACK) !== 0;
  const pool = ipv6.stack.pool;
  const b = pool.get();
  if (b === null) return false;
  try {
    const off = Ipv6Layer.buildHeader(b, {
      src: d.subarray(ipOff + 24, ipOff + 40),
      dst: d.subarray(ipOff + 8, ipOff + 24),
      nextHeader: TCP,
      payloadLen: 20,
      hopLimit: ipv6.settings.defaultHopLimit,
    });
    const t = off + 40;
    const w = b.view;
    w.setUint16(t, v.getUint16(l4Off + 2));
    w.setUint16(t + 2, v.getUint16(l4Off));
    // With ACK: <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    w.setUint32(t + 4, hasAck ? v.getUint32(l4Off + 8) : 0);
    w.setUint32(t + 8, hasAck ? 0 : (v.getUint32(l4Off + 4) + segLen) >>> 0);
    w.setUint8(t + 12, 5 << 4);
    w.setUint8(t + 13, hasAck ? RST : RST | ACK);
    w.setUint16(t + 14, 0);
    w.setUint32(t + 16, 0);
    const sum = ipv6PseudoHeaderSum(b.data, off + 8, off + 24, TCP, 20);
    w.setUint16(t + 16, finishChecksum(onesSum(b.data, t, 20, sum)));
    ipv6.stack.stats.ipv6.tcpResetsSent++;
    return ipv6.output(b, off, { nic: inNic ?? undefined });
  } finally {
    pool.put(b);
  }
}
