/**
 * IPv6 egress: locally generated packets (loopback, routing, source
 * selection, OUTPUT and POSTROUTING, fragmentation with a Fragment header
 * and a path MTU cache, RFC 8200 §4.5 / RFC 8201), and the last steps of
 * every packet leaving by a NIC (software segmentation, Ethernet, NDP) —
 * smoltcp's dispatch_ip.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { LoopbackQueue } from "../loopback.ts";
import { DropReason as R } from "../ip/drop.ts";
import { type IpOutputOptions, loopbackFor, sendOnLink } from "../ip/layer.ts";
import { completePartialChecksum, gsoSegmentLen, segmentGso } from "../gso.ts";
import { ETHERNET_HEADER_LEN, EthernetFrame, EtherType } from "../wire/ethernet.ts";
import { IPV6_HEADER_LEN, IPV6_MIN_MTU, Ipv6Packet } from "../wire/ipv6.ts";
import {
  IPV6_FRAGMENT_HEADER_LEN,
  Ipv6NextHeader,
  Ipv6UpperLayer,
  writeFragmentHeader,
} from "../wire/ipv6_ext.ts";
import { ipv6IsLinkLocalUnicast, ipv6IsMulticast, ipv6IsUnspecified } from "../wire/ip_address.ts";
import { HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import type { Ipv6DropReason } from "./drops.ts";
import { type Ipv6Datapath, recordUpperLayer } from "./_datapath.ts";

/** What a path returns: OK, or why it gave up. */
type Verdict = typeof R.OK | Ipv6DropReason;

/** RFC 8201 §5.3: a learned PMTU ages out after 10 minutes. */
const PMTU_AGE_MS = 10 * 60_000;

/** The send side of one IPv6 layer. */
export class Ipv6Egress {
  readonly #l: Ipv6Datapath;
  #ip = new Ipv6Packet();
  #upper = new Ipv6UpperLayer();
  #eth = new EthernetFrame();
  /** The scratch destination MAC of a multicast frame. */
  #groupMac = new Uint8Array([0x33, 0x33, 0, 0, 0, 0]);
  #loopback: LoopbackQueue;

