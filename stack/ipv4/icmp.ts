/**
 * ICMPv4 of the stack: echo replies, error messages with the rules of
 * RFC 1122 §3.2.2 and RFC 1812 §4.3.2.7, a token-bucket rate limit, and
 * delivery of replies and errors to local listeners (ping, traceroute,
 * sockets).
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv4Layer as Ipv4 } from "./_layer.ts";
import { IpProtocol, IPV4_MIN_HEADER_LEN, Ipv4Packet, writeIpv4Header } from "../wire/ipv4.ts";
import { keepEchoOptions, processForwardingOptions } from "../wire/ipv4_options.ts";
import { Icmpv4Code, Icmpv4Type } from "../wire/icmpv4.ts";
import { arrivedAsLinkGroup, IcmpErrorCore } from "../ip/icmp_error.ts";
import { checksumUpdate16, internetChecksum } from "../wire/checksum.ts";
import {
  ipv4IsLimitedBroadcast,
  ipv4IsLoopback,
  ipv4IsMulticast,
  ipv4IsThisNetwork,
} from "../wire/ip_address.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";

/** Largest ICMP error datagram: RFC 1812 §4.3.2.3 quotes as much as fits in 576 bytes. */
export const ICMPV4_ERROR_MAX_LEN = 576;

/** What a local listener learns of an ICMP message addressed to us. */
export interface Icmpv4Event {
  /** Message type and code. */
  type: number;
  code: number;
  /** Sender of the message. */
  from: number;
  /** Our address it was sent to. */
  to: number;
  /** TTL it arrived with. */
  ttl: number;
  /** Echo identifier and sequence (for echo replies, or of the quoted echo request in an error). */
  ident: number;
  seq: number;
  /** Bytes of the ICMP message (header included); for an echo reply, 8 + payload. */
  length: number;
  /** For errors: the quoted datagram's destination, protocol, source/destination ports (UDP/TCP). */
  quotedDst: number;
  quotedProtocol: number;
  quotedSrcPort: number;
  quotedDstPort: number;
  /** For fragmentation needed: the next-hop MTU (RFC 1191); else 0. */
  mtu: number;
  /** For echo replies: the payload's offset and the buffer (valid only during the call). */
  payloadOffset: number;
  buffer: PacketBuffer;
}

/** True for the ICMP types that are errors (RFC 1122 §3.2.2: never answer these with an error). */
export function icmpv4IsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** ICMPv4 for one stack. */
export class Icmpv4 extends IcmpErrorCore {
  /** Listeners for replies and errors addressed to us. */
  readonly listeners: Set<(e: Icmpv4Event) => void> = new Set();
  /** Answer echo requests sent to a broadcast address (Linux: icmp_echo_ignore_broadcasts=1, so false). */
  answerBroadcastEchoes = false;
  #q = new Ipv4Packet();
  #event: Icmpv4Event;

