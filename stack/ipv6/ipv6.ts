/**
 * The IPv6 layer: per-NIC state, addresses with DAD states, groups,
 * source selection, and the datapath it holds, split the way smoltcp
 * splits ingress from dispatch: receive.ts (validation, extension headers,
 * reassembly, local delivery), forward.ts (the router path) and output.ts
 * (locally generated packets, fragmentation, the link).
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { IpHooks } from "../ip/hooks.ts";
import type { StackContext } from "../ip/context.ts";
import { Ipv6RouteTable } from "../route_table.ts";
import { NeighborCache } from "../neighbor_cache.ts";
import type { Reassembler } from "../reassembly.ts";
import { ETHERNET_HEADER_LEN } from "../wire/ethernet.ts";
import {
  buildIpv6Packet,
  IPV6_ALL_NODES as ALL_NODES,
  IPV6_ALL_ROUTERS as ALL_ROUTERS,
  IPV6_HEADER_LEN,
  type Ipv6Packet,
} from "../wire/ipv6.ts";
import { Icmpv6Code, Icmpv6Type } from "../wire/icmpv6.ts";
import {
  formatIpv6,
  ipv6CidrContains,
  ipv6Equal,
  ipv6IsLinkLocalUnicast,
  ipv6IsMulticast,
  ipv6Masked,
  ipv6SolicitedNode,
} from "../wire/ip_address.ts";
import { ipv6MulticastMac } from "../wire/mac_address.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import { Ipv6AddressMap, Ipv6KeyInterner } from "./addr_map.ts";
import { Icmpv6 } from "./icmp.ts";
import { Ndp } from "./ndp.ts";
import { Mld } from "./mld.ts";
import { linkLocalFromMac } from "./interface_id.ts";
import { Dropper } from "../ip/drop.ts";
import { detachNicState, type IpOutputOptions, NeighborGc, reassemblerFor } from "../ip/layer.ts";
import { IPV6_DROPS, type Ipv6DropReason } from "./drops.ts";
import type { Ipv6InterfaceAddress, Ipv6NicState, Ipv6Settings } from "./_layer.ts";
export type {
  Ipv6AddressState,
  Ipv6InterfaceAddress,
  Ipv6Layer,
  Ipv6NicState,
  Ipv6Settings,
} from "./_layer.ts";
import { type CandidateAddress, selectSourceAddress } from "./address_selection.ts";
import type { Ipv6Datapath } from "./_datapath.ts";
import { Ipv6Ingress } from "./receive.ts";
import { Ipv6Forwarding } from "./forward.ts";
import { Ipv6Egress } from "./output.ts";

const UNSPECIFIED = new Uint8Array(16);

/**
 * The IPv6 network layer of one {@link Stack}.
 */
export class Ipv6 implements Ipv6Datapath {
  readonly routes: Ipv6RouteTable = new Ipv6RouteTable();
  readonly icmp: Icmpv6;
  readonly ndp: Ndp;
  readonly mld: Mld;
  readonly reassembler: Reassembler<string>;
  readonly settings: Ipv6Settings;
  /** Local unicast addresses → their NIC and record. */
  readonly local: Ipv6AddressMap<{ nic: Nic; addr: Ipv6InterfaceAddress }> = new Ipv6AddressMap();
  /**
   * Subnet-Router anycast addresses (RFC 4291 §2.6.1: the subnet prefix,
   * interface identifier zero) of the NICs that forward, as Linux joins
   * them: echo and NS to them are answered, never forwarded.
   */
  readonly #anycast: { readonly address: Uint8Array; readonly nic: Nic }[] = [];

  /**
   * The NIC whose Subnet-Router anycast address is at `a[off]`, or
   * undefined. A few entries (one per subnet of a forwarding NIC), compared
   * last byte first: most destinations leave after one byte, no hashing on
   * the receive path.
   */
  anycastNic(a: Uint8Array, off = 0): Nic | undefined {
    for (const x of this.#anycast) {
      if (x.address[15] === a[off + 15] && ipv6Equal(x.address, a, 0, off)) return x.nic;
    }
    return undefined;
  }
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
  /** The periodic sweep of every NIC's neighbor cache (FAILED and stale entries). */
  readonly #gc: NeighborGc;
  /** The datapath: ingress, forwarding, egress (receive.ts, forward.ts, output.ts). */
  readonly #in: Ipv6Ingress;
  readonly #fwd: Ipv6Forwarding;
  readonly #out: Ipv6Egress;
  /** The one drop handler: {@link IPV6_DROPS} applied. */
  readonly drops: Dropper<Ipv6DropReason>;

