/**
 * IPv6 ingress: validation, PREROUTING, the choice between local delivery
 * and forwarding, and local delivery with extension-header processing and
 * reassembly (as gVisor's ipv6.go HandlePacket / processExtensionHeaders;
 * smoltcp's process_ipv6). Every drop is a {@link DropReason} its caller's
 * Dropper acts on.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import { DropReason as R } from "../ip/drop.ts";
import { IPV6_HEADER_LEN, Ipv6Packet } from "../wire/ipv6.ts";
import {
  IPV6_FRAGMENT_HEADER_LEN,
  Ipv6ExtError,
  Ipv6ExtHeaderIterator,
  Ipv6FragmentHeader,
  Ipv6NextHeader,
  Ipv6OptionIterator,
  Ipv6OptionsResult,
  Ipv6OptionsVerdict,
  Ipv6RoutingHeader,
  Ipv6UpperLayer,
  processIpv6Options,
} from "../wire/ipv6_ext.ts";
import { Icmpv6Type } from "../wire/icmpv6.ts";
import {
  ipv6IsLinkLocalUnicast,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
} from "../wire/ip_address.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { Ipv6DropReason } from "./drops.ts";
import { type Ipv6Datapath, recordUpperLayer, routerAlerts } from "./_datapath.ts";
import type { Ipv6Forwarding } from "./forward.ts";

/** What a path returns: OK, or why it gave up. */
type Verdict = typeof R.OK | Ipv6DropReason;

/** {@link fragKey}'s scratch: 16-bit words of the source and destination, then the identification. */
const FRAG_KEY_CODES: number[] = new Array<number>(18).fill(0);

/**
 * The reassembly key (RFC 8200 §4.5: source, destination, identification)
 * of the packet whose source address is at `d[srcOff]` (the destination
 * follows it), as 18 UTF-16 code units: one flat string, made without
 * formatting the addresses (a rope, as template text is, is flattened on
 * each Map lookup: under a fragment flood, most of a fragment's time).
 */
function fragKey(d: Uint8Array, srcOff: number, id: number): string {
  const c = FRAG_KEY_CODES;
  for (let i = 0; i < 16; i++) c[i] = (d[srcOff + 2 * i]! << 8) | d[srcOff + 2 * i + 1]!;
  c[16] = id >>> 16;
  c[17] = id & 0xffff;
  return String.fromCharCode.apply(null, c);
}

/** The receive side of one IPv6 layer. */
export class Ipv6Ingress {
  readonly #l: Ipv6Datapath;
  readonly #fwd: Ipv6Forwarding;
  #ip = new Ipv6Packet();
  #ext = new Ipv6ExtHeaderIterator();
  #upper = new Ipv6UpperLayer();
  #opts = new Ipv6OptionsResult();
  #optIt = new Ipv6OptionIterator();
  #frag = new Ipv6FragmentHeader();
  #rh = new Ipv6RoutingHeader();

  constructor(layer: Ipv6Datapath, forwarding: Ipv6Forwarding) {
    this.#l = layer;
    this.#fwd = forwarding;
  }

  /** Receive path for one IPv6 frame from `nic`. */
  receive(nic: Nic, pkt: PacketBuffer): void {
    this.#l.stack.stats.ipv6.packetsReceived++;
    this.#l.drops.verdict(this.#receive(nic, pkt, pkt.networkOffset), pkt, pkt.networkOffset, nic);
  }

  #receive(nic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const ip = this.#ip.reset(pkt, ipOff);
    // RFC 8200 §3: the Version is 6 (an IPv6 EtherType does not make it one).
    if (!ip.check() || ip.version() !== 6) return R.MALFORMED;
    pkt.end = ip.endOffset();
    const d = pkt.data;
    const srcOff = ip.srcOffset(), dstOff = ip.dstOffset();
    // RFC 4291 §2.7: a multicast source is invalid; loopback never comes
    // from a wire (RFC 4291 §2.5.3).
    if (
      ipv6IsMulticast(d, srcOff) || ipv6IsLoopback(d, srcOff) || ipv6IsLoopback(d, dstOff) ||
      ipv6IsUnspecified(d, dstOff)
    ) return R.INVALID_ADDRESS;
    const st = this.#l.nicState(nic)!;
    // A NIC being detached: its frames are not for this layer any more.
    if (st === undefined) return R.NOT_FOR_US;
    recordUpperLayer(this.#upper, pkt, ip);
    if (this.#l.hooks.prerouting !== null && !this.#l.hooks.prerouting(pkt, ipOff, nic, null)) {
      return R.FIREWALL;
    }
    if (ipv6IsMulticast(d, dstOff)) {
      if (!st.groups.has(d, dstOff)) return R.MULTICAST_NOT_JOINED;
      return this.#deliverLocal(nic, pkt, ipOff, false);
    }
    const local = this.#l.local.get(d, dstOff);
    // Link-local addresses belong to their link (RFC 4291 §2.5.6).
    if (local !== undefined && (local.nic === nic || !ipv6IsLinkLocalUnicast(d, dstOff))) {
      return this.#deliverLocal(nic, pkt, ipOff, false);
    }
    // A Subnet-Router anycast address of ours (RFC 4291 §2.6.1) is for us too.
    if (this.#l.anycastNic(d, dstOff) !== undefined) {
      return this.#deliverLocal(nic, pkt, ipOff, false);
    }
    if (!st.forwarding) return R.NOT_FOR_US;
    return this.#fwd.verdict(nic, pkt, ipOff);
  }

