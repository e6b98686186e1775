/**
 * The TCP reset both families send (RFC 793 §3.4 "Reset Generation", RFC
 * 9293 §3.5.2): what a host answers to a segment for a port nobody listens
 * on, and what REJECT --reject-with tcp-reset sends. This file holds the
 * family-neutral part (gVisor's `network/internal/ip/reject_with_reset`):
 * whether a segment gets a reset and the reset's TCP header; each family
 * adds its IP header and pseudo-header checksum.
 *
 * @module
 */
import type { PacketBuffer } from "../wire/packet_buffer.ts";

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

/** Bytes of the reset's TCP header (no options, no data). */
export const TCP_RESET_LEN = 20;

/**
 * Whether the TCP segment of `l4Len` bytes at `l4Off` in `seg` is answered
 * with a reset: a whole TCP header that is not a reset itself.
 */
export function tcpResetApplies(seg: PacketBuffer, l4Off: number, l4Len: number): boolean {
  if (l4Len < 20 || l4Off + 20 > seg.end) return false;
  return (seg.data[l4Off + 13]! & RST) === 0;
}

/**
 * Write at `t` of `b` the TCP header (checksum 0) of the reset answering
 * the segment at `l4Off` of `seg` (see {@link tcpResetApplies}): ports
 * swapped; with ACK, <SEQ=SEG.ACK><CTL=RST>; without,
 * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
 */
export function writeTcpReset(
  seg: PacketBuffer,
  l4Off: number,
  l4Len: number,
  b: PacketBuffer,
  t: number,
): void {
  const d = seg.data, v = seg.view, w = b.view;
  const flags = d[l4Off + 13]!;
  const dataOff = (d[l4Off + 12]! >> 4) << 2;
  const segLen = Math.max(0, l4Len - dataOff) + ((flags & SYN) ? 1 : 0) + ((flags & FIN) ? 1 : 0);
  const hasAck = (flags & ACK) !== 0;
  w.setUint16(t, v.getUint16(l4Off + 2));
  w.setUint16(t + 2, v.getUint16(l4Off));
  w.setUint32(t + 4, hasAck ? v.getUint32(l4Off + 8) : 0);
  w.setUint32(t + 8, hasAck ? 0 : (v.getUint32(l4Off + 4) + segLen) >>> 0);
  w.setUint8(t + 12, 5 << 4);
  w.setUint8(t + 13, hasAck ? RST : RST | ACK);
  w.setUint16(t + 14, 0);
  w.setUint32(t + 16, 0);
}
