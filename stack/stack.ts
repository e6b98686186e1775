/**
 * The `Stack`: the NICs, the clock and randomness, counters, and (as the
 * protocols land) addresses, the routing table and dispatch.
 *
 * @module
 */
import { type Clock, SystemClock, type Timer } from "./clock.ts";
import type { LinkEndpoint } from "./link_endpoint.ts";
import { Nic } from "./nic.ts";
import { type Random, SystemRandom } from "./random.ts";
import { newStackStats, type NicStats, type StackStats } from "./stats.ts";
import { macFromName } from "./wire/mac_address.ts";
import { BufferPool } from "./wire/packet_buffer.ts";
import { DEFAULT_NEIGHBOR_CONFIG, type NeighborConfig } from "./neighbor_cache.ts";
import { Ipv4, type Ipv4Settings } from "./ipv4/ipv4.ts";
import { Udp } from "./transport/udp.ts";
import { Tcp } from "./transport/tcp/tcp.ts";
import type { TcpSettings } from "./transport/tcp/connection.ts";
import {
  connectTcp,
  type TapirTcpConn,
  TapirTcpListener,
  type TcpConnectOptions,
  type TcpListenOptions,
} from "./transport/stream.ts";
import { type ListenDatagramOptions, TapirDatagramConn } from "./transport/datagram.ts";
import type { Firewall } from "./firewall/firewall.ts";
import { Ipv6, type Ipv6Settings } from "./ipv6/ipv6.ts";
import { installIpv6Transports } from "./ipv6/transport6.ts";
import { RouterAdvertisements } from "./ipv6/ra.ts";

/** How often the stack gives unneeded pool buffers back (BufferPool.trim). */
const POOL_TRIM_MS = 10_000;

/** Every counter of a stack, by owner (see {@link Stack.snapshotStats}). */
export interface StatsSnapshot {
  /** Protocol counters (IPv4, ICMP, ARP, UDP, IPv6, ICMPv6, NDP, MLD). */
  stack: StackStats;
  /** Per NIC. */
  nics: Record<string, NicStats>;
  /** Per NIC: its ARP and NDP caches. */
  neighbors: Record<string, Record<string, unknown>>;
  /** Per NIC: its link endpoint's counters (TAP, memory link, pcap), where it keeps any. */
  links: Record<string, unknown>;
  reassembly: { ipv4: unknown; ipv6: unknown };
  /** Router Advertisements and SLAAC. */
  ra: unknown;
  /** The firewall and its connection tables, when one is installed. */
  firewall?: unknown;
  conntrack?: { ipv4: unknown; ipv6: unknown };
  /** Owners outside the stack ({@link Stack.statsSources}: the link driver), by name. */
  [owner: string]: unknown;
}

/** Options of {@link Stack}. */
export interface StackOptions {
  clock?: Clock;
  random?: Random;
  /** Name of the node, used in logs and the lab. */
  hostname?: string;
  /** Most packet buffers the stack's own pool makes (for queued and generated packets). */
  poolLimit?: number;
  /** Neighbor cache settings (ARP and NDP). */
  neighbor?: Partial<NeighborConfig>;
  /** IPv4 settings. */
  ipv4?: Partial<Ipv4Settings>;
  /** IPv6 settings. */
  ipv6?: Partial<Ipv6Settings>;
  /** ICMP error rate limit: tokens per second and burst. */
  icmpRateLimit?: { rate: number; burst: number };
  /** TCP settings (Linux's sysctl defaults otherwise). */
  tcp?: Partial<TcpSettings>;
}

/** Options of {@link Stack.addNic}. */
export interface AddNicOptions {
  name: string;
  /** MAC address; derived from hostname and name when absent. */
  mac?: Uint8Array;
  /** IP MTU; defaults to the link's. */
  mtu?: number;
  /** Forward IPv4 packets that arrive on this NIC (default false). */
  forwardingV4?: boolean;
  /** Send ICMP redirects for packets that leave by the NIC they came in on (default true). */
  sendRedirects?: boolean;
  /**
   * Run IPv6 on this NIC (default false here; the config builder turns it
   * on for every interface, as Linux does): a link-local address (EUI-64
   * from the MAC unless `linkLocal` is given, or none with null), DAD,
   * MLD, NDP.
   */
  ipv6?: boolean | { forwarding?: boolean; sendRedirects?: boolean; linkLocal?: Uint8Array | null };
}

