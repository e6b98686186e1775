/**
 * Neighbor Discovery (RFC 4861) and Duplicate Address Detection
 * (RFC 4862 §5.4, with the nonce of RFC 7527): NS/NA handling with the
 * validity checks of §7.1, solicitations for the shared NUD cache,
 * unsolicited NAs, and Redirects from a router (§8.2).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Nic } from "../nic.ts";
import type { Ipv6InterfaceAddress, Ipv6Layer as Ipv6, Ipv6NicState } from "./_layer.ts";
import { IPV6_ALL_NODES as ALL_NODES } from "../wire/ipv6.ts";
import {
  NDP_HOP_LIMIT,
  NdpOptionError,
  NdpOptionIterator,
  type NdpOptionRepr,
  NdpOptionType,
  NdpPacket,
  type NdpRepr,
  writeNdpPacket,
} from "../wire/ndp.ts";
import { Icmpv6Type } from "../wire/icmpv6.ts";
import { IPV6_HEADER_LEN, IPV6_MIN_MTU, type Ipv6Packet } from "../wire/ipv6.ts";
import {
  formatIpv6,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6SolicitedNode,
  parseIpv6,
} from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN, EtherType, writeEthernetHeader } from "../wire/ethernet.ts";
import { HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import { ipv6MulticastMac } from "../wire/mac_address.ts";
import { RepeatFilter } from "../repeat_filter.ts";

const log = getLogger(["tapir", "ipv6"]);
const UNSPECIFIED = new Uint8Array(16);
/** RFC 4861 §10: MAX_RTR_SOLICITATION_DELAY bounds the random delay before the first DAD probe. */
const MAX_DAD_DELAY_MS = 1000;

function same(a: Uint8Array, b: Uint8Array, bOff = 0): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}

/** {@link Ndp}'s `#enterSolicitor` answer: leave this solicitation unanswered. */
const UNANSWERED = new Uint8Array(0);

/** NDP for one stack. */
export class Ndp {
  #ndp = new NdpPacket();
  /** Solicitors the full table could not enter, seen in the last 2–4 s (see `#enterSolicitor`). */
  #solicitors: RepeatFilter | null = null;
  #it = new NdpOptionIterator();
  // The options {@link Ndp.receive} found (first of each kind): offset of
  // the option's data and its length, -1 when absent.
  #slla = -1;
  #sllaLen = 0;
  #tlla = -1;
  #tllaLen = 0;
  #nonce = -1;
  #nonceLen = 0;

  constructor(readonly ipv6: Ipv6) {}

