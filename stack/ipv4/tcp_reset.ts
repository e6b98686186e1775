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
import { tcpResetApplies, writeTcpReset } from "../ip/tcp_reset.ts";

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
  const l4Len = ip.totalLength() - ip.headerLen();
  if (!tcpResetApplies(pkt, t, l4Len)) return false;
  const src = ip.dst(), dst = ip.src();
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
    writeTcpReset(pkt, t, l4Len, b, r);
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
