/**
 * The upper-layer checksum fixers IPv6's output path uses once it chose a
 * source (UDP and TCP built with an unspecified source). UDP and TCP
 * themselves live in stack/transport/.
 *
 * @module
 */
import type { Ipv6 } from "./ipv6.ts";
import { IPV6_HEADER_LEN } from "../wire/ipv6.ts";
import { finishChecksum, ipv6PseudoHeaderSum, onesSum } from "../wire/checksum.ts";

const UDP = 17, TCP = 6;

/** Register the UDP/TCP checksum fixers for IPv6. */
export function installIpv6Transports(ipv6: Ipv6): void {
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