/** A service on the stack ({@link Stack.services}). */
export interface StackService {
  /** The interface it serves, or null. */
  readonly nic: Nic | null;
  close(): void;
}

/**
 * A network stack instance.
 *
 * @example
 * ```ts
 * import { Stack } from "./stack.ts";
 * import { ManualClock } from "./clock.ts";
 * const s = new Stack({ clock: new ManualClock(), hostname: "h1" });
 * console.assert(s.nics.size === 0);
 * ```
 */
export class Stack {
  readonly clock: Clock;
  readonly random: Random;
  readonly hostname: string;
  readonly stats: StackStats = newStackStats();
  readonly nics: Map<number, Nic> = new Map();
  /** Buffers for packets the stack builds or must hold on to. */
  readonly pool: BufferPool;
  /** Neighbor cache settings every NIC's ARP/NDP cache starts with. */
  readonly neighborConfig: NeighborConfig;
  /** The IPv4 layer (ARP, ICMP, routing, forwarding). */
  readonly ipv4: Ipv4;
  /** UDP for both families (the port demultiplexer; sockets with callbacks). */
  readonly udp: Udp;
  /** TCP for both families (connections, listeners, the segment engine). */
  readonly tcp: Tcp;
  /** The IPv6 layer (NDP, MLD, ICMPv6, routing, forwarding). */
  readonly ipv6: Ipv6;
  /** Router Advertisements: sending them (router side) and learning from them (accept_ra, SLAAC). */
  readonly ra: RouterAdvertisements;
  /** The IPv4 firewall when one is installed (see `Firewall.install`). */
  firewall: Firewall | null = null;
  /**
   * Counters of owners outside the stack (`tapir run` adds the link
   * driver's), by name: {@link Stack.snapshotStats} includes what each
   * function returns under its name.
   */
  readonly statsSources: Map<string, () => Record<string, number>> = new Map();
  /**
   * Services running on this stack (the DHCP servers, as `dhcp4:lan0`):
   * closed before the stack, and a NIC's before it is removed.
   */
  readonly services: Map<string, StackService> = new Map();
  #nextNicId = 1;

  constructor(opts: StackOptions = {}) {
    this.clock = opts.clock ?? new SystemClock();
    this.random = opts.random ?? new SystemRandom();
    this.hostname = opts.hostname ?? "tapir";
    this.pool = new BufferPool(opts.poolLimit ?? 4096);
    this.#trimPool();
    this.neighborConfig = { ...DEFAULT_NEIGHBOR_CONFIG, ...opts.neighbor };
    this.ipv4 = new Ipv4(this, opts.ipv4);
    if (opts.icmpRateLimit !== undefined) {
      this.ipv4.icmp.bucket.rate = opts.icmpRateLimit.rate;
      this.ipv4.icmp.bucket.burst = opts.icmpRateLimit.burst;
    }
    this.ipv6 = new Ipv6(this, opts.ipv6);
    installIpv6Transports(this.ipv6);
    this.udp = new Udp(this, this.ipv4, this.ipv6);
    this.tcp = new Tcp(this, this.ipv4, this.ipv6, opts.tcp);
    this.ra = new RouterAdvertisements(this.ipv6);
    if (opts.icmpRateLimit !== undefined) {
      this.ipv6.icmp.bucket.rate = opts.icmpRateLimit.rate;
      this.ipv6.icmp.bucket.burst = opts.icmpRateLimit.burst;
    }
  }

