/**
 * The IPv4 layer: the receive path (validation, martians, options, local
 * delivery or forwarding), forwarding (TTL, routing, MTU, redirects, in-place
 * rewrite), and output of locally generated packets (routing, source
 * selection, fragmentation, neighbor resolution).
 *
 * The checks follow gVisor's network/ipv4/ipv4.go and Linux's ip_rcv /
 * ip_forward; RFC sections are cited where they decide.
 *
 * @module
 */
import type { LoopbackQueue } from "../loopback.ts";
import type { Nic } from "../nic.ts";
import type { StackContext } from "../ip/context.ts";
import type { AddressRemovedListener, IpHook, IpHooks } from "../ip/hooks.ts";
import { flowHashV4, Ipv4RouteTable, isRouteGroup } from "../route_table.ts";
import { NeighborCache } from "../neighbor_cache.ts";
import type { Reassembler } from "../reassembly.ts";
import { fragmentIpv4 } from "./fragmentation.ts";
import { ETHERNET_HEADER_LEN, EthernetFrame, EtherType } from "../wire/ethernet.ts";
import { IpProtocol, IPV4_MIN_HEADER_LEN, Ipv4Packet } from "../wire/ipv4.ts";
import {
  findIpv4Option,
  Ipv4OptionType,
  processForwardingOptions,
  validateIpv4Options,
} from "../wire/ipv4_options.ts";
import { Icmpv4Code, Icmpv4Type } from "../wire/icmpv4.ts";
import {
  formatIpv4,
  ipv4Broadcast,
  ipv4CidrContains,
  ipv4IsLimitedBroadcast,
  ipv4IsLoopback,
  ipv4IsMulticast,
  ipv4IsThisNetwork,
  ipv4Mask,
} from "../wire/ip_address.ts";
import { BROADCAST_MAC, ipv4MulticastMac } from "../wire/mac_address.ts";
import {
  FRAG_FIRST,
  FRAG_LATER,
  FRAG_MORE,
  FRAG_NONE,
  HEADROOM,
  type PacketBuffer,
} from "../wire/packet_buffer.ts";
import { Icmpv4 } from "./icmp.ts";
import { Arp } from "./arp.ts";
import { completePartialChecksum, gsoSegmentLen, segmentGso } from "../gso.ts";
import { Dropper, DropReason as R, routeTypeReason } from "../ip/drop.ts";
import {
  detachNicState,
  type IpOutputOptions,
  loopbackFor,
  NeighborGc,
  reassemblerFor,
  sendOnLink,
} from "../ip/layer.ts";
import { IPV4_DROPS, type Ipv4DropReason } from "./drops.ts";
import type { Ipv4Layer, Ipv4NicState, Ipv4Settings } from "./_layer.ts";
export type { Ipv4InterfaceAddress, Ipv4Layer, Ipv4NicState, Ipv4Settings } from "./_layer.ts";

/** A firewall hook (the family-neutral {@link IpHook}). */
export type Ipv4Hook = IpHook;

/** Hook points, as netfilter names them (the family-neutral {@link IpHooks}). */
export type Ipv4Hooks = IpHooks;

/** A transport protocol's receive function for local delivery. */
export type Ipv4TransportHandler = (nic: Nic | null, pkt: PacketBuffer, ip: Ipv4Packet) => void;

/**
 * Record on the packet what its IPv4 header says of the upper layer
 * (protocol, offset, fragment bits), once per packet, for the hooks and the
 * transports (DESIGN "The datapath": nothing re-parses it).
 */
function setL4Meta(pkt: PacketBuffer, ip: Ipv4Packet): void {
  pkt.l4Protocol = ip.protocol();
  pkt.l4Offset = ip.off + ip.headerLen();
  const fo = ip.fragmentOffset();
  const mf = ip.moreFragments();
  pkt.fragment = (fo !== 0 ? FRAG_LATER : mf ? FRAG_FIRST : FRAG_NONE) | (mf ? FRAG_MORE : 0);
}

