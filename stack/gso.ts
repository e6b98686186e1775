/**
 * Software segmentation of TCP GSO super-frames (what a NIC's TSO would
 * do), for a super-frame leaving by a link without offloads: each segment
 * gets copies of the headers, its slice of the payload, its sequence
 * number, IPv4 ID, lengths and full checksums. FIN and PSH stay on the last
 * segment only, CWR on the first only (as Linux's tcp_gso_segment does).
 *
 * @module
 */
import {
  finishChecksum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "./wire/checksum.ts";
import {
  type BufferPool,
  HEADROOM,
  type PacketBuffer,
  VNET_F_NEEDS_CSUM,
} from "./wire/packet_buffer.ts";

const TCP = 6;
const FIN = 0x01, PSH = 0x08, CWR = 0x80;

/**
 * Split the TCP super-frame whose IP header starts at `ipOff` into
 * segments of `pkt.gsoSize` payload bytes and hand each to `emit` (which
 * must not keep the buffer).
 *
 * @returns false when the frame is not TCP over IPv4/IPv6 without
 * extension headers, is malformed, or the pool ran dry.
 */
export function segmentGso(
  pool: BufferPool,
  pkt: PacketBuffer,
  ipOff: number,
  emit: (seg: PacketBuffer, segIpOff: number) => void,
): boolean {
  const d = pkt.data;
  const v = pkt.view;
  const version = d[ipOff]! >> 4;
  let ipHl: number;
  if (version === 4) {
    ipHl = (d[ipOff]! & 0x0f) << 2;
    if (d[ipOff + 9] !== TCP) return false;
  } else if (version === 6) {
    ipHl = 40;
    if (d[ipOff + 6] !== TCP) return false;
  } else {
    return false;
  }
  const l4 = ipOff + ipHl;
  if (l4 + 20 > pkt.end) return false;
  const tcpHl = (d[l4 + 12]! >> 4) << 2;
  const payloadStart = l4 + tcpHl;
  const mss = pkt.gsoSize;
  if (tcpHl < 20 || payloadStart > pkt.end || mss <= 0) return false;
  const payloadLen = pkt.end - payloadStart;
  const seq0 = v.getUint32(l4 + 4);
  const id0 = version === 4 ? v.getUint16(ipOff + 4) : 0;
  const flags0 = d[l4 + 13]!;
  const hdrLen = payloadStart - pkt.start;
  const segIpOff = HEADROOM + (ipOff - pkt.start);
  const segL4 = HEADROOM + (l4 - pkt.start);
  const n = Math.max(1, Math.ceil(payloadLen / mss));
  for (let i = 0; i < n; i++) {
    const b = pool.get();
    if (b === null) return false;
    const off = i * mss;
    const len = Math.min(mss, payloadLen - off);
    b.data.set(d.subarray(pkt.start, payloadStart), HEADROOM);
    b.data.set(d.subarray(payloadStart + off, payloadStart + off + len), HEADROOM + hdrLen);
    b.start = HEADROOM;
    b.end = HEADROOM + hdrLen + len;
    b.networkOffset = segIpOff;
    b.transportOffset = segL4;
    const bv = b.view;
    const l4Len = tcpHl + len;
    let flags = flags0;
    if (i !== n - 1) flags &= ~(FIN | PSH);
    if (i !== 0) flags &= ~CWR;
    b.data[segL4 + 13] = flags;
    bv.setUint32(segL4 + 4, (seq0 + off) >>> 0);
    bv.setUint16(segL4 + 16, 0);
    let sum: number;
    if (version === 4) {
      bv.setUint16(segIpOff + 2, ipHl + l4Len);
      bv.setUint16(segIpOff + 4, (id0 + i) & 0xffff);
      bv.setUint16(segIpOff + 10, 0);
      bv.setUint16(segIpOff + 10, internetChecksum(b.data, segIpOff, ipHl));
      sum = ipv4PseudoHeaderSum(
        bv.getUint32(segIpOff + 12),
        bv.getUint32(segIpOff + 16),
        TCP,
        l4Len,
      );
    } else {
      bv.setUint16(segIpOff + 4, l4Len);
      sum = ipv6PseudoHeaderSum(b.data, segIpOff + 8, segIpOff + 24, TCP, l4Len);
    }
    bv.setUint16(segL4 + 16, finishChecksum(onesSum(b.data, segL4, l4Len, sum)));
    emit(b, segIpOff);
    pool.put(b);
  }
  return true;
}

/**
 * IP bytes of one segment of a GSO super-frame: the IP header, the TCP
 * header and gso_size. (hdr_len from a TAP is skb_headlen, not always the
 * header length, so the headers are measured.)
 */
export function gsoSegmentLen(pkt: PacketBuffer, ipOff: number, ipHeaderLen: number): number {
  const l4 = ipOff + ipHeaderLen;
  const tcpHl = l4 + 13 <= pkt.end ? (pkt.data[l4 + 12]! >> 4) << 2 : 20;
  return ipHeaderLen + tcpHl + pkt.gsoSize;
}

/**
 * Complete a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) before the
 * frame leaves by a link without offloads or is fragmented: the field at
 * csum_start + csum_offset holds the pseudo-header sum, so summing the L4
 * bytes with it in place gives the checksum. A UDP checksum (csum_offset
 * 6) that computes to 0 is sent as 0xffff (RFC 768, RFC 8200 §8.1). The
 * frame is plain afterwards.
 */
export function completePartialChecksum(pkt: PacketBuffer): void {
  if ((pkt.vnetFlags & VNET_F_NEEDS_CSUM) !== 0) {
    const start = pkt.start + pkt.csumStart;
    const at = start + pkt.csumOffset;
    if (at + 2 <= pkt.end) {
      const c = internetChecksum(pkt.data, start, pkt.end - start);
      pkt.view.setUint16(at, c === 0 && pkt.csumOffset === 6 ? 0xffff : c);
    }
  }
  pkt.vnetFlags = 0;
}