  /** Add an interface on `link` and start receiving from it. */
  addNic(link: LinkEndpoint, opts: AddNicOptions): Nic {
    for (const n of this.nics.values()) {
      if (n.name === opts.name) throw new Error(`interface "${opts.name}" already exists`);
    }
    const id = this.#nextNicId++;
    const nic = new Nic(id, link, {
      name: opts.name,
      mac: opts.mac ?? macFromName(`${this.hostname}/${opts.name}`),
      mtu: opts.mtu,
    });
    nic.onUnknownEtherType = () => this.stats.unknownEtherTypeFramesDropped++;
    this.nics.set(id, nic);
    this.ipv4.attachNic(nic, {
      forwarding: opts.forwardingV4 ?? false,
      sendRedirects: opts.sendRedirects ?? true,
    });
    if (opts.ipv6) {
      const o = opts.ipv6 === true ? {} : opts.ipv6;
      this.ipv6.attachNic(nic, {
        forwarding: o.forwarding ?? false,
        sendRedirects: o.sendRedirects ?? true,
        linkLocal: o.linkLocal,
      });
    }
    link.attach(nic);
    return nic;
  }

  /**
   * Remove an interface, as `ip link del`: it stops advertising (final RAs
   * first) and accepting RAs, its addresses, neighbors and every route out
   * of it go, and its link is closed.
   */
  removeNic(nic: Nic): void {
    if (this.nics.get(nic.id) !== nic) return;
    for (const [k, sv] of this.services) {
      if (sv.nic === nic) {
        sv.close();
        this.services.delete(k);
      }
    }
    this.ra.disableRouter(nic, true);
    this.ra.host.disable(nic);
    this.ipv4.detachNic(nic);
    this.ipv6.detachNic(nic);
    nic.close();
    this.nics.delete(nic.id);
  }

  /**
   * A UDP socket on this stack, shaped like `Deno.listenDatagram`: the same
   * options (`hostname`, `port`, `transport: "udp"`, `reuseAddress`), the
   * same methods (`send`, `receive`, async iteration, `addr`, `close`,
   * `joinMulticastV4`/`V6`) and `Deno.errors`. Plus `interface` (bind to
   * one NIC), `receiveFrom` (the arriving interface and destination) and
   * `sendTo` (out of a chosen NIC, to a chosen MAC, from any source).
   *
   * @example
   * ```ts
   * import { Stack } from "./stack.ts";
   * import { ManualClock } from "./clock.ts";
   * const s = new Stack({ clock: new ManualClock() });
   * const conn = s.listenDatagram({ hostname: "0.0.0.0", port: 0, transport: "udp" });
   * console.assert(conn.addr.port >= 32768);
   * conn.close();
   * ```
   *
   * @throws Deno.errors.AddrInUse when the address and port are taken
   * @throws Deno.errors.AddrNotAvailable when `hostname` is not one of this stack's addresses
   */
  listenDatagram(opts: ListenDatagramOptions): TapirDatagramConn {
    return new TapirDatagramConn(this, opts);
  }

  /**
   * A TCP connection from this stack, shaped like `Deno.connect`: the same
   * options (`hostname`, `port`, `transport: "tcp"`, `localAddr`, `signal`)
   * and a conn with `Deno.TcpConn`'s members (`read`, `write`, `readable`,
   * `writable`, `closeWrite`, `close`, `localAddr`, `remoteAddr`,
   * `setNoDelay`, `setKeepAlive`), failing with `Deno.errors`.
   *
   * @example
   * ```ts
   * import { Stack } from "./stack.ts";
   * import { ManualClock } from "./clock.ts";
   * const s = new Stack({ clock: new ManualClock() });
   * await s.connect({ hostname: "192.0.2.1", port: 80 }).catch((e) =>
   *   console.assert(e instanceof Deno.errors.AddrNotAvailable)
   * );
   * ```
   *
   * @throws Deno.errors.ConnectionRefused when the peer answers with a reset
   * @throws Deno.errors.TimedOut when no SYN-ACK comes (6 retries, as Linux)
   * @throws Deno.errors.AddrNotAvailable when there is no route or source address
   */
  connect(opts: TcpConnectOptions): Promise<TapirTcpConn> {
    return connectTcp(this, opts);
  }