/** What a path returns: OK, or why it gave up (the caller's drop handler acts on it). */
type Verdict = typeof R.OK | Ipv4DropReason;

/**
 * The reassembly key: (src, dst, protocol, id) per RFC 791, as six UTF-16
 * code units. A short flat string hashes at once; text built by template
 * (a rope V8 flattens on each Map lookup) cost most of a fragment's time
 * under a fragment flood.
 */
function fragKey(ip: Ipv4Packet): string {
  const src = ip.src(), dst = ip.dst();
  return String.fromCharCode(
    src >>> 16,
    src & 0xffff,
    dst >>> 16,
    dst & 0xffff,
    ip.protocol(),
    ip.id(),
  );
}

/**
 * The IPv4 network layer of one {@link Stack}.
 */
export class Ipv4 implements Ipv4Layer {
  readonly routes: Ipv4RouteTable = new Ipv4RouteTable();
  readonly hooks: Ipv4Hooks = {
    prerouting: null,
    input: null,
    forward: null,
    output: null,
    postrouting: null,
  };
  readonly icmp: Icmpv4;
  readonly arp: Arp;
  readonly reassembler: Reassembler<string>;
  /** Transport handlers by protocol number. */
  readonly transports: Map<number, Ipv4TransportHandler> = new Map();
  /** Local addresses → the NIC they are on. */
  readonly local: Map<number, Nic> = new Map();
  /** The same addresses as int32, for the per-packet test (no boxed numbers, see isLocal). */
  #localI32 = new Set<number>();
  readonly settings: Ipv4Settings;
  #state: Map<number, Ipv4NicState> = new Map();
  #ip = new Ipv4Packet();
  #ip2 = new Ipv4Packet();
  #eth = new EthernetFrame();
  #nextId: number;
  #loopback: LoopbackQueue;
  /** The periodic sweep of every NIC's neighbor cache. */
  readonly #gc: NeighborGc;

  /** Called when an address leaves a NIC (the firewall's MASQUERADE forgets its connections). */
  readonly addressRemovedListeners: Set<AddressRemovedListener> = new Set();
  /** The one drop handler: {@link IPV4_DROPS} applied. */
  readonly drops: Dropper<Ipv4DropReason>;

  constructor(readonly stack: StackContext, settings: Partial<Ipv4Settings> = {}) {
    this.#loopback = loopbackFor(stack, (b) => this.deliverLocal(null, b, b.networkOffset));
    this.#gc = new NeighborGc(stack, () => this.#state.values());
    this.settings = {
      defaultTtl: settings.defaultTtl ?? 64,
      reassemblyTimeoutMs: settings.reassemblyTimeoutMs ?? 30_000,
      reassemblyMemory: settings.reassemblyMemory ?? 4 * 1024 * 1024,
    };
    this.#nextId = stack.random.uint32() & 0xffff;
    this.icmp = new Icmpv4(this);
    this.drops = new Dropper(IPV4_DROPS, stack.stats.ipv4, this.icmp.sendErrorAbout);
    this.arp = new Arp(this);
    this.reassembler = reassemblerFor(stack, this.settings, this.icmp, {
      type: Icmpv4Type.TIME_EXCEEDED,
      code: Icmpv4Code.REASSEMBLY_TIME_EXCEEDED,
    });
    this.transports.set(IpProtocol.ICMP, (nic, pkt, ip) => this.icmp.receive(nic, pkt, ip));
  }

