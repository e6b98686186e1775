/**
 * The IPv6 layer: addresses with DAD states, the receive path with
 * extension-header processing (as gVisor's ipv6.go HandlePacket /
 * processExtensionHeaders), forwarding (as gVisor's forwardPacket and
 * Linux's ip6_forward), and output of locally generated packets (source
 * selection, fragmentation with a Fragment header, a path MTU cache, NDP
 * resolution).
 *
 * @module
 */
import type { LoopbackQueue } from "../loopback.ts";
import type { Nic } from "../nic.ts";
import type { IpHooks } from "../ip/hooks.ts";
import type { StackContext } from "../ip/context.ts";
import { flowHashV6, Ipv6RouteTable } from "../route_table.ts";
import { NeighborCache } from "../neighbor_cache.ts";
import type { Reassembler } from "../reassembly.ts";
import { ETHERNET_HEADER_LEN, EthernetFrame, EtherType } from "../wire/ethernet.ts";
import {
  buildIpv6Packet,
  IPV6_ALL_NODES as ALL_NODES,
  IPV6_ALL_ROUTERS as ALL_ROUTERS,
  IPV6_HEADER_LEN,
  IPV6_MIN_MTU,
  Ipv6Packet,
} from "../wire/ipv6.ts";
import {
  IPV6_FRAGMENT_HEADER_LEN,
  Ipv6ExtError,
  Ipv6ExtHeaderIterator,
  Ipv6FragmentHeader,
  Ipv6NextHeader,
  Ipv6OptionIterator,
  Ipv6OptionsResult,
  Ipv6OptionsVerdict,
  Ipv6OptionType,
  Ipv6RoutingHeader,
  Ipv6UpperLayer,
  processIpv6Options,
  writeFragmentHeader,
} from "../wire/ipv6_ext.ts";
import { Icmpv6Code, Icmpv6Type } from "../wire/icmpv6.ts";
import {
  formatIpv6,
  ipv6CidrContains,
  ipv6IsLinkLocalUnicast,
  ipv6IsLoopback,
  ipv6IsMulticast,
  ipv6IsUnspecified,
  ipv6Masked,
  ipv6SolicitedNode,
} from "../wire/ip_address.ts";
import { ipv6MulticastMac } from "../wire/mac_address.ts";
import { FRAG_LATER, FRAG_NONE, HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import { Ipv6AddressMap, Ipv6KeyInterner } from "./addr_map.ts";
import { Icmpv6 } from "./icmp.ts";
import { Ndp } from "./ndp.ts";
import { Mld } from "./mld.ts";
import { completePartialChecksum, gsoSegmentLen, segmentGso } from "../gso.ts";
import { linkLocalFromMac } from "./interface_id.ts";
import { Dropper, DropReason as R, routeTypeReason } from "../ip/drop.ts";
import {
  detachNicState,
  type IpOutputOptions,
  loopbackFor,
  reassemblerFor,
  sendOnLink,
} from "../ip/layer.ts";
import { IPV6_DROPS, type Ipv6DropReason } from "./drops.ts";
import type { Ipv6InterfaceAddress, Ipv6Layer, Ipv6NicState, Ipv6Settings } from "./_layer.ts";
export type {
  Ipv6AddressState,
  Ipv6InterfaceAddress,
  Ipv6Layer,
  Ipv6NicState,
  Ipv6Settings,
} from "./_layer.ts";
import { type CandidateAddress, selectSourceAddress } from "./address_selection.ts";

const UNSPECIFIED = new Uint8Array(16);

/** RFC 8201 §5.3: a learned PMTU ages out after 10 minutes. */
const PMTU_AGE_MS = 10 * 60_000;

/** What a path returns: OK, or why it gave up (the caller's drop handler acts on it). */
type Verdict = typeof R.OK | Ipv6DropReason;

/**
 * The IPv6 network layer of one {@link Stack}.
 */
export class Ipv6 implements Ipv6Layer {
  readonly routes: Ipv6RouteTable = new Ipv6RouteTable();
  readonly icmp: Icmpv6;
  readonly ndp: Ndp;
  readonly mld: Mld;
  readonly reassembler: Reassembler<string>;
  readonly settings: Ipv6Settings;
  /** Local unicast addresses → their NIC and record. */
  readonly local: Ipv6AddressMap<{ nic: Nic; addr: Ipv6InterfaceAddress }> = new Ipv6AddressMap();
  /** Path MTUs learned from Packet Too Big (RFC 8201): destination → MTU and expiry. */
  readonly pmtu: Ipv6AddressMap<{ mtu: number; expires: number }> = new Ipv6AddressMap();
  /** Transport handlers for local delivery, by Next Header. */
  readonly transports: Map<
    number,
    (nic: Nic | null, pkt: PacketBuffer, ip: Ipv6Packet, l4Off: number, l4Len: number) => void
  > = new Map();
  /**
   * Firewall hooks, placed where netfilter places them (false = drop): the
   * same shape as IPv4's. PREROUTING after validation, INPUT before the
   * upper layer, FORWARD after the routing decision, OUTPUT for local
   * packets, POSTROUTING before fragmentation and the link.
   */
  readonly hooks: IpHooks = {
    prerouting: null,
    input: null,
    forward: null,
    output: null,
    postrouting: null,
  };
  /** Called when an address changes state (DAD done, dadfailed, deprecated, removed). */
  readonly addressListeners: Set<(nic: Nic, a: Ipv6InterfaceAddress) => void> = new Set();

  /** Tell every listener that `a` changed state. */
  addressChanged(nic: Nic, a: Ipv6InterfaceAddress): void {
    for (const l of this.addressListeners) l(nic, a);
  }
  readonly keys: Ipv6KeyInterner = new Ipv6KeyInterner();
  /** The packet being delivered when it was reassembled from fragments (RFC 6980 checks), else null. */
  reassembledNow: PacketBuffer | null = null;
  #state: Map<number, Ipv6NicState> = new Map();
  #ip = new Ipv6Packet();
  #ip2 = new Ipv6Packet();
  #ext = new Ipv6ExtHeaderIterator();
  #upper = new Ipv6UpperLayer();
  #opts = new Ipv6OptionsResult();
  #optIt = new Ipv6OptionIterator();
  #frag = new Ipv6FragmentHeader();
  #rh = new Ipv6RoutingHeader();
  #eth = new EthernetFrame();
  #nextFragId: number;
  #loopback: LoopbackQueue;
  /** The one drop handler: {@link IPV6_DROPS} applied. */
  readonly drops: Dropper<Ipv6DropReason>;

  constructor(readonly stack: StackContext, settings: Partial<Ipv6Settings> = {}) {
    this.#loopback = loopbackFor(stack, (b) => this.deliverLocal(null, b, b.networkOffset, false));
    this.settings = {
      defaultHopLimit: settings.defaultHopLimit ?? 64,
      reassemblyTimeoutMs: settings.reassemblyTimeoutMs ?? 60_000,
      reassemblyMemory: settings.reassemblyMemory ?? 4 * 1024 * 1024,
      dadTransmits: settings.dadTransmits ?? 1,
      retransTimerMs: settings.retransTimerMs ?? 1000,
    };
    this.#nextFragId = stack.random.uint32();
    this.icmp = new Icmpv6(this);
    this.drops = new Dropper(IPV6_DROPS, stack.stats.ipv6, this.icmp.sendErrorAbout);
    this.ndp = new Ndp(this);
    this.mld = new Mld(this);
    this.reassembler = reassemblerFor(stack, this.settings, this.icmp, {
      type: Icmpv6Type.TIME_EXCEEDED,
      code: Icmpv6Code.REASSEMBLY_TIME_EXCEEDED,
    }, IPV6_HEADER_LEN);
  }

  /** Start IPv6 on `nic`: link-local address (with DAD), all-nodes group, all-routers when forwarding. */
  attachNic(
    nic: Nic,
    opts: { forwarding: boolean; sendRedirects: boolean; linkLocal?: Uint8Array | null },
  ): Ipv6NicState {
    const st: Ipv6NicState = {
      nic,
      addresses: [],
      forwarding: opts.forwarding,
      sendRedirects: opts.sendRedirects,
      groups: new Ipv6AddressMap(),
      hopLimit: this.settings.defaultHopLimit,
      neighbors: new NeighborCache<string>({
        clock: this.stack.clock,
        random: this.stack.random,
        pool: this.stack.pool,
        config: this.stack.neighborConfig,
        protocol: {
          sendProbe: (key: string, unicastTo: Uint8Array | null) =>
            this.ndp.sendSolicitation(nic, key, unicastTo),
          sendQueued: (_key: string, mac: Uint8Array, pkt: PacketBuffer) => {
            pkt.data.set(mac, pkt.start);
            nic.send(pkt);
          },
          resolutionFailed: (_key: string, pkt: PacketBuffer) => {
            // RFC 4861 §7.2.2: Destination Unreachable code 3 (address unreachable).
            // The frame never got a destination MAC: clear the stale bytes so
            // the error rules do not read it as a link-layer multicast.
            pkt.data.fill(0, pkt.start, pkt.start + 6);
            this.icmp.sendErrorAbout(
              pkt,
              pkt.start + ETHERNET_HEADER_LEN,
              nic,
              Icmpv6Type.DEST_UNREACHABLE,
              Icmpv6Code.ADDRESS_UNREACHABLE,
              0,
            );
          },
        },
      }),
    };
    this.#state.set(nic.id, st);
    nic.ipv6 = { handleFrame: (n, p) => this.receive(n, p) };
    this.joinGroup(nic, ALL_NODES);
    if (opts.forwarding) this.joinGroup(nic, ALL_ROUTERS);
    const ll = opts.linkLocal === undefined ? linkLocalFromMac(nic.mac) : opts.linkLocal;
    if (ll !== null) this.addAddress(nic, ll, 64, { origin: "link-local" });
    return st;
  }

  /**
   * Stop handling IPv6 on `nic` (it is being removed): its addresses go,
   * its neighbor cache is flushed, and every route out of it is removed.
   */
  detachNic(nic: Nic): void {
    detachNicState(this.#state, nic, (n, a) => this.removeAddress(n, a), this.routes);
  }

  /** IPv6 state of a NIC (undefined when IPv6 is not on). */
  nicState(nic: Nic): Ipv6NicState | undefined {
    return this.#state.get(nic.id);
  }

  /** Every NIC with IPv6. */
  nicStates(): IterableIterator<Ipv6NicState> {
    return this.#state.values();
  }

  /**
   * Assign an address: tentative until DAD passes (RFC 4862 §5.4), with
   * its solicited-node group joined and an on-link route for its prefix.
   */
  addAddress(
    nic: Nic,
    address: Uint8Array,
    prefixLen: number,
    opts: {
      origin?: "static" | "link-local" | "slaac";
      validUntil?: number;
      preferredUntil?: number;
    } = {},
  ): Ipv6InterfaceAddress {
    const st = this.#state.get(nic.id)!;
    const existing = st.addresses.find((a) => a.address.every((b, i) => b === address[i]));
    if (existing !== undefined) return existing;
    const a: Ipv6InterfaceAddress = {
      address: address.slice(),
      prefixLen,
      state: "tentative",
      origin: opts.origin ?? "static",
      validUntil: opts.validUntil ?? Infinity,
      preferredUntil: opts.preferredUntil ?? Infinity,
      dadNonce: null,
      dadTransmitsLeft: 0,
      dadTimer: null,
    };
    st.addresses.push(a);
    this.local.set(a.address, { nic, addr: a });
    this.joinGroup(nic, ipv6SolicitedNode(a.address));
    if (prefixLen < 128) {
      const prefix = ipv6Masked(a.address, prefixLen);
      if (this.routes.find(prefix, prefixLen).every((r) => r.nicId !== nic.id)) {
        this.routes.add({
          prefix,
          prefixLen,
          type: "unicast",
          nicId: nic.id,
          gateway: null,
          metric: 256,
          source: "connected",
        });
      }
    }
    this.ndp.startDad(nic, a);
    return a;
  }

  /** Remove an address (and its on-link route when no other address needs it). */
  removeAddress(nic: Nic, address: Uint8Array): void {
    const st = this.#state.get(nic.id);
    if (st === undefined) return;
    const i = st.addresses.findIndex((a) => a.address.every((b, j) => b === address[j]));
    if (i === -1) return;
    const a = st.addresses[i]!;
    a.dadTimer?.cancel();
    st.addresses.splice(i, 1);
    this.local.delete(a.address);
    this.leaveGroup(nic, ipv6SolicitedNode(a.address));
    const prefix = ipv6Masked(a.address, a.prefixLen);
    if (
      !st.addresses.some((b) =>
        b.prefixLen === a.prefixLen &&
        ipv6CidrContains({ address: prefix, prefixLen: a.prefixLen }, b.address)
      )
    ) {
      this.routes.remove(
        prefix,
        a.prefixLen,
        (r) => r.source === "connected" && r.nicId === nic.id,
      );
    }
    this.addressChanged(nic, a);
  }

  /** Join a multicast group on `nic` (reference counted; MLD reports it). */
  joinGroup(nic: Nic, group: Uint8Array): void {
    const st = this.#state.get(nic.id)!;
    const n = st.groups.get(group) ?? 0;
    st.groups.set(group, n + 1);
    if (n === 0) {
      nic.groupMacs.push(ipv6MulticastMac(group));
      this.mld.joined(nic, group);
    }
  }

  /** Leave a multicast group joined with {@link joinGroup}. */
  leaveGroup(nic: Nic, group: Uint8Array): void {
    const st = this.#state.get(nic.id);
    if (st === undefined) return;
    const n = st.groups.get(group) ?? 0;
    if (n <= 1) {
      st.groups.delete(group);
      this.mld.left(nic, group);
    } else {
      st.groups.set(group, n - 1);
    }
  }

  /** Turn forwarding on or off on a NIC (joins/leaves ff02::2, RFC 4291 §2.8). */
  setForwarding(nic: Nic, on: boolean): void {
    const st = this.#state.get(nic.id);
    if (st === undefined || st.forwarding === on) return;
    st.forwarding = on;
    if (on) this.joinGroup(nic, ALL_ROUTERS);
    else this.leaveGroup(nic, ALL_ROUTERS);
  }

  /** A usable (preferred or deprecated) link-local address of `nic`, or null. */
  linkLocalOf(nic: Nic): Uint8Array | null {
    const st = this.#state.get(nic.id);
    for (const a of st?.addresses ?? []) {
      if (a.origin === "link-local" && (a.state === "preferred" || a.state === "deprecated")) {
        return a.address;
      }
    }
    return null;
  }

  /**
   * RFC 6724 source address selection for `dst` leaving by `outNic`:
   * candidates are the usable addresses of every NIC.
   */
  selectSource(dst: Uint8Array, dstOff: number, outNic: Nic | null): Uint8Array | null {
    const d = dstOff === 0 && dst.length === 16 ? dst : dst.slice(dstOff, dstOff + 16);
    const cands: CandidateAddress[] = [];
    for (const st of this.#state.values()) {
      // Link-local destinations take a source of their own link only.
      if (ipv6IsLinkLocalUnicast(d) || ipv6IsMulticast(d) && (d[1]! & 0x0f) <= 2) {
        if (outNic !== null && st.nic !== outNic) continue;
      }
      for (const a of st.addresses) {
        cands.push({
          address: a.address,
          prefixLen: a.prefixLen,
          nicId: st.nic.id,
          state: a.state,
        });
      }
    }
    return selectSourceAddress(d, cands, { outNicId: outNic?.id })?.address ?? null;
  }

  /** A fresh fragment identification (RFC 7739: unpredictable start, then sequential). */
  nextFragmentId(): number {
    this.#nextFragId = (this.#nextFragId + 1) >>> 0;
    return this.#nextFragId;
  }

  // ------------------------------------------------------------ receive

  /** Receive path for one IPv6 frame from `nic`. */
  receive(nic: Nic, pkt: PacketBuffer): void {
    this.stack.stats.ipv6.packetsReceived++;
    this.drops.verdict(this.#receive(nic, pkt, pkt.networkOffset), pkt, pkt.networkOffset, nic);
  }

  #receive(nic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const ip = this.#ip.reset(pkt, ipOff);
    if (!ip.check()) return R.MALFORMED;
    pkt.end = ip.endOffset();
    const d = pkt.data;
    const srcOff = ip.srcOffset(), dstOff = ip.dstOffset();
    // RFC 4291 §2.7: a multicast source is invalid; loopback never comes
    // from a wire (RFC 4291 §2.5.3).
    if (
      ipv6IsMulticast(d, srcOff) || ipv6IsLoopback(d, srcOff) || ipv6IsLoopback(d, dstOff) ||
      ipv6IsUnspecified(d, dstOff)
    ) return R.INVALID_ADDRESS;
    const st = this.#state.get(nic.id);
    // A NIC being detached: its frames are not for this layer any more.
    if (st === undefined) return R.NOT_FOR_US;
    this.#setL4Meta(pkt, ip);
    if (this.hooks.prerouting !== null && !this.hooks.prerouting(pkt, ipOff, nic, null)) {
      return R.FIREWALL;
    }
    if (ipv6IsMulticast(d, dstOff)) {
      if (!st.groups.has(d, dstOff)) return R.MULTICAST_NOT_JOINED;
      return this.#deliverLocal(nic, pkt, ipOff, false);
    }
    const local = this.local.get(d, dstOff);
    // Link-local addresses belong to their link (RFC 4291 §2.5.6).
    if (local !== undefined && (local.nic === nic || !ipv6IsLinkLocalUnicast(d, dstOff))) {
      return this.#deliverLocal(nic, pkt, ipOff, false);
    }
    if (!st.forwarding) return R.NOT_FOR_US;
    return this.#forward(nic, pkt, ipOff);
  }

  /**
   * Local delivery: walk the extension headers (RFC 8200 §4), reassemble,
   * and hand the upper layer to its transport.
   */
  deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): void {
    this.drops.verdict(this.#deliverLocal(nic, pkt, ipOff, reassembled), pkt, ipOff, nic);
  }

  #deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): Verdict {
    const s = this.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const d = pkt.data;
    const dstMulticast = ipv6IsMulticast(d, ip.dstOffset());
    const local = dstMulticast ? undefined : this.local.get(d, ip.dstOffset());
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
            return this.drops.fail(R.OPTIONS_PARAMETER_PROBLEM, this.#opts.pointer);
          }
          if (v !== Ipv6OptionsVerdict.ACCEPT) return R.OPTIONS_DISCARD;
          if (hbh && this.#opts.routerAlert >= 0) {
            // RFC 2711 §2.1: at most one Router Alert per Hop-by-Hop header
            // (gVisor and Linux drop the packet silently otherwise).
            if (sawRouterAlert || this.#routerAlerts(d, it.offset, it.length, ipOff) > 1) {
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
          return this.drops.fail(R.ROUTING_HEADER, rh.routingTypeOffset() - ipOff);
        }
        case Ipv6NextHeader.FRAGMENT: {
          if (reassembled) return R.MALFORMED;
          return this.#receiveFragment(nic, pkt, ipOff, it.offset, it.typeOffset);
        }
        case Ipv6NextHeader.NO_NEXT_HEADER:
          return R.OK;
        default:
          break;
      }
      // ESP/AH and other headers tapir does not process.
      if (!it.isUpperLayer) return this.drops.fail(R.UNKNOWN_PROTOCOL, it.typeOffset - ipOff);
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
      if (this.hooks.input !== null && !this.hooks.input(pkt, ipOff, nic, null)) {
        return R.FIREWALL;
      }
      const handler = this.transports.get(it.type);
      // RFC 8200 §4: unrecognized Next Header → Parameter Problem code 1.
      if (handler === undefined) return this.drops.fail(R.UNKNOWN_PROTOCOL, it.typeOffset - ipOff);
      s.packetsDelivered++;
      pkt.transportOffset = it.offset;
      this.reassembledNow = reassembled ? pkt : null;
      try {
        handler(nic, pkt, ip, it.offset, it.length);
      } finally {
        this.reassembledNow = null;
      }
      return R.OK;
    }
    if (it.error === Ipv6ExtError.HOP_BY_HOP_NOT_FIRST) {
      return this.drops.fail(R.UNKNOWN_PROTOCOL, it.errorPointer);
    }
    // A chain that ends without an upper layer and without error: nothing to deliver.
    return it.error !== Ipv6ExtError.NONE ? R.MALFORMED : R.OK;
  }

  /** Router Alert options in the Hop-by-Hop header at `off` (`len` bytes). */
  #routerAlerts(d: Uint8Array, off: number, len: number, ipOff: number): number {
    const o = this.#optIt.reset(d, off, len, ipOff);
    let n = 0;
    while (o.next()) if (o.type === Ipv6OptionType.ROUTER_ALERT) n++;
    return n;
  }

  #receiveFragment(
    nic: Nic | null,
    pkt: PacketBuffer,
    ipOff: number,
    fragOff: number,
    typeOff: number,
  ): Verdict {
    const s = this.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const f = this.#frag.reset(pkt, fragOff);
    if (!f.check()) return R.MALFORMED;
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
    if (f.moreFragments() && (dataLen & 7) !== 0) return this.drops.fail(R.FRAGMENT_BAD_LENGTH, 4);
    // ... and the reassembled payload must fit in 65535 bytes: code 0 at the Fragment Offset.
    const unfragmentable = fragOff - ipOff - IPV6_HEADER_LEN;
    if (unfragmentable + IPV6_FRAGMENT_HEADER_LEN + f.fragmentOffset() + dataLen > 65_535) {
      return this.drops.fail(R.FRAGMENT_TOO_LONG, fragOff + 2 - ipOff);
    }
    // RFC 7112: the first fragment must hold the whole header chain.
    if (
      f.fragmentOffset() === 0 && !this.#chainComplete(pkt, dataOff, ip.endOffset(), f.nextHeader())
    ) return R.FRAGMENT_INCOMPLETE_CHAIN;
    const key = `${formatIpv6(pkt.data, ip.srcOffset())}|${
      formatIpv6(pkt.data, ip.dstOffset())
    }|${f.identification()}`;
    const fragNext = f.nextHeader();
    const r = this.reassembler.add(
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
      this.stack.pool.put(buf);
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

  // ------------------------------------------------------------ forward

  /** Forward a packet that arrived on `inNic` and is not for us (RFC 8200, Linux ip6_forward). */
  forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): void {
    this.drops.verdict(this.#forward(inNic, pkt, ipOff), pkt, ipOff, inNic);
  }

  #forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const s = this.stack.stats.ipv6;
    const ip = this.#ip.reset(pkt, ipOff);
    const d = pkt.data;
    // Hop-by-Hop is the one header a router processes (RFC 8200 §4).
    if (ip.nextHeader() === Ipv6NextHeader.HOP_BY_HOP) {
      const it = this.#ext.reset(ip);
      if (!it.next()) return R.MALFORMED;
      const v = processIpv6Options(d, it.offset, it.length, ipOff, true, false, this.#opts);
      if (v === Ipv6OptionsVerdict.PARAMETER_PROBLEM) {
        return this.drops.fail(R.OPTIONS_PARAMETER_PROBLEM, this.#opts.pointer);
      }
      if (v !== Ipv6OptionsVerdict.ACCEPT) return R.OPTIONS_DISCARD;
      // RFC 2711 §2.1: at most one Router Alert.
      if (
        this.#opts.routerAlert >= 0 && this.#routerAlerts(d, it.offset, it.length, ipOff) > 1
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
    const route = this.routes.lookup(d, ip.dstOffset(), this.#flowHash(pkt, ip));
    if (route === null) return R.NO_ROUTE;
    if (route.type !== "unicast") return routeTypeReason(route.type);
    const outNic = this.stack.nics.get(route.nicId);
    if (outNic === undefined || !outNic.isUp()) return R.LINK_DOWN;
    const mtu = outNic.mtu();
    const len = ip.totalLength();
    const segLen = pkt.isGso() ? gsoSegmentLen(pkt, ipOff, IPV6_HEADER_LEN) : len;
    // RFC 8200 §5: routers never fragment; Packet Too Big with the link MTU.
    if (segLen > mtu) return this.drops.fail(R.TOO_BIG, mtu);
    const gw = route.gateway;
    const inState = this.#state.get(inNic.id)!;
    if (outNic === inNic && inState.sendRedirects && this.#onLink(inState, d, ip.srcOffset())) {
      // RFC 4861 §8.2: tell the sender about the better first hop.
      this.ndp.sendRedirect(
        inNic,
        pkt,
        ipOff,
        gw ?? d.subarray(ip.dstOffset(), ip.dstOffset() + 16),
      );
    }
    if (this.hooks.forward !== null && !this.hooks.forward(pkt, ipOff, inNic, outNic)) {
      return R.FIREWALL;
    }
    ip.decrementHopLimit();
    s.forwarding.packets++;
    if (this.hooks.postrouting !== null && !this.hooks.postrouting(pkt, ipOff, null, outNic)) {
      return R.FIREWALL;
    }
    this.#sendToNextHop(outNic, pkt, ipOff, gw ?? d, gw === null ? ip.dstOffset() : 0);
    return R.OK;
  }

  /**
   * Walk the header chain once and record on the packet the upper-layer
   * protocol and offset and the fragment bits, as netfilter walks it
   * ({@link Ipv6UpperLayer}: the firewall then takes them from the packet).
   * A later fragment has no upper-layer header: its protocol is the
   * Fragment header's Next Header, its offset -1. A chain that runs past the
   * packet leaves -1 in both.
   */
  #setL4Meta(pkt: PacketBuffer, ip: Ipv6Packet): void {
    const nh = ip.nextHeader();
    pkt.fragment = FRAG_NONE;
    // The common cases without walking a chain.
    if (nh === 6 || nh === 17 || nh === Ipv6NextHeader.ICMPV6) {
      pkt.l4Protocol = nh;
      pkt.l4Offset = ip.off + IPV6_HEADER_LEN;
      return;
    }
    const u = this.#upper.find(pkt.data, ip.off, ip.endOffset());
    pkt.fragment = u.fragment;
    pkt.l4Protocol = u.truncated ? -1 : u.proto;
    pkt.l4Offset = u.truncated || (u.fragment & FRAG_LATER) !== 0 ? -1 : u.offset;
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

  // ------------------------------------------------------------ output

  /**
   * Send a locally built IPv6 packet (header complete; the source may be
   * unspecified, then it is selected). Loops back local destinations,
   * fragments packets larger than the path MTU (RFC 8200 §4.5), resolves
   * the next hop. `nic` pins the egress (needed for link-local and
   * multicast destinations).
   */
  output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions = {}): boolean {
    return this.drops.verdict(this.#output(pkt, ipOff, opts), pkt, ipOff, null);
  }

  #output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions): Verdict {
    const s = this.stack.stats.ipv6;
    const ip = this.#ip2.reset(pkt, ipOff);
    const d = pkt.data;
    const dstOff = ip.dstOffset();
    pkt.networkOffset = ipOff;
    pkt.linkDst = opts.linkDst ?? null;
    const localDst = this.local.get(d, dstOff);
    if (localDst !== undefined && !ipv6IsMulticast(d, dstOff)) {
      if (ipv6IsUnspecified(d, ip.srcOffset())) {
        ip.setSrc(d, dstOff);
        this.#fixChecksum(pkt, ipOff);
      }
      this.#setL4Meta(pkt, ip);
      if (this.hooks.output !== null && !this.hooks.output(pkt, ipOff, null, null)) {
        return R.FIREWALL;
      }
      s.packetsSent++;
      this.#loopback.push(pkt, ipOff);
      return R.OK;
    }
    let outNic = opts.nic;
    let nextHop: Uint8Array = d;
    let nextHopOff = dstOff;
    if (ipv6IsMulticast(d, dstOff) || (ipv6IsLinkLocalUnicast(d, dstOff) && outNic !== undefined)) {
      if (outNic === undefined) return R.OUTPUT_NO_ROUTE;
    } else {
      const route = this.routes.lookup(d, dstOff, 0);
      if (route === null || route.type !== "unicast") return R.OUTPUT_NO_ROUTE;
      outNic ??= this.stack.nics.get(route.nicId);
      if (route.gateway !== null) {
        nextHop = route.gateway;
        nextHopOff = 0;
      }
    }
    if (outNic === undefined) return R.OUTPUT_NO_ROUTE;
    if (ipv6IsUnspecified(d, ip.srcOffset()) && !opts.keepSource) {
      const src = this.selectSource(d, dstOff, outNic);
      if (src === null) return R.OUTPUT_NO_SOURCE;
      ip.setSrc(src);
      this.#fixChecksum(pkt, ipOff);
    }
    this.#setL4Meta(pkt, ip);
    if (this.hooks.output !== null && !this.hooks.output(pkt, ipOff, null, outNic)) {
      return R.FIREWALL;
    }
    if (this.hooks.postrouting !== null && !this.hooks.postrouting(pkt, ipOff, null, outNic)) {
      return R.FIREWALL;
    }
    s.packetsSent++;
    const mtu = this.pathMtu(outNic, d, dstOff);
    if (ip.totalLength() > mtu && !opts.noFragment) {
      this.#fragmentAndSend(outNic, pkt, ipOff, nextHop, nextHopOff, mtu);
      return R.OK;
    }
    this.#sendToNextHop(outNic, pkt, ipOff, nextHop, nextHopOff);
    return R.OK;
  }

  /** Fill the upper-layer checksum of a packet whose source was just chosen. */
  #fixChecksum(pkt: PacketBuffer, ipOff: number): void {
    const fix = this.checksumFixers.get(pkt.data[ipOff + 6]!);
    fix?.(pkt, ipOff);
  }

  /**
   * Per Next Header, a function that fills the upper-layer checksum once the
   * source address is known (ICMPv6, UDP, TCP built with an unspecified source).
   */
  readonly checksumFixers: Map<number, (pkt: PacketBuffer, ipOff: number) => void> = new Map();

  /** The MTU to `dst`: the link MTU, lowered by a Packet Too Big we learned (RFC 8201). */
  pathMtu(outNic: Nic, a: Uint8Array, off: number): number {
    const link = outNic.mtu();
    const p = this.pmtu.get(a, off);
    if (p === undefined) return link;
    if (p.expires <= this.stack.clock.now()) {
      this.pmtu.delete(a, off);
      return link;
    }
    return Math.min(link, p.mtu);
  }

  /** A Packet Too Big arrived for `dst`: remember its MTU (never below 1280, RFC 8201 §4). */
  learnPathMtu(dst: Uint8Array, off: number, mtu: number): void {
    this.pmtu.set(dst, {
      mtu: Math.max(IPV6_MIN_MTU, mtu),
      expires: this.stack.clock.now() + PMTU_AGE_MS,
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
    const s = this.stack.stats.ipv6;
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
    const id = this.nextFragmentId();
    const pool = this.stack.pool;
    for (let off = 0; off < payloadLen; off += perFrag) {
      const n = Math.min(perFrag, payloadLen - off);
      const b = pool.get();
      if (b === null) {
        this.stack.stats.bufferPoolExhausted++;
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
      this.#sendToNextHop(outNic, b, fo, nh, nhOff);
      pool.put(b);
    }
    s.packetsFragmented++;
  }

  /** POSTROUTING-equivalent last step: segmentation for plain links, Ethernet header, NDP. */
  #sendToNextHop(
    outNic: Nic,
    pkt: PacketBuffer,
    ipOff: number,
    nh: Uint8Array,
    nhOff: number,
  ): void {
    if (!outNic.link.capabilities.offloads) {
      if (pkt.isGso()) {
        const ok = segmentGso(
          this.stack.pool,
          pkt,
          ipOff,
          (seg, segIpOff) => this.#resolveAndSend(outNic, seg, segIpOff, nh, nhOff),
        );
        if (ok) this.stack.stats.ipv6.gsoSegmented++;
        else this.stack.stats.ipv6.gsoDropped++;
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
    const st = this.#state.get(outNic.id)!;
    let group: Uint8Array | null = null;
    if (ipv6IsMulticast(nh, nhOff)) {
      // RFC 2464 §7: 33:33 and the group's last 32 bits.
      group = this.#groupMac;
      group.set(nh.subarray(nhOff + 12, nhOff + 16), 2);
    }
    const key = group === null && pkt.linkDst === null ? this.keys.key(nh, nhOff) : "";
    sendOnLink(this.#eth, outNic, pkt, ipOff, EtherType.IPV6, group, st.neighbors, key);
  }

  /** The scratch destination MAC of a multicast frame. */
  #groupMac = new Uint8Array([0x33, 0x33, 0, 0, 0, 0]);

  /** Build an IPv6 header for a locally generated packet at the standard offset; returns the offset. */
  static buildHeader(buf: PacketBuffer, f: Parameters<typeof buildIpv6Packet>[1]): number {
    return buildIpv6Packet(buf, f);
  }

  /** Stop timers and release held buffers. */
  close(): void {
    this.reassembler.clear();
    for (const st of this.#state.values()) {
      for (const a of st.addresses) a.dadTimer?.cancel();
      st.neighbors.flush();
    }
    this.mld.close();
  }

  /** Addresses of a NIC as text with their state, for logs and `show addresses`. */
  describeAddresses(nic: Nic): string[] {
    return (this.#state.get(nic.id)?.addresses ?? []).map((a) =>
      `${formatIpv6(a.address)}/${a.prefixLen}${
        a.state === "preferred" ? "" : ` ${a.state === "duplicate" ? "dadfailed" : a.state}`
      }`
    );
  }
}

export { ALL_NODES, ALL_ROUTERS, UNSPECIFIED };