  /**
   * A TCP listener on this stack, shaped like `Deno.listen`: `hostname`
   * (default "0.0.0.0"; "::" takes both families), `port` (0 picks one),
   * and a listener with `accept`, `addr`, `close` and async iteration.
   *
   * @example
   * ```ts
   * import { Stack } from "./stack.ts";
   * import { ManualClock } from "./clock.ts";
   * const s = new Stack({ clock: new ManualClock() });
   * const l = s.listen({ port: 8080 });
   * console.assert(l.addr.port === 8080);
   * l.close();
   * ```
   *
   * @throws Deno.errors.AddrInUse when the address and port are taken
   * @throws Deno.errors.AddrNotAvailable when `hostname` is not one of this stack's addresses
   */
  listen(opts: TcpListenOptions): TapirTcpListener {
    return new TapirTcpListener(this, opts);
  }

  /** The NIC named `name`, or undefined. */
  nicByName(name: string): Nic | undefined {
    for (const n of this.nics.values()) if (n.name === name) return n;
    return undefined;
  }

  /**
   * A snapshot of every counter, nested by owner: the stack's protocol
   * counters, each NIC's, each NIC's neighbor caches (ARP, NDP) and link
   * endpoint, both reassemblers, RA/SLAAC, and the firewall with its
   * connection tables when one is installed. Plain numbers only (JSON-able).
   */
  snapshotStats(): StatsSnapshot {
    const nics: Record<string, NicStats> = {};
    const neighbors: Record<string, Record<string, unknown>> = {};
    const links: Record<string, unknown> = {};
    for (const n of this.nics.values()) {
      nics[n.name] = { ...n.stats };
      const v4 = this.ipv4.nicState(n)?.neighbors.stats;
      const v6 = this.ipv6.nicState(n)?.neighbors.stats;
      neighbors[n.name] = {
        ...(v4 !== undefined ? { arp: { ...v4 } } : {}),
        ...(v6 !== undefined ? { ndp: { ...v6 } } : {}),
      };
      const ls = (n.link as { stats?: unknown }).stats;
      if (ls !== undefined && ls !== null && typeof ls === "object") links[n.name] = { ...ls };
    }
    const fw = this.firewall;
    const out: StatsSnapshot = {
      stack: structuredClone(this.stats),
      nics,
      neighbors,
      links,
      reassembly: {
        ipv4: { ...this.ipv4.reassembler.stats },
        ipv6: { ...this.ipv6.reassembler.stats },
      },
      ra: { ...this.ra.stats },
      ...(fw !== null
        ? {
          firewall: { ...fw.stats },
          conntrack: { ipv4: { ...fw.conntrack.stats }, ipv6: { ...fw.conntrack6.stats } },
        }
        : {}),
    };
    for (const [name, fn] of this.statsSources) out[name] = fn();
    return out;
  }

  /**
   * Entries held in the stack's tables that traffic made and timers let
   * go: connection-tracking entries, neighbor entries, datagrams under
   * reassembly and TCP connections. The link driver watches it while idle
   * (its `held` option): when it has fallen a lot since the last time
   * memory was given back, the entries' memory is garbage to collect.
   */
  tableEntries(): number {
    let n = this.ipv4.reassembler.size() + this.ipv6.reassembler.size() + this.tcp.size;
    for (const nic of this.nics.values()) {
      n += this.ipv4.nicState(nic)?.neighbors.size ?? 0;
      n += this.ipv6.nicState(nic)?.neighbors.size ?? 0;
    }
    const fw = this.firewall;
    if (fw !== null) n += fw.conntrack.size + fw.conntrack6.size;
    return n;
  }

  /**
   * Every POOL_TRIM_MS, let go of the free buffers the interval did not
   * need at its peak (a burst of reassembly or segmentation buffers, 64 KiB
   * each, is given back instead of kept for good).
   */
  #trimPool(): void {
    this.#trimTimer = this.clock.schedule(POOL_TRIM_MS, () => {
      this.pool.trim();
      this.#trimPool();
    });
  }

  #trimTimer: Timer | null = null;

  /** Stop every timer, release held packets, close every NIC (and its link). */
  close(): void {
    this.#trimTimer?.cancel();
    this.#trimTimer = null;
    for (const sv of this.services.values()) sv.close();
    this.services.clear();
    this.tcp.close();
    // RFC 4861 §6.2.5: the final RAs leave while the links are still open.
    this.ra.close();
    this.firewall?.close();
    this.ipv4.close();
    this.ipv6.close();
    for (const n of this.nics.values()) n.close();
  }
}
