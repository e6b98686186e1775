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
import { sendTcpReset } from "../ip/tcp_reset.ts";
import type { Ipv6Packet } from "../wire/ipv6.ts";
import { IPV6_HEADER_LEN } from "../wire/ipv6.ts";
import { finishChecksum, ipv6PseudoHeaderSum, onesSum } from "../wire/checksum.ts";
import { ipv6IsMulticast } from "../wire/ip_address.ts";
import { VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM } from "../wire/packet_buffer.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";

const UDP = 17, TCP = 6;

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
  if (sendTcpReset(6, ipv6, ipv6.settings.defaultHopLimit, nic, pkt, ip.off, off, off + len)) {
    ipv6.stack.stats.ipv6.tcpResetsSent++;
  }
}
