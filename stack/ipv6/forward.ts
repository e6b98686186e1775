/**
 * IPv6 forwarding (RFC 8200, as gVisor's forwardPacket and Linux's
 * ip6_forward): the Hop-by-Hop options a router processes, link-local
 * scope, hop limit, routing, Packet Too Big, redirects, FORWARD and
 * POSTROUTING.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import { DropReason as R, routeTypeReason } from "../ip/drop.ts";
import { flowHashV6, isRouteGroup } from "../route_table.ts";
import { gsoSegmentLen } from "../gso.ts";
import { IPV6_HEADER_LEN, Ipv6Packet } from "../wire/ipv6.ts";
import {
  Ipv6ExtHeaderIterator,
  Ipv6NextHeader,
  Ipv6OptionIterator,
  Ipv6OptionsResult,
  Ipv6OptionsVerdict,
  processIpv6Options,
} from "../wire/ipv6_ext.ts";
import { Icmpv6Type } from "../wire/icmpv6.ts";
import { ipv6CidrContains, ipv6IsLinkLocalUnicast } from "../wire/ip_address.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { Ipv6DropReason } from "./drops.ts";
import type { Ipv6NicState } from "./_layer.ts";
import { type Ipv6Datapath, routerAlerts } from "./_datapath.ts";
import type { Ipv6Egress } from "./output.ts";

/** What a path returns: OK, or why it gave up. */
type Verdict = typeof R.OK | Ipv6DropReason;

/** The forwarding path of one IPv6 layer. */
export class Ipv6Forwarding {
  readonly #l: Ipv6Datapath;
  readonly #out: Ipv6Egress;
  #ip = new Ipv6Packet();
  #ext = new Ipv6ExtHeaderIterator();
  #opts = new Ipv6OptionsResult();
  #optIt = new Ipv6OptionIterator();

  constructor(layer: Ipv6Datapath, egress: Ipv6Egress) {
    this.#l = layer;
    this.#out = egress;
  }

  /** Forward a packet that arrived on `inNic` and is not for us (RFC 8200, Linux ip6_forward). */
  forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): void {
    this.#l.drops.verdict(this.verdict(inNic, pkt, ipOff), pkt, ipOff, inNic);
  }

  /** The forwarding path: OK, or why the packet is not forwarded. */
  verdict(inNic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const s = this.#l.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const d = pkt.data;
    // Hop-by-Hop is the one header a router processes (RFC 8200 §4).
    if (ip.nextHeader() === Ipv6NextHeader.HOP_BY_HOP) {
      const it = this.#ext.reset(ip);
      if (!it.next()) return R.MALFORMED;
      const v = processIpv6Options(d, it.offset, it.length, ipOff, true, false, this.#opts);
      if (v === Ipv6OptionsVerdict.PARAMETER_PROBLEM) {
        return this.#l.drops.fail(R.OPTIONS_PARAMETER_PROBLEM, this.#opts.pointer);
      }
      if (v !== Ipv6OptionsVerdict.ACCEPT) return R.OPTIONS_DISCARD;
      // RFC 2711 §2.1: at most one Router Alert.
      if (
        this.#opts.routerAlert >= 0 && routerAlerts(this.#optIt, d, it.offset, it.length, ipOff) > 1
      ) return R.OPTIONS_DISCARD;
    }
    // NDP and MLD belong to their link: consumed, never forwarded (a
    // forwarded NS arrives with hop limit 254 and poisons nothing, but it
    // wastes the far link and can loop back an NA, RFC 4861 §7.1).
    if (this.#isLinkControl(ip)) return R.LINK_CONTROL;
    // Link-local addresses never leave their link (RFC 4291 §2.5.6).
    if (ipv6IsLinkLocalUnicast(d, ip.srcOffset())) return R.LINK_LOCAL_SOURCE;
    if (ipv6IsLinkLocalUnicast(d, ip.dstOffset())) return R.LINK_LOCAL_DESTINATION;
    if (ip.hopLimit() <= 1) return R.TTL_EXCEEDED;
    const c = this.#l.routes.candidates(d, ip.dstOffset());
    const route = isRouteGroup(c) ? c[(this.#flowHash(pkt, ip) >>> 0) % c.length]! : c;
    if (route === null) return R.NO_ROUTE;
    if (route.type !== "unicast") return routeTypeReason(route.type);
    const outNic = this.#l.stack.nics.get(route.nicId);
    if (outNic === undefined || !outNic.isUp()) return R.LINK_DOWN;
    const mtu = outNic.mtu();
    const len = ip.totalLength();
    const segLen = pkt.isGso() ? gsoSegmentLen(pkt, ipOff, IPV6_HEADER_LEN) : len;
    // RFC 8200 §5: routers never fragment; Packet Too Big with the link MTU.
    if (segLen > mtu) return this.#l.drops.fail(R.TOO_BIG, mtu);
    const gw = route.gateway;
    const inState = this.#l.nicState(inNic)!;
    if (outNic === inNic && inState.sendRedirects && this.#onLink(inState, d, ip.srcOffset())) {
      // RFC 4861 §8.2: tell the sender about the better first hop.
      this.#l.ndp.sendRedirect(
        inNic,
        pkt,
        ipOff,
        gw ?? d.subarray(ip.dstOffset(), ip.dstOffset() + 16),
      );
    }
    if (this.#l.hooks.forward !== null && !this.#l.hooks.forward(pkt, ipOff, inNic, outNic)) {
      return R.FIREWALL;
    }
    ip.decrementHopLimit();
    if (
      this.#l.hooks.postrouting !== null && !this.#l.hooks.postrouting(pkt, ipOff, null, outNic)
    ) {
      return R.FIREWALL;
    }
    // Counted once POSTROUTING let it go: a NAT drop there is the firewall's, not a forward.
    s.forwarding.packets++;
    this.#out.sendToNextHop(outNic, pkt, ipOff, gw ?? d, gw === null ? ip.dstOffset() : 0);
    return R.OK;
  }

  /** True for NDP (133–137) and MLD (130–132, 143) messages, from what receive recorded on the packet. */
  #isLinkControl(ip: Ipv6Packet): boolean {
    const pkt = ip.buf;
    // The data of a non-first fragment has no ICMPv6 header.
    if (pkt.l4Protocol !== Ipv6NextHeader.ICMPV6 || pkt.l4Offset < 0 || pkt.l4Offset >= pkt.end) {
      return false;
    }
    const t = pkt.data[pkt.l4Offset]!;
    return (t >= Icmpv6Type.MLD_QUERY && t <= Icmpv6Type.REDIRECT) ||
      t === Icmpv6Type.MLD_REPORT_V2;
  }

  #onLink(st: Ipv6NicState, a: Uint8Array, off: number): boolean {
    for (const x of st.addresses) if (ipv6CidrContains(x, a, off)) return true;
    return false;
  }

  #flowHash(pkt: PacketBuffer, ip: Ipv6Packet): number {
    const nh = ip.nextHeader();
    const l4 = ip.off + IPV6_HEADER_LEN;
    let sport = 0, dport = 0;
    if ((nh === 6 || nh === 17) && l4 + 4 <= pkt.end) {
      sport = pkt.view.getUint16(l4);
      dport = pkt.view.getUint16(l4 + 2);
    }
    return flowHashV6(pkt.data, ip.srcOffset(), ip.dstOffset(), nh, sport, dport, ip.flowLabel());
  }
}