  constructor(readonly ipv4: Ipv4) {
    super(ipv4.stack, ipv4.stack.stats.icmpv4);
    this.#event = {
      type: 0,
      code: 0,
      from: 0,
      to: 0,
      ttl: 0,
      ident: 0,
      seq: 0,
      length: 0,
      quotedDst: 0,
      quotedProtocol: 0,
      quotedSrcPort: 0,
      quotedDstPort: 0,
      mtu: 0,
      payloadOffset: 0,
      buffer: null as unknown as PacketBuffer,
    };
  }

  /** Local delivery of an ICMP message. */
  receive(nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet): void {
    const s = this.ipv4.stack.stats.icmpv4;
    s.messagesReceived++;
    const off = ip.off + ip.headerLen();
    const len = pkt.end - off;
    if (len < 8 || internetChecksum(pkt.data, off, len) !== 0) {
      s.malformedReceived++;
      return;
    }
    const type = pkt.data[off]!;
    if (type === Icmpv4Type.ECHO_REQUEST) {
      this.#answerEcho(nic, pkt, ip, off);
      return;
    }
    const e = this.#event;
    e.type = type;
    e.code = pkt.data[off + 1]!;
    e.from = ip.src();
    e.to = ip.dst();
    e.ttl = ip.ttl();
    e.length = len;
    e.buffer = pkt;
    e.mtu = 0;
    e.quotedDst =
      e.quotedProtocol =
      e.quotedSrcPort =
      e.quotedDstPort =
        0;
    if (type === Icmpv4Type.ECHO_REPLY) {
      s.echoRepliesReceived++;
      e.ident = pkt.view.getUint16(off + 4);
      e.seq = pkt.view.getUint16(off + 6);
      e.payloadOffset = off + 8;
    } else if (icmpv4IsError(type)) {
      s.errorsReceived++;
      const qOff = off + 8;
      const q = this.#q.reset(pkt, qOff);
      if (qOff + 20 > pkt.end) return;
      e.quotedDst = q.dst();
      e.quotedProtocol = q.protocol();
      const ql4 = qOff + ((pkt.data[qOff]! & 0x0f) << 2);
      e.ident = e.seq = 0;
      if (ql4 + 8 <= pkt.end) {
        if (e.quotedProtocol === IpProtocol.ICMP) {
          e.ident = pkt.view.getUint16(ql4 + 4);
          e.seq = pkt.view.getUint16(ql4 + 6);
        } else {
          e.quotedSrcPort = pkt.view.getUint16(ql4);
          e.quotedDstPort = pkt.view.getUint16(ql4 + 2);
        }
      }
      if (type === Icmpv4Type.DEST_UNREACHABLE && e.code === 4) e.mtu = pkt.view.getUint16(off + 6);
      e.payloadOffset = qOff;
    } else {
      // Timestamp, information and other types tapir does not answer (Linux drops them too).
      s.unknownTypeReceived++;
      return;
    }
    for (const l of this.listeners) l(e);
  }

  /**
   * RFC 792 echo reply, built by turning the request around in place. Of
   * the request's options only Record Route and Timestamp come back, with
   * this host recorded in them (RFC 1122 §3.2.2.6): the route is the whole
   * round trip. As Linux, twice: once as the request arrived
   * (ip_options_compile on receipt) and once as the reply leaves
   * (ip_options_echo, only where there is room left).
   */
  #answerEcho(nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet, off: number): void {
    const dst = ip.dst();
    const local = this.ipv4.local.has(dst) || ipv4IsLoopback(dst);
    const s = this.ipv4.stack.stats.icmpv4;
    if (!local && !this.answerBroadcastEchoes) {
      s.broadcastEchoesIgnored++;
      return;
    }
    s.echoRequestsAnswered++;
    const src = ip.src();
    ip.setSrc(local ? dst : (nic !== null ? this.ipv4.sourceFor(nic, src) ?? 0 : 0));
    ip.setDst(src);
    ip.setTtl(this.ipv4.settings.defaultTtl);
    // Replies are not sent with DF (Linux's ICMP socket uses PMTUDISC_DONT),
    // so a reply larger than the path MTU is fragmented.
    ip.setFlagsFragment(0);
    ip.setId(this.ipv4.nextId());
    const hl = ip.headerLen();
    if (hl > IPV4_MIN_HEADER_LEN) {
      const kept = keepEchoOptions(ip);
      if (kept < hl) {
        // The ICMP message moves up behind the shorter header.
        pkt.data.copyWithin(ip.off + kept, ip.off + hl, pkt.end);
        pkt.end -= hl - kept;
        off -= hl - kept;
        ip.setHeaderLen(kept);
        ip.setTotalLength(pkt.end - ip.off);
      }
      const me = ip.src(), now = this.ipv4.stack.clock.now() % 86_400_000;
      processForwardingOptions(ip, me, now);
      processForwardingOptions(ip, me, now, false);
    }
    const old = pkt.view.getUint16(off);
    pkt.view.setUint16(off, (Icmpv4Type.ECHO_REPLY << 8) | pkt.data[off + 1]!);
    pkt.view.setUint16(
      off + 2,
      checksumUpdate16(pkt.view.getUint16(off + 2), old, pkt.view.getUint16(off)),
    );
    this.ipv4.output(pkt, ip.off, { nic: undefined });
  }

  // ---------------------------------------- IcmpErrorCore: the shared core's questions

  /**
   * Never about: a broadcast/multicast (IP or link layer), a non-initial
   * fragment, an invalid source, or an ICMP error.
   */
  neverAbout(orig: PacketBuffer, ipOff: number, inNic: Nic | null): boolean {
    const q = this.#q.reset(orig, ipOff);
    const src = q.src();
    const dst = q.dst();
    const hl = (orig.data[ipOff]! & 0x0f) << 2;
    if (
      arrivedAsLinkGroup(orig, ipOff, inNic) || ipv4IsMulticast(dst) ||
      ipv4IsLimitedBroadcast(dst) || q.fragmentOffset() !== 0 || ipv4IsThisNetwork(src) ||
      ipv4IsMulticast(src) || ipv4IsLimitedBroadcast(src) ||
      (ipv4IsLoopback(src) && inNic !== null) || (src >>> 28) === 0xf ||
      this.#isDirectedBroadcast(dst)
    ) return true;
    return q.protocol() === IpProtocol.ICMP && ipOff + hl < orig.end &&
      icmpv4IsError(orig.data[ipOff + hl]!);
  }

  /** Linux (icmpv4_mask_allow) never rate-limits Fragmentation Needed: path MTU discovery depends on it. */
  pathMtuError(type: number, code: number): boolean {
    return type === Icmpv4Type.DEST_UNREACHABLE && code === Icmpv4Code.FRAGMENTATION_NEEDED;
  }

  quoteLen(orig: PacketBuffer, ipOff: number): number {
    const origLen = Math.min(this.#q.reset(orig, ipOff).totalLength(), orig.end - ipOff);
    return Math.min(origLen, ICMPV4_ERROR_MAX_LEN - 28);
  }

  writeIpHeader(b: PacketBuffer, orig: PacketBuffer, ipOff: number, icmpLen: number): number {
    const q = this.#q.reset(orig, ipOff);
    const dst = q.dst();
    const off = b.start + ETHERNET_HEADER_LEN;
    // The source: the original's destination when it was for us; else the
    // route back to the sender picks it (the ingress interface's address).
    writeIpv4Header(b, off, {
      payloadLen: icmpLen,
      id: this.ipv4.nextId(),
      dontFragment: false,
      ttl: this.ipv4.settings.defaultTtl,
      protocol: IpProtocol.ICMP,
      src: this.ipv4.local.has(dst) ? dst : 0,
      dst: q.src(),
      dscpEcn: 0xc0, // Linux sends errors with precedence "internetwork control".
    });
    b.start = off - ETHERNET_HEADER_LEN;
    return off + 20;
  }

  finishAndSend(b: PacketBuffer, m: number, icmpLen: number): boolean {
    b.view.setUint16(m + 2, internetChecksum(b.data, m, icmpLen));
    return this.ipv4.output(b, m - 20);
  }

  #isDirectedBroadcast(dst: number): boolean {
    for (const nic of this.ipv4.stack.nics.values()) {
      const st = this.ipv4.nicState(nic);
      if (st === undefined) continue;
      for (const a of st.addresses) if (a.broadcast === dst) return true;
    }
    return false;
  }
}
