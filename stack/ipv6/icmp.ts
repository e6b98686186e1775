/**
 * ICMPv6 of the stack (RFC 4443): echo replies, error messages with the
 * rules of §2.4 and a token-bucket rate limit, Packet Too Big into the path
 * MTU cache (RFC 8201), and dispatch of NDP (RFC 4861) and MLD (RFC 3810)
 * messages.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { Ipv6Layer as Ipv6 } from "./_layer.ts";
import { IPV6_HEADER_LEN, IPV6_MIN_MTU, type Ipv6Packet } from "../wire/ipv6.ts";
import { Ipv6ExtHeaderIterator, Ipv6NextHeader } from "../wire/ipv6_ext.ts";
import { ICMPV6_HEADER_LEN, icmpv6IsError, Icmpv6Type } from "../wire/icmpv6.ts";
import { finishChecksum, ipv6PseudoHeaderSum, onesSum } from "../wire/checksum.ts";
import { ipv6IsLinkLocalUnicast, ipv6IsMulticast, ipv6IsUnspecified } from "../wire/ip_address.ts";
import { arrivedAsLinkGroup, IcmpErrorCore } from "../ip/icmp_error.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import { buildIpv6Packet } from "../wire/ipv6.ts";
import { Ipv6Packet as Ipv6View } from "../wire/ipv6.ts";

/** What a local listener learns of an ICMPv6 message addressed to us. */
export interface Icmpv6Event {
  type: number;
  code: number;
  /** Sender and our address it was sent to (valid only during the call). */
  buffer: PacketBuffer;
  srcOffset: number;
  dstOffset: number;
  hopLimit: number;
  ident: number;
  seq: number;
  /** Bytes of the ICMPv6 message. */
  length: number;
  /** For errors: the quoted packet's destination offset (-1 when not quoted), its Next Header and ports. */
  quotedDstOffset: number;
  quotedNextHeader: number;
  quotedSrcPort: number;
  quotedDstPort: number;
  /** The MTU of a Packet Too Big, the pointer of a Parameter Problem. */
  mtu: number;
  pointer: number;
}

/** Fill the ICMPv6 checksum of the message at `l4Off` (`len` bytes) of the packet at `ipOff`. */
export function fillIcmpv6Checksum(
  pkt: PacketBuffer,
  ipOff: number,
  l4Off: number,
  len: number,
): void {
  pkt.view.setUint16(l4Off + 2, 0);
  const sum = ipv6PseudoHeaderSum(pkt.data, ipOff + 8, ipOff + 24, Ipv6NextHeader.ICMPV6, len);
  pkt.view.setUint16(l4Off + 2, finishChecksum(onesSum(pkt.data, l4Off, len, sum)));
}

/** ICMPv6 for one stack. */
export class Icmpv6 extends IcmpErrorCore {
  /** Listeners for replies and errors addressed to us. */
  readonly listeners: Set<(e: Icmpv6Event) => void> = new Set();
  #it = new Ipv6ExtHeaderIterator();
  #q = new Ipv6View();
  #event: Icmpv6Event;