  /**
   * Local delivery: walk the extension headers (RFC 8200 §4), reassemble,
   * and hand the upper layer to its transport.
   */
  deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): void {
    this.#l.drops.verdict(this.#deliverLocal(nic, pkt, ipOff, reassembled), pkt, ipOff, nic);
  }

  #deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): Verdict {
    const s = this.#l.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const d = pkt.data;
    const dstMulticast = ipv6IsMulticast(d, ip.dstOffset());
    const local = dstMulticast ? undefined : this.#l.local.get(d, ip.dstOffset());
    const tentative = local !== undefined && local.addr.state === "tentative";
    const it = this.#ext.reset(ip);
    let sawRouterAlert = false;
    while (it.next()) {
      switch (it.type) {
        case Ipv6NextHeader.HOP_BY_HOP:
        case Ipv6NextHeader.DESTINATION_OPTIONS: {
          const hbh = it.type === Ipv6NextHeader.HOP_BY_HOP;
          const v = processIpv6Options(
            d,
            it.offset,
            it.length,
            ipOff,
            hbh,
            dstMulticast,
            this.#opts,
          );
          if (v === Ipv6OptionsVerdict.PARAMETER_PROBLEM) {
            return this.#l.drops.fail(R.OPTIONS_PARAMETER_PROBLEM, this.#opts.pointer);
          }
          if (v !== Ipv6OptionsVerdict.ACCEPT) return R.OPTIONS_DISCARD;
          if (hbh && this.#opts.routerAlert >= 0) {
            // RFC 2711 §2.1: at most one Router Alert per Hop-by-Hop header
            // (gVisor and Linux drop the packet silently otherwise).
            if (sawRouterAlert || routerAlerts(this.#optIt, d, it.offset, it.length, ipOff) > 1) {
              return R.OPTIONS_DISCARD;
            }
            sawRouterAlert = true;
          }
          continue;
        }
        case Ipv6NextHeader.ROUTING: {
          const rh = this.#rh.reset(pkt, it.offset);
          if (rh.segmentsLeft() === 0) continue;
          // RFC 8200 §4.4: no routing type is supported; with Segments Left
          // non-zero, Parameter Problem code 0 pointing at the Routing Type.
          return this.#l.drops.fail(R.ROUTING_HEADER, rh.routingTypeOffset() - ipOff);
        }
        case Ipv6NextHeader.FRAGMENT: {
          if (reassembled) return R.MALFORMED;
          return this.#receiveFragment(nic, pkt, ipOff, it.offset, it.typeOffset);
        }
        case Ipv6NextHeader.NO_NEXT_HEADER:
          return R.NO_NEXT_HEADER;
        default:
          break;
      }
      // ESP/AH and other headers tapir does not process.
      if (!it.isUpperLayer) return this.#l.drops.fail(R.UNKNOWN_PROTOCOL, it.typeOffset - ipOff);
      // The upper layer.
      if (
        tentative &&
        (it.type !== Ipv6NextHeader.ICMPV6 || it.length < 1 ||
          (d[it.offset] !== Icmpv6Type.NEIGHBOR_SOLICITATION &&
            d[it.offset] !== Icmpv6Type.NEIGHBOR_ADVERTISEMENT))
      ) {
        // RFC 4862 §5.4: a tentative address takes only NS and NA; every
        // other packet to it (an echo request too) is silently discarded.
        return R.TENTATIVE_ADDRESS;
      }
      pkt.transportOffset = it.offset;
      if (this.#l.hooks.input !== null && !this.#l.hooks.input(pkt, ipOff, nic, null)) {
        return R.FIREWALL;
      }
      const handler = this.#l.transports.get(it.type);
      // RFC 8200 §4: unrecognized Next Header → Parameter Problem code 1.
      if (handler === undefined) {
        return this.#l.drops.fail(R.UNKNOWN_PROTOCOL, it.typeOffset - ipOff);
      }
      s.packetsDelivered++;
      pkt.transportOffset = it.offset;
      this.#l.reassembledNow = reassembled ? pkt : null;
      try {
        handler(nic, pkt, ip, it.offset, it.length);
      } finally {
        this.#l.reassembledNow = null;
      }
      return R.OK;
    }
    if (it.error === Ipv6ExtError.HOP_BY_HOP_NOT_FIRST) {
      return this.#l.drops.fail(R.UNKNOWN_PROTOCOL, it.errorPointer);
    }
    // A chain that ends without an upper layer and without error: nothing to deliver.
    return it.error !== Ipv6ExtError.NONE ? R.MALFORMED : R.OK;
  }

  #receiveFragment(
    nic: Nic | null,
    pkt: PacketBuffer,
    ipOff: number,
    fragOff: number,
    typeOff: number,
  ): Verdict {
    const s = this.#l.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const f = this.#frag.reset(pkt, fragOff);
    if (!f.check()) return R.MALFORMED;
    // RFC 8200 §4.1: Hop-by-Hop only right after the IPv6 header; one the
    // Fragment header names is an unrecognized Next Header there (Linux:
    // Parameter Problem code 1 at the Fragment header's Next Header).
    if (f.nextHeader() === Ipv6NextHeader.HOP_BY_HOP) {
      return this.#l.drops.fail(R.UNKNOWN_PROTOCOL, fragOff - ipOff);
    }
    const dataOff = fragOff + IPV6_FRAGMENT_HEADER_LEN;
    const dataLen = ip.endOffset() - dataOff;
    // RFC 6946: an atomic fragment is processed as if it had no Fragment header.
    if (f.isAtomic()) {
      s.atomicFragmentsReceived++;
      this.#deliverWithoutFragmentHeader(nic, pkt, ipOff, fragOff, typeOff);
      return R.OK;
    }
    // RFC 8200 §4.5: a fragment other than the last must be a multiple of
    // 8 bytes long: Parameter Problem code 0 at the Payload Length.
    if (f.moreFragments() && (dataLen & 7) !== 0) {
      return this.#l.drops.fail(R.FRAGMENT_BAD_LENGTH, 4);
    }
    // ... and the reassembled payload must fit in 65535 bytes: code 0 at the Fragment Offset.
    const unfragmentable = fragOff - ipOff - IPV6_HEADER_LEN;
    if (unfragmentable + IPV6_FRAGMENT_HEADER_LEN + f.fragmentOffset() + dataLen > 65_535) {
      return this.#l.drops.fail(R.FRAGMENT_TOO_LONG, fragOff + 2 - ipOff);
    }
    // RFC 7112: the first fragment must hold the whole header chain.
    if (
      f.fragmentOffset() === 0 && !this.#chainComplete(pkt, dataOff, ip.endOffset(), f.nextHeader())
    ) return R.FRAGMENT_INCOMPLETE_CHAIN;
    if (this.#l.reassembler.dropIfFull(dataLen)) return R.OK;
    const key = fragKey(pkt.data, ip.srcOffset(), f.identification());
    const fragNext = f.nextHeader();
    const r = this.#l.reassembler.add(
      key,
      f.fragmentOffset(),
      f.moreFragments(),
      pkt,
      dataOff,
      dataLen,
      ipOff,
      fragOff - ipOff,
    );
    if (r.kind === "dropped") return r.reason === "overlap" ? R.FRAGMENT_OVERLAP : R.OK;
    if (r.kind !== "complete") return R.OK;
    const buf = r.buffer;
    try {
      // The header part is the unfragmentable part: point the Next Header
      // that named the Fragment header at what the fragments carried.
      buf.data[r.headerOffset + (typeOff - ipOff)] = fragNext;
      buf.view.setUint16(r.headerOffset + 4, r.headerLen - IPV6_HEADER_LEN + r.payloadLen);
      buf.end = r.headerOffset + r.headerLen + r.payloadLen;
      s.packetsReassembled++;
      this.deliverLocal(nic, buf, r.headerOffset, true);
    } finally {
      this.#l.stack.pool.put(buf);
    }
    return R.OK;
  }

  /** True when the chain starting with header `next` at `off` reaches an upper layer before `end`. */
  #chainComplete(pkt: PacketBuffer, off: number, end: number, next: number): boolean {
    let t = next, p = off;
    const d = pkt.data;
    for (let i = 0; i < 16; i++) {
      if (
        t === Ipv6NextHeader.HOP_BY_HOP || t === Ipv6NextHeader.ROUTING ||
        t === Ipv6NextHeader.DESTINATION_OPTIONS
      ) {
        if (p + 8 > end) return false;
        const len = (d[p + 1]! + 1) << 3;
        t = d[p]!;
        p += len;
        continue;
      }
      if (t === Ipv6NextHeader.NO_NEXT_HEADER || t === Ipv6NextHeader.ESP) return true;
      // An upper layer: its header must be there too (at least 4 bytes for ports/type).
      const need = t === 6 ? 20 : t === 17 ? 8 : t === 58 ? 4 : 0;
      return p + need <= end;
    }
    return false;
  }

  /** Remove an atomic fragment's Fragment header in place and deliver the rest. */
  #deliverWithoutFragmentHeader(
    nic: Nic | null,
    pkt: PacketBuffer,
    ipOff: number,
    fragOff: number,
    typeOff: number,
  ): void {
    const d = pkt.data;
    d[typeOff] = d[fragOff]!;
    d.copyWithin(ipOff + IPV6_FRAGMENT_HEADER_LEN, ipOff, fragOff);
    const newIp = ipOff + IPV6_FRAGMENT_HEADER_LEN;
    pkt.view.setUint16(newIp + 4, pkt.view.getUint16(newIp + 4) - IPV6_FRAGMENT_HEADER_LEN);
    pkt.networkOffset = newIp;
    this.deliverLocal(nic, pkt, newIp, true);
  }
}