  constructor(layer: Ipv6Datapath) {
    this.#l = layer;
    this.#flowKey = layer.stack.random.uint32();
    this.#loopback = loopbackFor(
      layer.stack,
      (b) => layer.deliverLocal(null, b, b.networkOffset, false),
    );
  }

  /**
   * Send a locally built IPv6 packet (header complete; the source may be
   * unspecified, then it is selected). Loops back local destinations,
   * fragments packets larger than the path MTU (RFC 8200 §4.5), resolves
   * the next hop. `nic` pins the egress (needed for link-local and
   * multicast destinations).
   */
  output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions = {}): boolean {
    return this.#l.drops.verdict(this.#output(pkt, ipOff, opts), pkt, ipOff, null);
  }

  #output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions): Verdict {
    const s = this.#l.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const d = pkt.data;
    const dstOff = ip.dstOffset();
    pkt.networkOffset = ipOff;
    pkt.linkDst = opts.linkDst ?? null;
    const localDst = this.#l.local.get(d, dstOff);
    if (localDst !== undefined && !ipv6IsMulticast(d, dstOff)) {
      if (ipv6IsUnspecified(d, ip.srcOffset())) {
        ip.setSrc(d, dstOff);
        this.#fixChecksum(pkt, ipOff);
      }
      recordUpperLayer(this.#upper, pkt, ip);
      if (this.#l.hooks.output !== null && !this.#l.hooks.output(pkt, ipOff, null, null)) {
        return R.FIREWALL;
      }
      s.packetsSent++;
      this.#loopback.push(pkt, ipOff);
      return R.OK;
    }
    const routed = this.#route(d, dstOff, opts.nic);
    if (routed !== R.OK) return routed;
    // Locals: a hook may send (and route) a packet of its own.
    let outNic = this.#outNic!, nextHop = this.#nextHop, nextHopOff = this.#nextHopOff;
    if (ipv6IsUnspecified(d, ip.srcOffset()) && !opts.keepSource) {
      const src = this.#l.selectSource(d, dstOff, outNic);
      if (src === null) return R.OUTPUT_NO_SOURCE;
      ip.setSrc(src);
      this.#fixChecksum(pkt, ipOff);
    }
    recordUpperLayer(this.#upper, pkt, ip);
    if (ip.flowLabel() === 0) this.#labelFlow(pkt, ip);
    const hook = this.#l.hooks.output;
    if (hook !== null) {
      const before = this.#dstBefore;
      for (let i = 0; i < 16; i++) before[i] = d[dstOff + i]!;
      if (!hook(pkt, ipOff, null, outNic)) return R.FIREWALL;
      // A DNAT in OUTPUT changes the routing decision (Linux ip6_route_me_harder).
      let moved = false;
      for (let i = 0; i < 16 && !moved; i++) moved = before[i] !== d[dstOff + i];
      if (moved) {
        if (this.#l.local.get(d, dstOff) !== undefined && !ipv6IsMulticast(d, dstOff)) {
          s.packetsSent++;
          this.#loopback.push(pkt, ipOff);
          return R.OK;
        }
        const again = this.#route(d, dstOff, opts.nic);
        if (again !== R.OK) return again;
        outNic = this.#outNic!;
        nextHop = this.#nextHop;
        nextHopOff = this.#nextHopOff;
      }
    }
    if (
      this.#l.hooks.postrouting !== null && !this.#l.hooks.postrouting(pkt, ipOff, null, outNic)
    ) {
      return R.FIREWALL;
    }
    s.packetsSent++;
    const mtu = this.pathMtu(outNic, d, dstOff);
    // A super-frame (TCP with TSO) is too big when its segments are.
    const size = pkt.isGso() ? gsoSegmentLen(pkt, ipOff, 40) : ip.totalLength();
    if (size > mtu && !opts.noFragment) {
      this.#fragmentAndSend(outNic, pkt, ipOff, nextHop, nextHopOff, mtu);
      return R.OK;
    }
    this.sendToNextHop(outNic, pkt, ipOff, nextHop, nextHopOff);
    return R.OK;
  }

  /** The destination before OUTPUT, to see whether a hook rewrote it (DNAT). */
  readonly #dstBefore = new Uint8Array(16);
  /** The egress and next hop {@link #route} chose. */
  #outNic: Nic | undefined = undefined;
  #nextHop: Uint8Array = new Uint8Array(16);
  #nextHopOff = 0;

  /**
   * The output routing decision for the destination at `d[dstOff]`: the
   * egress NIC (`pinned` when given) and next hop into `#outNic`,
   * `#nextHop`, `#nextHopOff`.
   */
  #route(d: Uint8Array, dstOff: number, pinned: Nic | undefined): Verdict {
    let outNic = pinned;
    this.#nextHop = d;
    this.#nextHopOff = dstOff;
    if (ipv6IsMulticast(d, dstOff) || (ipv6IsLinkLocalUnicast(d, dstOff) && outNic !== undefined)) {
      if (outNic === undefined) return R.OUTPUT_NO_ROUTE;
    } else {
      const route = this.#l.routes.lookup(d, dstOff, 0);
      if (route === null || route.type !== "unicast") return R.OUTPUT_NO_ROUTE;
      outNic ??= this.#l.stack.nics.get(route.nicId);
      if (route.gateway !== null) {
        this.#nextHop = route.gateway;
        this.#nextHopOff = 0;
      }
    }
    if (outNic === undefined) return R.OUTPUT_NO_ROUTE;
    this.#outNic = outNic;
    return R.OK;
  }

  /**
   * RFC 6437 §3: one flow label per flow for the packets we originate, a
   * keyed hash of addresses, protocol and ports (Linux's auto_flowlabels,
   * on by default). NDP and MLD keep 0, as Linux's ndisc and mld send them.
   * The label is not in any checksum.
   */
  #labelFlow(pkt: PacketBuffer, ip: Ipv6Packet): void {
    const proto = pkt.l4Protocol, l4 = pkt.l4Offset;
    const d = pkt.data;
    if (proto === Ipv6NextHeader.ICMPV6 && l4 >= 0 && l4 < pkt.end) {
      const t = d[l4]!;
      if ((t >= 130 && t <= 137) || t === 143) return;
    }
    let h = this.#flowKey;
    for (let i = ip.off + 8; i < ip.off + 40; i += 4) {
      h = Math.imul(
        h ^ ((d[i]! << 24) | (d[i + 1]! << 16) | (d[i + 2]! << 8) | d[i + 3]!),
        0x01000193,
      );
    }
    const ports = (proto === 6 || proto === 17) && l4 >= 0 && l4 + 4 <= pkt.end
      ? pkt.view.getUint32(l4)
      : 0;
    h = Math.imul(h ^ ports ^ (proto << 24), 0x01000193);
    h ^= h >>> 13;
    ip.setFlowLabel((h & 0xfffff) || 1);
  }

  /** The key of {@link #labelFlow}'s hash, random per stack. */
  readonly #flowKey: number;

  /** Fill the upper-layer checksum of a packet whose source was just chosen. */
  #fixChecksum(pkt: PacketBuffer, ipOff: number): void {
    const fix = this.#l.checksumFixers.get(pkt.data[ipOff + 6]!);
    fix?.(pkt, ipOff);
  }

  /** The MTU to `dst`: the link MTU, lowered by a Packet Too Big we learned (RFC 8201). */
  pathMtu(outNic: Nic, a: Uint8Array, off: number): number {
    const link = outNic.mtu();
    const p = this.#l.pmtu.get(a, off);
    if (p === undefined) return link;
    if (p.expires <= this.#l.stack.clock.now()) {
      this.#l.pmtu.delete(a, off);
      return link;
    }
    return Math.min(link, p.mtu);
  }

  /** A Packet Too Big arrived for `dst`: remember its MTU (never below 1280, RFC 8201 §4). */
  learnPathMtu(dst: Uint8Array, off: number, mtu: number): void {
    this.#l.pmtu.set(dst, {
      mtu: Math.max(IPV6_MIN_MTU, mtu),
      expires: this.#l.stack.clock.now() + PMTU_AGE_MS,
    }, off);
  }

  /**
   * RFC 8200 §4.5: split our own packet into fragments that fit `mtu`,
   * each with the unfragmentable part (the IPv6 header; tapir's own
   * packets carry no extension headers before the upper layer, except
   * Hop-by-Hop, which stays in every fragment) and a Fragment header.
   */
  #fragmentAndSend(
    outNic: Nic,
    pkt: PacketBuffer,
    ipOff: number,
    nh: Uint8Array,
    nhOff: number,
    mtu: number,
  ): void {
    const s = this.#l.stack.stats.ipv6;
    const d = pkt.data;
    let unfrag = IPV6_HEADER_LEN;
    let typeOff = ipOff + 6;
    if (d[ipOff + 6] === Ipv6NextHeader.HOP_BY_HOP) {
      typeOff = ipOff + IPV6_HEADER_LEN;
      unfrag += (d[ipOff + IPV6_HEADER_LEN + 1]! + 1) << 3;
    }
    const total = pkt.end - ipOff;
    const perFrag = (mtu - unfrag - IPV6_FRAGMENT_HEADER_LEN) & ~7;
    const fragNext = d[typeOff]!;
    const payloadStart = ipOff + unfrag;
    const payloadLen = total - unfrag;
    const id = this.#l.nextFragmentId();
    const pool = this.#l.stack.pool;
    for (let off = 0; off < payloadLen; off += perFrag) {
      const n = Math.min(perFrag, payloadLen - off);
      const b = pool.get();
      if (b === null) {
        this.#l.stack.stats.bufferPoolExhausted++;
        return;
      }
      const fo = HEADROOM + ETHERNET_HEADER_LEN;
      b.data.set(d.subarray(ipOff, payloadStart), fo);
      b.data[fo + (typeOff - ipOff)] = Ipv6NextHeader.FRAGMENT;
      writeFragmentHeader(b, fo + unfrag, {
        nextHeader: fragNext,
        fragmentOffset: off,
        moreFragments: off + n < payloadLen,
        identification: id,
      });
      b.data.set(
        d.subarray(payloadStart + off, payloadStart + off + n),
        fo + unfrag + IPV6_FRAGMENT_HEADER_LEN,
      );
      b.view.setUint16(fo + 4, unfrag - IPV6_HEADER_LEN + IPV6_FRAGMENT_HEADER_LEN + n);
      b.start = HEADROOM;
      b.end = fo + unfrag + IPV6_FRAGMENT_HEADER_LEN + n;
      s.fragmentsCreated++;
      this.sendToNextHop(outNic, b, fo, nh, nhOff);
      pool.put(b);
    }
    s.packetsFragmented++;
  }

  /**
   * The last steps of every packet leaving by `outNic`, forwarded or ours:
   * segmentation or checksum completion for a plain link, Ethernet header, NDP.
   */
  sendToNextHop(
    outNic: Nic,
    pkt: PacketBuffer,
    ipOff: number,
    nh: Uint8Array,
    nhOff: number,
  ): void {
    if (!outNic.link.capabilities.offloads) {
      if (pkt.isGso()) {
        const ok = segmentGso(
          this.#l.stack.pool,
          pkt,
          ipOff,
          (seg, segIpOff) => this.#resolveAndSend(outNic, seg, segIpOff, nh, nhOff),
        );
        if (ok) this.#l.stack.stats.ipv6.gsoSegmented++;
        else this.#l.stack.stats.ipv6.gsoDropped++;
        return;
      }
      if (pkt.vnetFlags !== 0) completePartialChecksum(pkt);
    }
    this.#resolveAndSend(outNic, pkt, ipOff, nh, nhOff);
  }

  #resolveAndSend(
    outNic: Nic,
    pkt: PacketBuffer,
    ipOff: number,
    nh: Uint8Array,
    nhOff: number,
  ): void {
    const st = this.#l.nicState(outNic)!;
    let group: Uint8Array | null = null;
    if (ipv6IsMulticast(nh, nhOff)) {
      // RFC 2464 §7: 33:33 and the group's last 32 bits.
      group = this.#groupMac;
      group.set(nh.subarray(nhOff + 12, nhOff + 16), 2);
    }
    const key = group === null && pkt.linkDst === null ? this.#l.keys.key(nh, nhOff) : "";
    sendOnLink(this.#eth, outNic, pkt, ipOff, EtherType.IPV6, group, st.neighbors, key);
  }
}