  constructor(readonly ipv6: Ipv6) {
    super(ipv6.stack, ipv6.stack.stats.icmpv6);
    this.#event = {
      type: 0,
      code: 0,
      buffer: null as unknown as PacketBuffer,
      srcOffset: 0,
      dstOffset: 0,
      hopLimit: 0,
      ident: 0,
      seq: 0,
      length: 0,
      quotedDstOffset: -1,
      quotedNextHeader: -1,
      quotedSrcPort: 0,
      quotedDstPort: 0,
      mtu: 0,
      pointer: 0,
    };
    ipv6.transports.set(
      Ipv6NextHeader.ICMPV6,
      (nic, pkt, ip, l4Off, l4Len) => this.receive(nic, pkt, ip, l4Off, l4Len),
    );
    ipv6.checksumFixers.set(Ipv6NextHeader.ICMPV6, (pkt, ipOff) => {
      const len = pkt.view.getUint16(ipOff + 4);
      fillIcmpv6Checksum(pkt, ipOff, ipOff + IPV6_HEADER_LEN, len);
    });
  }

  /** Local delivery of an ICMPv6 message. */
  receive(nic: Nic | null, pkt: PacketBuffer, ip: Ipv6Packet, off: number, len: number): void {
    const s = this.ipv6.stack.stats.icmpv6;
    s.messagesReceived++;
    const sum = ipv6PseudoHeaderSum(
      pkt.data,
      ip.srcOffset(),
      ip.dstOffset(),
      Ipv6NextHeader.ICMPV6,
      len,
    );
    if (len < 4 || finishChecksum(onesSum(pkt.data, off, len, sum)) !== 0) {
      s.malformedReceived++;
      return;
    }
    const type = pkt.data[off]!;
    if (type >= Icmpv6Type.ROUTER_SOLICITATION && type <= Icmpv6Type.REDIRECT) {
      // RFC 6980: NDP in a fragmented packet is dropped.
      if (this.ipv6.reassembledNow === pkt) {
        s.ndpInFragmentDropped++;
        return;
      }
      if (nic !== null) this.ipv6.ndp.receive(nic, pkt, ip, off, len);
      return;
    }
    if (type === Icmpv6Type.MLD_QUERY) {
      if (nic !== null) this.ipv6.mld.receiveQuery(nic, pkt, ip, off, len);
      return;
    }
    if (
      type === Icmpv6Type.MLD_REPORT_V1 || type === Icmpv6Type.MLD_REPORT_V2 ||
      type === Icmpv6Type.MLD_DONE
    ) {
      this.ipv6.stack.stats.mld.reportsReceived++;
      return;
    }
    if (type === Icmpv6Type.ECHO_REQUEST) {
      this.#answerEcho(nic, pkt, ip, off, len);
      return;
    }
    const e = this.#event;
    e.type = type;
    e.code = pkt.data[off + 1]!;
    e.buffer = pkt;
    e.srcOffset = ip.srcOffset();
    e.dstOffset = ip.dstOffset();
    e.hopLimit = ip.hopLimit();
    e.length = len;
    e.ident =
      e.seq =
      e.mtu =
      e.pointer =
        0;
    e.quotedDstOffset = -1;
    e.quotedNextHeader = -1;
    e.quotedSrcPort = e.quotedDstPort = 0;
    if (type === Icmpv6Type.ECHO_REPLY) {
      if (len < 8) {
        s.malformedReceived++;
        return;
      }
      s.echoRepliesReceived++;
      e.ident = pkt.view.getUint16(off + 4);
      e.seq = pkt.view.getUint16(off + 6);
    } else if (icmpv6IsError(type)) {
      const qOff = off + 8;
      if (type === Icmpv6Type.PACKET_TOO_BIG && len >= 8 + IPV6_HEADER_LEN) {
        e.mtu = pkt.view.getUint32(off + 4);
        // RFC 8201 §4: an MTU below 1280 is discarded; RFC 5927 §4.2: so is
        // one about a packet we did not send (its quoted source is not ours).
        // Either is its own count, not an error received as well.
        if (e.mtu < IPV6_MIN_MTU || this.ipv6.local.get(pkt.data, qOff + 8) === undefined) {
          s.packetTooBigIgnored++;
          return;
        }
      }
      s.errorsReceived++;
      if (len < 8 + IPV6_HEADER_LEN) return;
      e.quotedDstOffset = qOff + 24;
      if (type === Icmpv6Type.PACKET_TOO_BIG) this.ipv6.learnPathMtu(pkt.data, qOff + 24, e.mtu);
      if (type === Icmpv6Type.PARAMETER_PROBLEM) e.pointer = pkt.view.getUint32(off + 4);
      // The quoted upper layer, when it follows the header directly.
      const nh = pkt.data[qOff + 6]!;
      e.quotedNextHeader = nh;
      const l4 = qOff + IPV6_HEADER_LEN;
      if (l4 + 8 <= off + len) {
        if (nh === Ipv6NextHeader.ICMPV6) {
          e.ident = pkt.view.getUint16(l4 + 4);
          e.seq = pkt.view.getUint16(l4 + 6);
        } else {
          e.quotedSrcPort = pkt.view.getUint16(l4);
          e.quotedDstPort = pkt.view.getUint16(l4 + 2);
        }
      }
    } else {
      // RFC 4443 §2.4 (b): an unknown informational message is discarded.
      s.unknownTypeReceived++;
      return;
    }
    for (const l of this.listeners) l(e);
  }

  /** RFC 4443 §4.2: an echo reply carries the request's identifier, sequence and data. */
  #answerEcho(nic: Nic | null, pkt: PacketBuffer, ip: Ipv6Packet, off: number, len: number): void {
    const s = this.ipv6.stack.stats.icmpv6;
    const pool = this.ipv6.stack.pool;
    const b = pool.get();
    if (b === null) {
      this.ipv6.stack.stats.bufferPoolExhausted++;
      return;
    }
    try {
      const d = pkt.data;
      const dstMulticast = ipv6IsMulticast(d, ip.dstOffset());
      // A reply to a multicast or anycast destination comes from a unicast address of ours.
      const src = dstMulticast || this.ipv6.anycastNic(d, ip.dstOffset()) !== undefined
        ? null
        : d.subarray(ip.dstOffset(), ip.dstOffset() + 16);
      const ipOff = buildIpv6Packet(b, {
        src,
        dst: d.subarray(ip.srcOffset(), ip.srcOffset() + 16),
        nextHeader: Ipv6NextHeader.ICMPV6,
        payloadLen: len,
        hopLimit: this.#hopLimit(nic),
      });
      const m = ipOff + IPV6_HEADER_LEN;
      b.data.set(d.subarray(off, off + len), m);
      b.data[m] = Icmpv6Type.ECHO_REPLY;
      b.data[m + 1] = 0;
      if (src !== null) fillIcmpv6Checksum(b, ipOff, m, len);
      s.echoRequestsAnswered++;
      this.ipv6.output(b, ipOff, { nic: this.#pinnedNic(nic, d, ip.srcOffset()) });
    } finally {
      pool.put(b);
    }
  }

  #hopLimit(nic: Nic | null): number {
    return nic !== null
      ? this.ipv6.nicState(nic)?.hopLimit ?? this.ipv6.settings.defaultHopLimit
      : this.ipv6.settings.defaultHopLimit;
  }

  /** Link-local and multicast destinations need the NIC they came by. */
  #pinnedNic(nic: Nic | null, a: Uint8Array, off: number): Nic | undefined {
    if (nic === null) return undefined;
    return ipv6IsLinkLocalUnicast(a, off) || ipv6IsMulticast(a, off) ? nic : undefined;
  }

  // ---------------------------------------- IcmpErrorCore: the shared core's questions

  /** RFC 4443 §2.4 (e): never about an unspecified or multicast source, a multicast destination (unless allowed), an error or a Redirect. */
  neverAbout(orig: PacketBuffer, ipOff: number, inNic: Nic | null, toMulticast: boolean): boolean {
    const d = orig.data;
    const q = this.#q.reset(orig, ipOff);
    const srcOff = q.srcOffset(), dstOff = q.dstOffset();
    if (
      ipv6IsUnspecified(d, srcOff) || ipv6IsMulticast(d, srcOff) ||
      (!toMulticast && (ipv6IsMulticast(d, dstOff) || arrivedAsLinkGroup(orig, ipOff, inNic)))
    ) return true;
    return this.#isErrorOrRedirect(orig, ipOff);
  }

  /** Linux's default icmpv6 ratemask leaves Packet Too Big unlimited (PMTU discovery needs it). */
  pathMtuError(type: number): boolean {
    return type === Icmpv6Type.PACKET_TOO_BIG;
  }

  /** RFC 4443 §2.4 (c): as much of the invoking packet as fits in the minimum MTU. */
  quoteLen(orig: PacketBuffer, ipOff: number): number {
    const origLen = Math.min(this.#q.reset(orig, ipOff).totalLength(), orig.end - ipOff);
    return Math.min(origLen, IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN);
  }

  writeIpHeader(b: PacketBuffer, orig: PacketBuffer, ipOff: number, icmpLen: number): number {
    const d = orig.data;
    const q = this.#q.reset(orig, ipOff);
    const srcOff = q.srcOffset(), dstOff = q.dstOffset();
    // From the address the packet was for when it is ours; else chosen on output.
    const local = this.ipv6.local.get(d, dstOff);
    const src = local !== undefined && !ipv6IsMulticast(d, dstOff)
      ? d.subarray(dstOff, dstOff + 16)
      : null;
    const off = buildIpv6Packet(b, {
      src,
      dst: d.subarray(srcOff, srcOff + 16),
      nextHeader: Ipv6NextHeader.ICMPV6,
      payloadLen: icmpLen,
      hopLimit: this.ipv6.settings.defaultHopLimit,
    });
    return off + IPV6_HEADER_LEN;
  }

  finishAndSend(
    b: PacketBuffer,
    m: number,
    icmpLen: number,
    orig: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
  ): boolean {
    const off = m - IPV6_HEADER_LEN;
    // An unspecified source is chosen on output, which fills the checksum then.
    if (!ipv6IsUnspecified(b.data, off + 8)) fillIcmpv6Checksum(b, off, m, icmpLen);
    const srcOff = this.#q.reset(orig, ipOff).srcOffset();
    return this.ipv6.output(b, off, { nic: this.#pinnedNic(inNic, orig.data, srcOff) });
  }

  /** RFC 4443 §2.4 (e.1, e.2): no error about an ICMPv6 error or a Redirect. */
  #isErrorOrRedirect(orig: PacketBuffer, ipOff: number): boolean {
    const it = this.#it.reset(this.#q.reset(orig, ipOff));
    while (it.next()) {
      // A non-first fragment carries no ICMPv6 header to judge (RFC 8200 §4.5):
      // its first data byte is not a message type.
      if (
        it.type === Ipv6NextHeader.FRAGMENT &&
        ((orig.data[it.offset + 2]! << 8 | orig.data[it.offset + 3]!) & 0xfff8) !== 0
      ) return false;
      if (!it.isUpperLayer) continue;
      if (it.type !== Ipv6NextHeader.ICMPV6 || it.length < 1) return false;
      const t = orig.data[it.offset]!;
      return icmpv6IsError(t) || t === Icmpv6Type.REDIRECT;
    }
    return false;
  }
}