  /** Stop timers and release held buffers (the stack is shutting down). */
  close(): void {
    this.#gc.stop();
    this.reassembler.clear();
    for (const st of this.#state.values()) st.neighbors.flush();
  }

  /** Start handling IPv4 on `nic`. */
  attachNic(nic: Nic, opts: { forwarding: boolean; sendRedirects: boolean }): Ipv4NicState {
    const cfg = this.stack.neighborConfig;
    const st: Ipv4NicState = {
      addresses: [],
      forwarding: opts.forwarding,
      sendRedirects: opts.sendRedirects,
      groups: new Map(),
      neighbors: new NeighborCache<number>({
        clock: this.stack.clock,
        random: this.stack.random,
        config: cfg,
        protocol: {
          sendProbe: (key: number, unicastTo: Uint8Array | null) =>
            this.arp.sendRequest(nic, key, unicastTo),
          sendQueued: (_key: number, mac: Uint8Array, pkt: PacketBuffer) =>
            this.#sendResolved(nic, pkt, mac),
          resolutionFailed: (_key: number, pkt: PacketBuffer) => this.#resolutionFailed(nic, pkt),
        },
      }),
    };
    this.#state.set(nic.id, st);
    // RFC 1112 §7.2: every host belongs to the all-hosts group 224.0.0.1
    // on every interface, so the NIC accepts its MAC.
    nic.groupMacs.push(ipv4MulticastMac(0xe0000001));
    this.#gc.start();
    nic.ipv4 = { handleFrame: (n, p) => this.receive(n, p) };
    nic.arp = { handleFrame: (n, p) => this.arp.receive(n, p) };
    return st;
  }

  /**
   * Stop handling IPv4 on `nic` (it is being removed): its addresses go
   * (with their connected routes), its neighbor cache is flushed, and every
   * route out of it is removed, as Linux does when a device goes away.
   */
  detachNic(nic: Nic): void {
    detachNicState(this.#state, nic, (n, a) => this.removeAddress(n, a), this.routes);
  }

  /**
   * Receive the multicast group `group` on `nic` (a socket joined it;
   * reference counted). The NIC accepts the group's MAC. No IGMP reports
   * are sent yet: on a switched LAN without IGMP snooping that is enough.
   */
  joinGroup(nic: Nic, group: number): void {
    const st = this.#state.get(nic.id);
    if (st === undefined || group === 0xe0000001) return;
    const n = st.groups.get(group) ?? 0;
    st.groups.set(group, n + 1);
    if (n === 0) nic.groupMacs.push(ipv4MulticastMac(group));
  }

  /** Undo one {@link joinGroup}. */
  leaveGroup(nic: Nic, group: number): void {
    const st = this.#state.get(nic.id);
    const n = st?.groups.get(group);
    if (st === undefined || n === undefined) return;
    if (n > 1) {
      st.groups.set(group, n - 1);
      return;
    }
    st.groups.delete(group);
    const mac = ipv4MulticastMac(group);
    const i = nic.groupMacs.findIndex((m) => m.every((b, j) => b === mac[j]));
    if (i >= 0) nic.groupMacs.splice(i, 1);
  }

  /** IPv4 state of a NIC (undefined when IPv4 is not attached). */
  nicState(nic: Nic): Ipv4NicState | undefined {
    return this.#state.get(nic.id);
  }

  /**
   * Assign `address/prefixLen` to `nic`: the local address, the connected
   * route, and a gratuitous ARP.
   */
  addAddress(nic: Nic, address: number, prefixLen: number): void {
    const st = this.#state.get(nic.id)!;
    const bcast = prefixLen >= 31 ? null : ipv4Broadcast({ address, prefixLen });
    st.addresses.push({ address, prefixLen, broadcast: bcast });
    this.local.set(address, nic);
    this.#localI32.add(address | 0);
    this.routes.add({
      prefix: (address & ipv4Mask(prefixLen)) >>> 0,
      prefixLen,
      type: "unicast",
      nicId: nic.id,
      gateway: null,
      metric: 0,
      source: "connected",
    });
    this.arp.sendGratuitous(nic, address);
  }

  /** Remove an address and its connected route. */
  removeAddress(nic: Nic, address: number): void {
    const st = this.#state.get(nic.id);
    if (st === undefined) return;
    const i = st.addresses.findIndex((a) => a.address === address);
    if (i === -1) return;
    const a = st.addresses[i]!;
    st.addresses.splice(i, 1);
    this.local.delete(address);
    this.#localI32.delete(address | 0);
    // MASQUERADE follows the egress address: its connections go with it.
    for (const l of this.addressRemovedListeners) l(nic, address);
    const prefix = (address & ipv4Mask(a.prefixLen)) >>> 0;
    if (!st.addresses.some((b) => ((b.address & ipv4Mask(b.prefixLen)) >>> 0) === prefix)) {
      this.routes.remove(
        prefix,
        a.prefixLen,
        (r) => r.source === "connected" && r.nicId === nic.id,
      );
    }
  }

  /** True when `a` is one of our addresses (allocation-free on the per-packet path). */
  isLocal(a: number): boolean {
    return this.#localI32.has(a | 0);
  }

  /** The address `nic` should use as the source towards `dst` (same subnet first). */
  sourceFor(nic: Nic, dst: number): number | null {
    const st = this.#state.get(nic.id);
    if (st === undefined || st.addresses.length === 0) return null;
    for (const a of st.addresses) if (ipv4CidrContains(a, dst)) return a.address;
    return st.addresses[0]!.address;
  }

  /** A fresh IPv4 identification value. */
  nextId(): number {
    this.#nextId = (this.#nextId + 1) & 0xffff;
    return this.#nextId;
  }

  // ------------------------------------------------------------ receive

  /** Receive path for one IPv4 frame from `nic`. */
  receive(nic: Nic, pkt: PacketBuffer): void {
    this.stack.stats.ipv4.packetsReceived++;
    this.drops.verdict(this.#receive(nic, pkt, pkt.networkOffset), pkt, pkt.networkOffset, nic);
  }

  #receive(nic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const ip = this.#ip.reset(pkt, ipOff);
    // check() leaves the version to the caller (RFC 1812 §5.2.2: version 4).
    if (!ip.check() || ip.version() !== 4) return R.MALFORMED;
    // Drop Ethernet padding: the IP total length says where the packet ends.
    pkt.end = ipOff + ip.totalLength();
    if (!ip.verifyChecksum()) return R.BAD_CHECKSUM;
    const src = ip.src();
    const dst = ip.dst();
    // Martians (RFC 1812 §5.3.7, Linux ip_route_input_slow): a loopback,
    // multicast, limited-broadcast or class E source, or a loopback
    // destination, never arrives on a real interface.
    if (
      ipv4IsLoopback(src) || ipv4IsMulticast(src) || ipv4IsLimitedBroadcast(src) ||
      (src >>> 28) === 0xf || ipv4IsLoopback(dst)
    ) return R.INVALID_ADDRESS;
    const st = this.#state.get(nic.id);
    // A NIC being detached: its frames are not for this layer any more.
    if (st === undefined) return R.NOT_FOR_US;
    setL4Meta(pkt, ip);
    if (this.hooks.prerouting !== null && !this.hooks.prerouting(pkt, ipOff, nic, null)) {
      return R.FIREWALL;
    }
    // A hook may have rewritten the destination (DNAT).
    const dst2 = ip.dst();
    if (ip.headerLen() > IPV4_MIN_HEADER_LEN) {
      const v = validateIpv4Options(ip);
      if (!v.ok) return this.drops.fail(R.BAD_OPTIONS, v.pointer);
      if (
        findIpv4Option(ip, Ipv4OptionType.LOOSE_SOURCE_ROUTE) >= 0 ||
        findIpv4Option(ip, Ipv4OptionType.STRICT_SOURCE_ROUTE) >= 0
      ) return R.SOURCE_ROUTE;
    }
    if (
      this.isLocal(dst2) || this.#isBroadcastFor(st, dst2) || dst2 === 0xe0000001 ||
      (st.groups.size > 0 && st.groups.has(dst2))
    ) {
      this.deliverLocal(nic, pkt, ipOff);
      return R.OK;
    }
    if (ipv4IsMulticast(dst2)) return R.MULTICAST_NOT_JOINED;
    if (!st.forwarding) return R.NOT_FOR_US;
    // RFC 1812 §5.3.4: a unicast packet received as a link-layer broadcast
    // or multicast is not forwarded (Linux ip_forward: pkt_type != HOST).
    if (
      ipOff >= pkt.start + ETHERNET_HEADER_LEN && (pkt.data[ipOff - ETHERNET_HEADER_LEN]! & 1) !== 0
    ) return R.NOT_FOR_US;
    // RFC 1812 §5.3.7: a packet from network 0 may reach us (DHCP) but is
    // not forwarded.
    if (ipv4IsThisNetwork(src)) return R.INVALID_ADDRESS;
    return this.#forward(nic, pkt, ipOff);
  }

  #isBroadcastFor(st: Ipv4NicState, dst: number): boolean {
    if (ipv4IsLimitedBroadcast(dst)) return true;
    // RFC 1812 §5.3.5.2: a directed broadcast to a connected subnet is
    // received; forwarding it is off by default (as on Linux).
    for (const a of st.addresses) if (a.broadcast === dst) return true;
    return false;
  }

  /** Local delivery: reassembly, INPUT hook, transport dispatch. */
  deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number): void {
    let ip = this.#ip.reset(pkt, ipOff);
    let buf = pkt;
    let reassembled: PacketBuffer | null = null;
    setL4Meta(pkt, ip);
    if (ip.moreFragments() || ip.fragmentOffset() !== 0) {
      const hl = ip.headerLen();
      if (this.reassembler.dropIfFull(ip.totalLength() - hl)) return;
      const r = this.reassembler.add(
        fragKey(ip),
        ip.fragmentOffset(),
        ip.moreFragments(),
        pkt,
        ipOff + hl,
        ip.totalLength() - hl,
        ipOff,
        hl,
      );
      if (r.kind !== "complete") return;
      reassembled = r.buffer;
      buf = r.buffer;
      ip = this.#ip.reset(buf, r.headerOffset);
      // Fix the reassembled header: whole length, no fragment bits.
      ip.setTotalLength(r.headerLen + r.payloadLen);
      ip.setFlagsFragment(0);
      ip.fillChecksum();
      buf.networkOffset = r.headerOffset;
      buf.end = r.headerOffset + r.headerLen + r.payloadLen;
      setL4Meta(buf, ip);
    }
    try {
      this.drops.verdict(this.#deliver(nic, buf, ip), buf, ip.off, nic);
    } finally {
      if (reassembled !== null) this.stack.pool.put(reassembled);
    }
  }

  /** INPUT and the transport of a whole (reassembled) datagram. */
  #deliver(nic: Nic | null, buf: PacketBuffer, ip: Ipv4Packet): Verdict {
    if (this.hooks.input !== null && !this.hooks.input(buf, ip.off, nic, null)) return R.FIREWALL;
    buf.transportOffset = ip.off + ip.headerLen();
    const handler = this.transports.get(ip.protocol());
    // Delivered only to a transport that takes it (IPv6 and Linux count alike).
    if (handler === undefined) return R.UNKNOWN_PROTOCOL;
    this.stack.stats.ipv4.packetsDelivered++;
    handler(nic, buf, ip);
    return R.OK;
  }