  /**
   * An NDP message (types 133–137) arrived on `nic`; ICMPv6 has checked its
   * checksum. NS and NA, the messages of a neighbour flood, are handled
   * from the packet's bytes without a Repr (no object or copy per packet);
   * RS and RA go to the RA code, which parses them.
   */
  receive(nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet, off: number, len: number): void {
    const s = this.ipv6.stack.stats.ndp;
    s.messagesReceived++;
    // RFC 4861 §6.1, §7.1: hop limit 255 (so it came from this link), code
    // 0, the fixed part present, and no option of length 0 or overrunning.
    const v = this.#ndp.reset(pkt, off);
    if (
      ip.hopLimit() !== NDP_HOP_LIMIT || !v.check(len) || v.code() !== 0 ||
      !this.#options(pkt.data, v.optionsOffset(), off + len)
    ) {
      s.invalidDropped++;
      return;
    }
    const d = pkt.data;
    const srcOff = ip.srcOffset(), dstOff = ip.dstOffset();
    const srcUnspecified = ipv6IsUnspecified(d, srcOff);
    const st = this.ipv6.nicState(nic);
    if (st === undefined) return;
    const t = v.targetOffset();
    switch (v.type()) {
      case Icmpv6Type.NEIGHBOR_SOLICITATION: {
        // §7.1.1: the target is not multicast; from :: only to a
        // solicited-node group and without a source link-layer option.
        const slla = this.#slla;
        if (
          ipv6IsMulticast(d, t) ||
          (srcUnspecified && (!this.#isSolicitedNode(d, dstOff) || slla >= 0))
        ) {
          s.invalidDropped++;
          return;
        }
        s.solicitationsReceived++;
        const addr = st.addresses.find((a) => same(a.address, d, t));
        if (addr === undefined) {
          const target = d.subarray(t, t + 16);
          // RFC 4861 §7.2.7: for one of our anycast addresses, an NA without
          // Override (so a unicast owner's NA wins). Linux answers at once
          // unless proxy_delay asks for a random delay; tapir answers at once.
          if (!srcUnspecified && this.ipv6.anycastNic(target) === nic) {
            const to = slla >= 0 ? this.#enterSolicitor(st, d, srcOff, slla) : null;
            if (to === UNANSWERED) return;
            this.sendAdvertisement(nic, target.slice(), d.subarray(srcOff, srcOff + 16), {
              solicited: true,
              override: false,
            }, to);
            return;
          }
          s.notForUs++;
          return;
        }
        if (addr.state === "tentative") {
          if (!srcUnspecified) return; // §5.4.3: a node doing address resolution; ignore.
          // RFC 7527: our own NS looped back carries our nonce.
          if (this.#nonce >= 0 && addr.dadNonce !== null && this.#nonceIs(d, addr.dadNonce)) {
            s.loopedBackSolicitations++;
            return;
          }
          this.dadFailed(nic, addr, "a neighbor solicitation for it (another node's DAD)");
          return;
        }
        if (addr.state === "duplicate") return;
        const toMac = !srcUnspecified && slla >= 0
          ? this.#enterSolicitor(st, d, srcOff, slla)
          : null;
        if (toMac === UNANSWERED) return;
        // §7.2.4: answer; to all-nodes without S when the source was ::.
        this.sendAdvertisement(
          nic,
          addr.address,
          srcUnspecified ? ALL_NODES : d.subarray(srcOff, srcOff + 16),
          {
            solicited: !srcUnspecified,
            override: true,
          },
          toMac,
        );
        return;
      }
      case Icmpv6Type.NEIGHBOR_ADVERTISEMENT: {
        const solicited = v.solicited();
        // §7.1.2: target not multicast; S is 0 when sent to a multicast address.
        if (ipv6IsMulticast(d, t) || (ipv6IsMulticast(d, dstOff) && solicited)) {
          s.invalidDropped++;
          return;
        }
        s.advertisementsReceived++;
        const tlla = this.#tlla;
        const addr = st.addresses.find((a) => same(a.address, d, t));
        if (addr !== undefined) {
          if (addr.state === "tentative") {
            this.dadFailed(nic, addr, "a neighbor advertisement for it");
          } else {
            s.duplicateAfterDad++;
            log.warn("{nic}: {addr} is advertised by another node ({mac})", {
              nic: nic.name,
              addr: formatIpv6(addr.address),
              mac: tlla < 0 ? "null" : String(d.slice(tlla, tlla + this.#tllaLen)),
            });
          }
          return;
        }
        st.neighbors.handleAdvertisement(
          this.ipv6.keys.peek(d, t),
          tlla < 0 ? null : d.subarray(tlla, tlla + this.#tllaLen),
          {
            solicited,
            override: v.override(),
            isRouter: v.router(),
          },
        );
        return;
      }
      case Icmpv6Type.ROUTER_SOLICITATION:
      case Icmpv6Type.ROUTER_ADVERTISEMENT: {
        // §6.3.4 (an RA to a host) and §6.2.6 (an RS to a router): a source
        // link-layer option creates or updates the sender's entry (STALE),
        // as Linux's ndisc_router_discovery and ndisc_recv_rs do, so a
        // unicast answer to the RS needs no Neighbor Solicitation first.
        const ra = v.type() === Icmpv6Type.ROUTER_ADVERTISEMENT;
        // An RA the RA code does not take (its flood limit) touches nothing:
        // flood_router26's random routers would fill the neighbour table.
        const use = ra ? this.admitRouterAdvertisement?.(nic, pkt, ip) ?? 1 : 1;
        if (use === 0) {
          s.routerAdvertisementsReceived++;
          return;
        }
        const slla = this.#slla;
        if (!srcUnspecified && slla >= 0) {
          st.neighbors.handleSolicitation(
            this.ipv6.keys.peek(d, srcOff),
            d.subarray(slla, slla + this.#sllaLen),
            ra || st.forwarding,
          );
        }
        if (ra) s.routerAdvertisementsReceived++;
        else s.routerSolicitationsReceived++;
        this.onRouterMessage?.(nic, pkt, ip, off, len, use);
        return;
      }
      default:
        // §8.1: a router never accepts Redirects; tapir as a host does not act on them yet.
        s.redirectsIgnored++;
        return;
    }
  }

  /**
   * Walk the options of `d[start, end)` as NdpRepr.parse does, noting the
   * first Source and Target Link-Layer Address and Nonce options that are
   * well formed. False on a zero-length or overrunning option.
   */
  #options(d: Uint8Array, start: number, end: number): boolean {
    this.#slla = this.#tlla = this.#nonce = -1;
    const it = this.#it.reset(d, start, end);
    while (it.next()) {
      if (!it.wellFormed()) continue;
      const o = it.offset, n = it.length;
      switch (it.type) {
        case NdpOptionType.SOURCE_LINK_LAYER_ADDRESS:
          if (this.#slla < 0) {
            // Ethernet (RFC 2464 §8): a 6-byte address in an 8-byte option.
            this.#slla = o + 2;
            this.#sllaLen = n === 8 ? 6 : n - 2;
          }
          break;
        case NdpOptionType.TARGET_LINK_LAYER_ADDRESS:
          if (this.#tlla < 0) {
            this.#tlla = o + 2;
            this.#tllaLen = n === 8 ? 6 : n - 2;
          }
          break;
        case NdpOptionType.NONCE:
          if (this.#nonce < 0) {
            this.#nonce = o + 2;
            this.#nonceLen = n - 2;
          }
          break;
      }
    }
    return it.error === NdpOptionError.NONE;
  }

  /** True when the Nonce option found is `nonce` (RFC 7527). */
  #nonceIs(d: Uint8Array, nonce: Uint8Array): boolean {
    for (let i = 0; i < this.#nonceLen; i++) if (d[this.#nonce + i] !== nonce[i]) return false;
    return true;
  }

  /**
   * Router Solicitations and Advertisements go here too (the RA/SLAAC code
   * sets it); for an RA, `use` is what {@link admitRouterAdvertisement} said.
   */
  onRouterMessage:
    | ((
      nic: Nic,
      pkt: PacketBuffer,
      ip: Ipv6Packet,
      off: number,
      len: number,
      use: number,
    ) => void)
    | null = null;

  /**
   * Set by the RA code: asked before anything of an RA arriving on `nic`
   * is processed (its Source Link-Layer Address option included); 0 drops
   * it (the code counted why), any other value is passed on to
   * {@link onRouterMessage}.
   */
  admitRouterAdvertisement: ((nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet) => number) | null = null;

  #isSolicitedNode(d: Uint8Array, off: number): boolean {
    return d[off] === 0xff && d[off + 1] === 0x02 && d[off + 11] === 0x01 && d[off + 12] === 0xff &&
      d[off + 2] === 0 && d[off + 3] === 0 && d[off + 4] === 0 && d[off + 5] === 0 &&
      d[off + 6] === 0 &&
      d[off + 7] === 0 && d[off + 8] === 0 && d[off + 9] === 0 && d[off + 10] === 0;
  }

  /** Build an NDP packet and send it on `nic` to `dstMac` (or the group MAC of `dst`). */
  #send(
    nic: Nic,
    src: Uint8Array,
    dst: Uint8Array,
    repr: NdpRepr,
    dstMac: Uint8Array | null,
  ): void {
    const pool = this.ipv6.stack.pool;
    const b = pool.get();
    if (b === null) {
      this.ipv6.stack.stats.bufferPoolExhausted++;
      return;
    }
    try {
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      const n = writeNdpPacket(b, ipOff, src, dst, repr);
      b.start = HEADROOM;
      b.end = ipOff + n;
      b.networkOffset = ipOff;
      if (dstMac === null && !ipv6IsMulticast(dst)) {
        // A unicast NA or redirect: let the normal output path resolve it.
        this.ipv6.output(b, ipOff, { nic, noFragment: true });
        return;
      }
      writeEthernetHeader(b, HEADROOM, dstMac ?? ipv6MulticastMac(dst), nic.mac, EtherType.IPV6);
      nic.send(b);
    } finally {
      pool.put(b);
    }
  }

  /** Solicit `key` (the neighbor cache's text key): multicast to its solicited-node group, or a unicast probe. */
  sendSolicitation(nic: Nic, key: string, unicastTo: Uint8Array | null): void {
    const target = parseIpv6(key);
    const src = this.ipv6.selectSource(target, 0, nic);
    if (src === null) return;
    this.ipv6.stack.stats.ndp.solicitationsSent++;
    const dst = unicastTo === null ? ipv6SolicitedNode(target) : target;
    this.#send(nic, src, dst, {
      kind: "neighborSolicitation",
      target,
      options: [{ kind: "sourceLinkLayerAddress", mac: nic.mac }],
    }, unicastTo);
  }

  /**
   * RFC 4861 §7.2.3: enter (or update) the soliciting neighbour from its
   * Source Link-Layer Address option at `d[slla]`.
   *
   * @returns null when it is in the table (the answer goes the normal way);
   *   when the table is full of entries younger than the forced GC takes
   *   (`tableFullDrops`, counted there), its link-layer address to answer
   *   to directly if it solicited before in the last 2–4 s, else
   *   {@link UNANSWERED} (`ndp.solicitationsUnanswered`).
   *
   * Linux's ndisc_recv_ns answers only a neighbour it could enter, but its
   * neigh_forced_gc takes any entry not updated since the previous forced
   * GC, so under an NS flood from random sources its table churns and a
   * host that comes meanwhile still gets in. tapir keeps the flood's young
   * entries from displacing each other (no entry made and freed per flood
   * packet) and answers without an entry a solicitor that repeats, as a
   * host does after RetransTimer (1 s): that host resolves us on its second
   * NS (bench:floods ns-random: 100 % ping loss through tapir when no NA
   * reached a host that came during the flood). Answering every solicitor
   * cost a write per flood packet: flood_solicitate6's 125,000 NS a second
   * held tapir at its limit, and pings through it waited 6.5 ms (median)
   * behind a full TAP queue.
   */
  #enterSolicitor(
    st: Ipv6NicState,
    d: Uint8Array,
    srcOff: number,
    slla: number,
  ): Uint8Array | null {
    const mac = d.subarray(slla, slla + this.#sllaLen);
    if (st.neighbors.handleSolicitation(this.ipv6.keys.peek(d, srcOff), mac, true)) return null;
    const stack = this.ipv6.stack;
    const f = this.#solicitors ??= new RepeatFilter(stack.random);
    if (f.repeated(stack.clock.now(), d, srcOff, 16, d, slla, this.#sllaLen)) return mac;
    stack.stats.ndp.solicitationsUnanswered++;
    return UNANSWERED;
  }

  /**
   * Send an NA for our `target` (R set when forwarding, §7.2.4); to
   * `dstMac` without resolving `dst` when given.
   */
  sendAdvertisement(
    nic: Nic,
    target: Uint8Array,
    dst: Uint8Array,
    f: { solicited: boolean; override: boolean },
    dstMac: Uint8Array | null = null,
  ): void {
    this.ipv6.stack.stats.ndp.advertisementsSent++;
    this.#send(nic, target, dst, {
      kind: "neighborAdvertisement",
      router: this.ipv6.nicState(nic)?.forwarding ?? false,
      solicited: f.solicited,
      override: f.override,
      target,
      options: [{ kind: "targetLinkLayerAddress", mac: nic.mac }],
    }, dstMac);
  }

  /**
   * RFC 4862 §5.4: probe a tentative address with `dadTransmits` NS from ::
   * to its solicited-node group, after a random delay, RetransTimer apart;
   * without an answer it becomes preferred.
   */
  startDad(nic: Nic, a: Ipv6InterfaceAddress): void {
    const settings = this.ipv6.settings;
    if (settings.dadTransmits === 0) {
      this.#dadDone(nic, a);
      return;
    }
    const r = this.ipv6.stack.random;
    a.dadTransmitsLeft = settings.dadTransmits;
    a.dadNonce = new Uint8Array(6);
    for (let i = 0; i < 6; i++) a.dadNonce[i] = r.uint32() & 0xff;
    const probe = () => {
      a.dadTimer = null;
      if (a.state !== "tentative") return;
      if (a.dadTransmitsLeft === 0) {
        this.#dadDone(nic, a);
        return;
      }
      a.dadTransmitsLeft--;
      this.ipv6.stack.stats.ndp.dadProbesSent++;
      this.#send(nic, UNSPECIFIED, ipv6SolicitedNode(a.address), {
        kind: "neighborSolicitation",
        target: a.address,
        options: [{ kind: "nonce", nonce: a.dadNonce! }],
      }, null);
      a.dadTimer = this.ipv6.stack.clock.schedule(settings.retransTimerMs, probe);
    };
    a.dadTimer = this.ipv6.stack.clock.schedule(Math.floor(r.float() * MAX_DAD_DELAY_MS), probe);
  }

  #dadDone(nic: Nic, a: Ipv6InterfaceAddress): void {
    a.state = a.preferredUntil <= this.ipv6.stack.clock.now() ? "deprecated" : "preferred";
    a.dadTimer = null;
    this.ipv6.stack.stats.ndp.dadSucceeded++;
    log.info("{nic}: {addr}/{len} passed DAD", {
      nic: nic.name,
      addr: formatIpv6(a.address),
      len: a.prefixLen,
    });
    // RFC 4861 §7.2.6: tell the link (unsolicited NA, override set).
    this.sendAdvertisement(nic, a.address, ALL_NODES, { solicited: false, override: true });
    this.ipv6.addressChanged(nic, a);
  }

  /** DAD found `a` in use elsewhere: it is never used (Linux marks it dadfailed). */
  dadFailed(nic: Nic, a: Ipv6InterfaceAddress, why: string): void {
    a.dadTimer?.cancel();
    a.dadTimer = null;
    a.state = "duplicate";
    this.ipv6.stack.stats.ndp.dadFailed++;
    log.warn("{nic}: duplicate address {addr} detected ({why}); marked dadfailed and not used", {
      nic: nic.name,
      addr: formatIpv6(a.address),
      why,
    });
    this.ipv6.addressChanged(nic, a);
  }

  /**
   * RFC 4861 §8.2: a router tells a sender on the link about a better first
   * hop (`target`) for the packet's destination; rate-limited with ICMP errors.
   */
  sendRedirect(nic: Nic, pkt: PacketBuffer, ipOff: number, target: Uint8Array): void {
    const src = this.ipv6.linkLocalOf(nic);
    if (src === null || !this.ipv6.icmp.bucket.take()) return;
    const d = pkt.data;
    const key = this.ipv6.keys.key(target, 0);
    const mac = this.ipv6.nicState(nic)?.neighbors.get(key)?.mac ?? null;
    const options: NdpOptionRepr[] = [];
    if (mac !== null) options.push({ kind: "targetLinkLayerAddress", mac });
    // The Redirected Header carries as much of the packet as fits in 1280 bytes.
    const room = IPV6_MIN_MTU - IPV6_HEADER_LEN - 40 - (mac !== null ? 8 : 0) - 8;
    const quote = Math.min(pkt.end - ipOff, room) & ~7;
    options.push({ kind: "redirectedHeader", data: d.slice(ipOff, ipOff + quote) });
    this.ipv6.stack.stats.ndp.redirectsSent++;
    this.#send(nic, src, d.slice(ipOff + 8, ipOff + 24), {
      kind: "redirect",
      target,
      destination: d.slice(ipOff + 24, ipOff + 40),
      options,
    }, null);
  }
}
