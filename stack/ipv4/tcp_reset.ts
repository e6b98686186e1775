/**
 * TCP resets for IPv4 (RFC 793 §3.4 "Reset Generation", RFC 9293
 * §3.5.2): what a host answers to a segment for a port nobody listens on,
 * and what REJECT --reject-with tcp-reset sends.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv4Layer as Ipv4 } from "./_layer.ts";
import { IpProtocol, type Ipv4Packet, writeIpv4Header } from "../wire/ipv4.ts";
import { finishChecksum, ipv4PseudoHeaderSum, onesSum } from "../wire/checksum.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import { HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

/**
 * Answer the TCP segment in `pkt` (IP header viewed by `ip`) with a reset,
 * unless it is a reset itself. The reset goes from the segment's
 * destination to its source.
 *
 * @returns true when a reset was sent
 */
export function sendTcpReset(
  ipv4: Ipv4,
  _nic: Nic | null,
  pkt: PacketBuffer,
  ip: Ipv4Packet,
): boolean {
  const t = ip.off + ip.headerLen();
  if (t + 20 > pkt.end) return false;
  const v = pkt.view;
  const flags = pkt.data[t + 13]!;
  if ((flags & RST) !== 0) return false;
  const dataOff = (pkt.data[t + 12]! >> 4) << 2;
  const segLen = Math.max(0, ip.totalLength() - ip.headerLen() - dataOff) +
    ((flags & SYN) ? 1 : 0) +
    ((flags & FIN) ? 1 : 0);
  const src = ip.dst(), dst = ip.src();
  const sport = v.getUint16(t + 2), dport = v.getUint16(t);
  // RFC 793: with ACK, <SEQ=SEG.ACK><CTL=RST>; without, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  const hasAck = (flags & ACK) !== 0;
  const seq = hasAck ? v.getUint32(t + 8) : 0;
  const ack = hasAck ? 0 : (v.getUint32(t + 4) + segLen) >>> 0;
  const pool = ipv4.stack.pool;
  const b = pool.get();
  if (b === null) {
    ipv4.stack.stats.bufferPoolExhausted++;
    return false;
  }
  try {
    const off = HEADROOM + ETHERNET_HEADER_LEN;
    writeIpv4Header(b, off, {
      src,
      dst,
      protocol: IpProtocol.TCP,
      payloadLen: 20,
      ttl: ipv4.settings.defaultTtl,
      id: 0,
      dontFragment: true,
    });
    const r = off + 20;
    const w = b.view;
    w.setUint16(r, sport);
    w.setUint16(r + 2, dport);
    w.setUint32(r + 4, seq);
    w.setUint32(r + 8, ack);
    w.setUint8(r + 12, 5 << 4);
    w.setUint8(r + 13, hasAck ? RST : RST | ACK);
    w.setUint16(r + 14, 0);
    w.setUint16(r + 16, 0);
    w.setUint16(r + 18, 0);
    w.setUint16(
      r + 16,
      finishChecksum(onesSum(b.data, r, 20, ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, 20))),
    );
    b.start = HEADROOM;
    b.end = r + 20;
    return ipv4.output(b, off);
  } finally {
    pool.put(b);
  }
}