  constructor(readonly stack: StackContext, settings: Partial<Ipv6Settings> = {}) {
    this.#gc = new NeighborGc(stack, () => this.#state.values());
    this.#out = new Ipv6Egress(this);
    this.#fwd = new Ipv6Forwarding(this, this.#out);
    this.#in = new Ipv6Ingress(this, this.#fwd);
    this.settings = {
      defaultHopLimit: settings.defaultHopLimit ?? 64,
      reassemblyTimeoutMs: settings.reassemblyTimeoutMs ?? 60_000,
      reassemblyMemory: settings.reassemblyMemory ?? 4 * 1024 * 1024,
      dadTransmits: settings.dadTransmits ?? 1,
      retransTimerMs: settings.retransTimerMs ?? 1000,
    };
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
    this.#gc.start();
    nic.ipv6 = { handleFrame: (n, p) => this.#in.receive(n, p) };
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
      origin?: "static" | "link-local" | "slaac" | "dhcp";
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
    this.#syncAnycast(nic);
    return a;
  }

  /**
   * Make `nic`'s Subnet-Router anycast addresses what its addresses and
   * forwarding say: one per prefix of an address (up to /126; RFC 6164
   * leaves /127 links without), only while the NIC forwards. Each joins its
   * solicited-node group, so NS for it is heard.
   */
  #syncAnycast(nic: Nic): void {
    const st = this.#state.get(nic.id);
    const want: Uint8Array[] = [];
    if (st !== undefined && st.forwarding) {
      for (const a of st.addresses) {
        if (a.prefixLen > 126) continue;
        const p = ipv6Masked(a.address, a.prefixLen);
        if (!want.some((w) => ipv6Equal(w, p))) want.push(p);
      }
    }
    const list = this.#anycast;
    for (let i = list.length - 1; i >= 0; i--) {
      const x = list[i]!;
      if (x.nic !== nic || want.some((w) => ipv6Equal(w, x.address))) continue;
      list.splice(i, 1);
      if (st !== undefined) this.leaveGroup(nic, ipv6SolicitedNode(x.address));
    }
    for (const p of want) {
      if (list.some((x) => x.nic === nic && ipv6Equal(x.address, p))) continue;
      list.push({ address: p, nic });
      this.joinGroup(nic, ipv6SolicitedNode(p));
    }
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
    this.#syncAnycast(nic);
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
    this.#syncAnycast(nic);
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

  /**
   * A fresh Fragment Identification: random for each packet (RFC 7739's
   * randomized identifications), as Linux's ipv6_select_ident now draws
   * them (get_random_u32) in place of the per-destination counters it had,
   * which let an observer count a host's packets to others. Two packets to
   * one destination collide only with the same 32-bit value within the
   * reassembly timeout.
   */
  nextFragmentId(): number {
    return this.stack.random.uint32();
  }

  // ------------------------------------------------------------ datapath

  /** Receive path for one IPv6 frame from `nic` (receive.ts). */
  receive(nic: Nic, pkt: PacketBuffer): void {
    this.#in.receive(nic, pkt);
  }

  /**
   * Local delivery: walk the extension headers (RFC 8200 §4), reassemble,
   * and hand the upper layer to its transport (receive.ts).
   */
  deliverLocal(nic: Nic | null, pkt: PacketBuffer, ipOff: number, reassembled: boolean): void {
    this.#in.deliverLocal(nic, pkt, ipOff, reassembled);
  }

  /** Forward a packet that arrived on `inNic` and is not for us (forward.ts). */
  forward(inNic: Nic, pkt: PacketBuffer, ipOff: number): void {
    this.#fwd.forward(inNic, pkt, ipOff);
  }

  /**
   * Send a locally built IPv6 packet (header complete; the source may be
   * unspecified, then it is selected): output.ts.
   */
  output(pkt: PacketBuffer, ipOff: number, opts: IpOutputOptions = {}): boolean {
    return this.#out.output(pkt, ipOff, opts);
  }

  /**
   * Per Next Header, a function that fills the upper-layer checksum once the
   * source address is known (ICMPv6, UDP, TCP built with an unspecified source).
   */
  readonly checksumFixers: Map<number, (pkt: PacketBuffer, ipOff: number) => void> = new Map();

  /** The MTU to `dst`: the link MTU, lowered by a Packet Too Big we learned (RFC 8201). */
  pathMtu(outNic: Nic, a: Uint8Array, off: number): number {
    return this.#out.pathMtu(outNic, a, off);
  }

  /** A Packet Too Big arrived for `dst`: remember its MTU (never below 1280, RFC 8201 §4). */
  learnPathMtu(dst: Uint8Array, off: number, mtu: number): void {
    this.#out.learnPathMtu(dst, off, mtu);
  }

  /** Build an IPv6 header for a locally generated packet at the standard offset; returns the offset. */
  static buildHeader(buf: PacketBuffer, f: Parameters<typeof buildIpv6Packet>[1]): number {
    return buildIpv6Packet(buf, f);
  }

  /** Stop timers and release held buffers. */
  close(): void {
    this.#gc.stop();
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
