/**
 * TCP resets for both families (RFC 9293 §3.5.2, "Reset Generation"):
 * what a host answers to a segment for a port nobody listens on, and what
 * `REJECT --reject-with tcp-reset` sends (gVisor's
 * `network/internal/ip/reject_with_reset.go` plays the same part). One
 * implementation: only the IP header and the pseudo-header differ.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { StackStats } from "../stats.ts";
import { IpProtocol, writeIpv4Header } from "../wire/ipv4.ts";
import { IPV6_HEADER_LEN, writeIpv6Header } from "../wire/ipv6.ts";
import {
  finishChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../wire/checksum.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import { type BufferPool, HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;
const TCP_HEADER_LEN = 20;

/** What the reset needs of the family's layer: its buffers and its output path. */
export interface TcpResetLayer {
  readonly stack: { readonly pool: BufferPool; readonly stats: StackStats };
  output(pkt: PacketBuffer, ipOff: number, opts?: { nic?: Nic }): boolean;
}

/**
 * Answer the TCP segment at `l4Off` (ending at `l4End`) of the IP packet
 * at `ipOff` with a reset from its destination to its source, unless it is
 * a reset itself. `family` says which IP header `ipOff` holds; `hopLimit`
 * is the reset's TTL / hop limit; an IPv6 reset leaves by `inNic` (its
 * link-local destinations need the interface).
 *
 * @returns true when the reset was handed to the output path and left
 */
export function sendTcpReset(
  family: 4 | 6,
  layer: TcpResetLayer,
  hopLimit: number,
  inNic: Nic | null,
  pkt: PacketBuffer,
  ipOff: number,
  l4Off: number,
  l4End: number,
): boolean {
  if (l4Off + TCP_HEADER_LEN > pkt.end || l4End - l4Off < TCP_HEADER_LEN) return false;
  const d = pkt.data, v = pkt.view;
  const flags = d[l4Off + 13]!;
  if ((flags & RST) !== 0) return false;
  const dataOff = (d[l4Off + 12]! >> 4) << 2;
  const segLen = Math.max(0, l4End - l4Off - dataOff) + ((flags & SYN) ? 1 : 0) +
    ((flags & FIN) ? 1 : 0);
  // With ACK: <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  const hasAck = (flags & ACK) !== 0;
  const seq = hasAck ? v.getUint32(l4Off + 8) : 0;
  const ack = hasAck ? 0 : (v.getUint32(l4Off + 4) + segLen) >>> 0;
  const sport = v.getUint16(l4Off + 2), dport = v.getUint16(l4Off);
  const pool = layer.stack.pool;
  const b = pool.get();
  if (b === null) {
    layer.stack.stats.bufferPoolExhausted++;
    return false;
  }
  try {
    const off = HEADROOM + ETHERNET_HEADER_LEN;
    let t: number;
    let sum: number;
    if (family === 4) {
      const src = v.getUint32(ipOff + 16), dst = v.getUint32(ipOff + 12);
      writeIpv4Header(b, off, {
        src,
        dst,
        protocol: IpProtocol.TCP,
        payloadLen: TCP_HEADER_LEN,
        ttl: hopLimit,
        id: 0,
        dontFragment: true,
      });
      t = off + 20;
      sum = ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, TCP_HEADER_LEN);
    } else {
      writeIpv6Header(b, off, {
        src: d.subarray(ipOff + 24, ipOff + 40),
        dst: d.subarray(ipOff + 8, ipOff + 24),
        nextHeader: IpProtocol.TCP,
        payloadLen: TCP_HEADER_LEN,
        hopLimit,
      });
      t = off + IPV6_HEADER_LEN;
      sum = ipv6PseudoHeaderSum(b.data, off + 8, off + 24, IpProtocol.TCP, TCP_HEADER_LEN);
    }
    const w = b.view;
    w.setUint16(t, sport);
    w.setUint16(t + 2, dport);
    w.setUint32(t + 4, seq);
    w.setUint32(t + 8, ack);
    w.setUint8(t + 12, 5 << 4);
    w.setUint8(t + 13, hasAck ? RST : RST | ACK);
    w.setUint16(t + 14, 0);
    w.setUint32(t + 16, 0);
    w.setUint16(t + 16, finishChecksum(onesSum(b.data, t, TCP_HEADER_LEN, sum)));
    b.start = HEADROOM;
    b.end = t + TCP_HEADER_LEN;
    return layer.output(b, off, family === 6 && inNic !== null ? { nic: inNic } : {});
  } finally {
    pool.put(b);
  }
}