  // ------------------------------------------------------------ forward

  /** Forward a validated packet that arrived on `inNic` and is not for us. */
  forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): void {
    this.drops.verdict(this.#forward(inNic, pkt, ipOff), pkt, ipOff, inNic);
  }

  #forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): Verdict {
    const s = this.stack.stats.ipv4;
    const ip = this.#ip.reset(pkt, ipOff);
    const dst = ip.dst();
    // RFC 1812 §5.3.1: a packet whose TTL would reach 0 is not forwarded;
    // Time Exceeded code 0 goes back to the source.
    if (ip.ttl() <= 1) return R.TTL_EXCEEDED;
    const c = this.routes.candidates(dst);
    const route = isRouteGroup(c) ? c[(this.#flowHash(pkt, ip) >>> 0) % c.length]! : c;
    if (route === null) return R.NO_ROUTE;
    if (route.type !== "unicast") return routeTypeReason(route.type);
    const outNic = this.stack.nics.get(route.nicId);
    if (outNic === undefined || !outNic.isUp()) return R.LINK_DOWN;
    const nextHop = route.gateway ?? dst;
    const outState = this.#state.get(outNic.id)!;
    // Directed broadcast forwarding is off (RFC 1812 §5.3.5.2 default, Linux too).
    if (this.#isBroadcastFor(outState, dst)) return R.NOT_FOR_US;
    // MTU: a GSO super-frame is judged by its segment size.
    const mtu = outNic.mtu();
    const len = ip.totalLength();
    const tooBig = (pkt.isGso() ? gsoSegmentLen(pkt, ipOff, ip.headerLen()) : len) > mtu;
    if (tooBig && ip.dontFragment()) return this.drops.fail(R.TOO_BIG, mtu);
    // RFC 1812 §5.2.7.2: redirect when the packet leaves by the interface it
    // came in on and its source is on that subnet; the packet still goes on.
    const inState = this.#state.get(inNic.id)!;
    if (outNic === inNic && inState.sendRedirects && this.#onSubnet(inState, ip.src())) {
      s.forwarding.redirectsSent++;
      this.icmp.sendErrorAbout(pkt, ipOff, inNic, Icmpv4Type.REDIRECT, 1, nextHop);
    }
    if (this.hooks.forward !== null && !this.hooks.forward(pkt, ipOff, inNic, outNic)) {
      return R.FIREWALL;
    }
    if (ip.headerLen() > IPV4_MIN_HEADER_LEN) {
      const outAddr = this.sourceFor(outNic, nextHop) ?? 0;
      const res = processForwardingOptions(ip, outAddr, this.#msSinceMidnight());
      if (!res.ok) return this.drops.fail(R.BAD_OPTIONS, res.pointer);
      ip.fillChecksum();
    }
    ip.decrementTtl();
    // DF clear and too big: fragmented after POSTROUTING (RFC 791; the
    // first fragment keeps every option).
    const r = this.#postroute(outNic, pkt, ipOff, nextHop, tooBig);
    // Counted once POSTROUTING let it go: a NAT drop there is the firewall's, not a forward.
    if (r === R.OK) s.forwarding.packets++;
    return r;
  }

  #onSubnet(st: Ipv4NicState, a: number): boolean {
    for (const x of st.addresses) if (ipv4CidrContains(x, a)) return true;
    return false;
  }

  #flowHash(pkt: PacketBuffer, ip: Ipv4Packet): number {
    const proto = ip.protocol();
    let sport = 0, dport = 0;
    const l4 = ip.off + ip.headerLen();
    // Ports only for an unfragmented packet: every fragment of a datagram,
    // the first included, must hash alike (Linux's flow dissector does not
    // parse the first fragment's ports either) or they take different paths.
    if (
      (proto === IpProtocol.TCP || proto === IpProtocol.UDP) && ip.fragmentOffset() === 0 &&
      !ip.moreFragments() && l4 + 4 <= pkt.end
    ) {
      sport = pkt.view.getUint16(l4);
      dport = pkt.view.getUint16(l4 + 2);
    }
    return flowHashV4(ip.src(), ip.dst(), proto, sport, dport);
  }

  #msSinceMidnight(): number {
    // RFC 791: milliseconds since midnight UT. The stack only has a
    // monotonic clock; wall time is not the stack's concern, so use the
    // clock's value modulo a day (the lab's manual clock stays repeatable).
    return Math.floor(this.stack.clock.now()) % 86_400_000;
  }

  // ------------------------------------------------------------ output

  /**
   * Send a locally built IPv4 packet whose header is complete except the
   * checksum (and the source when it is 0). The buffer is not kept.
   * Routes it, loops it back when the destination is local, fragments it
   * when it is larger than the egress MTU and DF is clear.
   *
   * @returns false when it could not be sent (no route, DF and too big).
   */
  output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions = {}): boolean {
    // Errors about our own packets go to ourselves (inNic null), as Linux tells the sender.
    return this.drops.verdict(this.#output(pkt, ipOff, opts), pkt, ipOff, null);
  }

  #output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions): Verdict {
    const ip = this.#ip2.reset(pkt, ipOff);
    pkt.networkOffset = ipOff;
    pkt.linkDst = opts.linkDst ?? null;
    let dst = ip.dst();
    let r = this.#routeOutput(dst, opts.nic);
    if (r !== R.OK) return r;
    // keepSource: 0.0.0.0 stays (RFC 2131 §4.1: a client without an address sends from it).
    if (ip.src() === 0 && !opts.keepSource) {
      ip.setSrc(this.#outNic === null ? dst : this.sourceFor(this.#outNic, this.#nextHop) ?? 0);
    }
    ip.fillChecksum();
    setL4Meta(pkt, ip);
    // OUTPUT runs for every locally generated packet, loopback included.
    if (!opts.skipHooks && this.hooks.output !== null) {
      if (!this.hooks.output(pkt, ipOff, null, this.#outNic)) return R.FIREWALL;
      // A DNAT in OUTPUT changes the routing decision.
      if (ip.dst() !== dst) {
        dst = ip.dst();
        r = this.#routeOutput(dst, opts.nic);
        if (r !== R.OK) return r;
      }
    }
    this.stack.stats.ipv4.packetsSent++;
    const outNic = this.#outNic;
    if (outNic === null) {
      this.#loopback.push(pkt, ipOff);
      return R.OK;
    }
    // A super-frame (TCP with TSO) is too big when its segments are.
    const tooBig = (pkt.isGso() ? gsoSegmentLen(pkt, ipOff, ip.headerLen()) : ip.totalLength()) >
      outNic.mtu();
    if (tooBig && ip.dontFragment()) return this.drops.fail(R.OUTPUT_TOO_BIG, outNic.mtu());
    return this.#postroute(outNic, pkt, ipOff, this.#nextHop, tooBig);
  }

  /** The egress of the last {@link #routeOutput} (null: local, loopback). */
  #outNic: Nic | null = null;
  /** The next hop of the last {@link #routeOutput}. */
  #nextHop = 0;

  /**
   * The output routing decision: the egress NIC and next hop into
   * `#outNic` and `#nextHop` (`#outNic` null for a local destination,
   * loopback), or why there is none (an unreachable or prohibit route
   * answers the local sender).
   */
  #routeOutput(dst: number, pinned: Nic | undefined): Verdict {
    this.#outNic = null;
    this.#nextHop = dst;
    if (this.local.has(dst) || ipv4IsLoopback(dst)) return R.OK;
    if (ipv4IsLimitedBroadcast(dst) || ipv4IsMulticast(dst)) {
      const nic = pinned ?? this.#firstNicWithAddress();
      if (nic === undefined) return R.OUTPUT_NO_ROUTE;
      this.#outNic = nic;
      return R.OK;
    }
    const route = this.routes.lookup(dst, 0);
    if (route === null) return R.OUTPUT_NO_ROUTE;
    if (route.type !== "unicast") return routeTypeReason(route.type);
    const nic = pinned ?? this.stack.nics.get(route.nicId);
    if (nic === undefined) return R.OUTPUT_NO_ROUTE;
    this.#outNic = nic;
    this.#nextHop = route.gateway ?? dst;
    return R.OK;
  }

  #firstNicWithAddress(): Nic | undefined {
    for (const [id, st] of this.#state) if (st.addresses.length > 0) return this.stack.nics.get(id);
    return undefined;
  }

  /**
   * POSTROUTING once for the whole packet (so NAT sees the transport
   * header even when the packet is fragmented afterwards), then fragments
   * when `fragment` is set, then the link.
   */
  #postroute(
    outNic: Nic,
    pkt: PacketBuffer,
    ipOff: number,
    nextHop: number,
    fragment: boolean,
  ): Verdict {
    const s = this.stack.stats.ipv4;
    if (this.hooks.postrouting !== null && !this.hooks.postrouting(pkt, ipOff, null, outNic)) {
      return R.FIREWALL;
    }
    if (!fragment) {
      this.#toLink(outNic, pkt, ipOff, nextHop);
      return R.OK;
    }
    if (pkt.isGso() || (pkt.vnetFlags & 1) !== 0) completePartialChecksum(pkt);
    const n = fragmentIpv4(pkt, ipOff, outNic.mtu(), this.stack.pool, (frag, fragIpOff) => {
      this.#toLink(outNic, frag, fragIpOff, nextHop);
    });
    if (typeof n === "number") {
      s.packetsFragmented++;
      s.fragmentsCreated += n;
    } else {
      s.fragmentationFailed++;
    }
    return R.OK;
  }

  /**
   * The last step for any IPv4 packet leaving by `outNic`: software
   * segmentation or checksum completion for a plain link, Ethernet header,
   * neighbor resolution.
   */
  #toLink(outNic: Nic, pkt: PacketBuffer, ipOff: number, nextHop: number): void {
    if (!outNic.link.capabilities.offloads) {
      if (pkt.isGso()) {
        const ok = segmentGso(this.stack.pool, pkt, ipOff, (seg, segIpOff) => {
          this.#resolveAndSend(outNic, seg, segIpOff, nextHop);
        });
        if (ok) this.stack.stats.ipv4.gsoSegmented++;
        else this.stack.stats.ipv4.gsoDropped++;
        return;
      }
      if (pkt.vnetFlags !== 0) completePartialChecksum(pkt);
    }
    this.#resolveAndSend(outNic, pkt, ipOff, nextHop);
  }

  #resolveAndSend(outNic: Nic, pkt: PacketBuffer, ipOff: number, nextHop: number): void {
    const st = this.#state.get(outNic.id)!;
    const group = ipv4IsLimitedBroadcast(nextHop) || this.#isBroadcastFor(st, nextHop)
      ? BROADCAST_MAC
      : ipv4IsMulticast(nextHop)
      ? ipv4MulticastMac(nextHop)
      : null;
    sendOnLink(this.#eth, outNic, pkt, ipOff, EtherType.IPV4, group, st.neighbors, nextHop);
  }

  #sendResolved(nic: Nic, pkt: PacketBuffer, mac: Uint8Array): void {
    pkt.data.set(mac, pkt.start);
    nic.send(pkt);
  }

  /** RFC 1812 §5.2.7.1 / Linux: host unreachable to the sender when ARP fails. */
  #resolutionFailed(nic: Nic, pkt: PacketBuffer): void {
    const ipOff = pkt.start + ETHERNET_HEADER_LEN;
    // The frame never got a destination MAC: clear the stale bytes so the
    // error rules do not read them as a link-layer multicast.
    pkt.data.fill(0, pkt.start, pkt.start + 6);
    this.icmp.sendErrorAbout(
      pkt,
      ipOff,
      nic,
      Icmpv4Type.DEST_UNREACHABLE,
      Icmpv4Code.HOST_UNREACHABLE,
      0,
    );
  }

  /** Human-readable list of this layer's addresses, for logs. */
  describeAddresses(nic: Nic): string[] {
    return (this.#state.get(nic.id)?.addresses ?? []).map((a) =>
      `${formatIpv4(a.address)}/${a.prefixLen}`
    );
  }

  /** The first byte a locally built packet's IP header should start at. */
  static readonly BUILD_OFFSET = HEADROOM + ETHERNET_HEADER_LEN;
}
