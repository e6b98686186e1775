/**
 * The `Stack`: the NICs, the clock and randomness, counters, and (as the
 * protocols land) addresses, the routing table and dispatch.
 *
 * @module
 */
import { type Clock, SystemClock } from "./clock.ts";
import type { LinkEndpoint } from "./link_endpoint.ts";
import { Nic } from "./nic.ts";
import { type Random, SystemRandom } from "./random.ts";
import { newStackStats, type StackStats } from "./stats.ts";
import { macFromName } from "./wire/mac_address.ts";
import { BufferPool } from "./wire/packet_buffer.ts";
import { DEFAULT_NEIGHBOR_CONFIG, type NeighborConfig } from "./neighbor_cache.ts";
import { Ipv4, type Ipv4Settings } from "./ipv4/ipv4.ts";
import { Udp } from "./udp.ts";
import type { Firewall } from "./firewall/firewall.ts";
import { Ipv6, type Ipv6Settings } from "./ipv6/ipv6.ts";
import { installIpv6Transports } from "./ipv6/transport6.ts";
import { RouterAdvertisements } from "./ipv6/ra.ts";
import { ExceptionLog } from "./exception_log.ts";

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
  /** UDP over IPv4. */
  readonly udp: Udp;
  /** The IPv6 layer (NDP, MLD, ICMPv6, routing, forwarding). */
  readonly ipv6: Ipv6;
  /** Router Advertisements: sending them (router side) and learning from them (accept_ra, SLAAC). */
  readonly ra: RouterAdvertisements;
  /** The IPv4 firewall when one is installed (see `Firewall.install`). */
  firewall: Firewall | null = null;
  /** Exceptions that escaped a handler while a frame was dispatched: counted and logged. */
  readonly exceptions: ExceptionLog;
  /**
   * Counters of owners outside the stack (the link driver), by name: each
   * function returns a tree of numbers that {@link Stack.snapshotStats}
   * includes under its name.
   */
  readonly statsSources: Map<string, () => StatsTree> = new Map();
  #nextNicId = 1;

  constructor(opts: StackOptions = {}) {
    this.clock = opts.clock ?? new SystemClock();
    this.random = opts.random ?? new SystemRandom();
    this.hostname = opts.hostname ?? "tapir";
    this.pool = new BufferPool(opts.poolLimit ?? 4096);
    this.neighborConfig = { ...DEFAULT_NEIGHBOR_CONFIG, ...opts.neighbor };
    this.exceptions = new ExceptionLog(this.clock);
    this.ipv4 = new Ipv4(this, opts.ipv4);
    if (opts.icmpRateLimit !== undefined) {
      this.ipv4.icmp.bucket.rate = opts.icmpRateLimit.rate;
      this.ipv4.icmp.bucket.burst = opts.icmpRateLimit.burst;
    }
    this.udp = new Udp(this.ipv4);
    this.ipv6 = new Ipv6(this, opts.ipv6);
    installIpv6Transports(this.ipv6);
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
    nic.onException = (e) => this.exceptions.report(opts.name, e);
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

  /** The NIC named `name`, or undefined. */
  nicByName(name: string): Nic | undefined {
    for (const n of this.nics.values()) if (n.name === name) return n;
    return undefined;
  }

  /**
   * A snapshot of every counter of every owner, as one tree of plain
   * numbers (JSON-able): `stack` (the protocol counters: IPv4, ICMP, ARP,
   * UDP, IPv6, ICMPv6, NDP, MLD), `nics` and `links` (per interface),
   * `neighbors` (per interface and family), `reassembly` (per family),
   * `ra` (RA sending and SLAAC), `firewall` (when installed, with
   * conntrack per family), `dispatch` (escaped exceptions), `tables` (the
   * sizes of routes, neighbors, addresses and conntrack: gauges, not
   * counters), then every entry of {@link Stack.statsSources}.
   */
  snapshotStats(): StatsSnapshot {
    const nics: Record<string, Nic["stats"]> = {};
    const links: Record<string, StatsTree> = {};
    const neighbors: Record<string, StatsTree> = {};
    const neighborCount: Record<string, StatsTree> = {};
    const addressCount: Record<string, StatsTree> = {};
    for (const n of this.nics.values()) {
      nics[n.name] = { ...n.stats };
      const ls = linkStats(n.link);
      if (ls !== null) links[n.name] = ls;
      const v4 = this.ipv4.nicState(n);
      const v6 = this.ipv6.nicState(n);
      const nb: StatsTree = {};
      const nc: StatsTree = {};
      if (v4 !== undefined) {
        nb.ipv4 = { ...v4.neighbors.stats };
        nc.ipv4 = count(v4.neighbors.entries());
      }
      if (v6 !== undefined) {
        nb.ipv6 = { ...v6.neighbors.stats };
        nc.ipv6 = count(v6.neighbors.entries());
      }
      neighbors[n.name] = nb;
      neighborCount[n.name] = nc;
      addressCount[n.name] = {
        ipv4: this.ipv4.describeAddresses(n).length,
        ipv6: v6 === undefined ? 0 : this.ipv6.describeAddresses(n).length,
      };
    }
    const out: StatsSnapshot = {
      stack: structuredClone(this.stats),
      nics,
      links,
      neighbors,
      reassembly: {
        ipv4: { ...this.ipv4.reassembler.stats },
        ipv6: { ...this.ipv6.reassembler.stats },
      },
      ra: { ...this.ra.stats },
      dispatch: { exceptions: this.exceptions.count },
      tables: {
        routes: { ipv4: this.ipv4.routes.size, ipv6: this.ipv6.routes.size },
        neighbors: neighborCount,
        addresses: addressCount,
      },
    };
    const fw = this.firewall;
    if (fw !== null) {
      out.firewall = {
        filter: { ...fw.stats },
        conntrack: { ipv4: { ...fw.conntrack.stats }, ipv6: { ...fw.conntrack6.stats } },
      };
      out.tables.conntrack = { ipv4: fw.conntrack.size, ipv6: fw.conntrack6.size };
    }
    for (const [name, fn] of this.statsSources) out[name] = fn();
    return out;
  }

  /** Stop every timer, release held packets, close every NIC (and its link). */
  close(): void {
    // RFC 4861 §6.2.5: the final RAs leave while the links are still open.
    this.ra.close();
    this.firewall?.close();
    this.ipv4.close();
    this.ipv6.close();
    for (const n of this.nics.values()) n.close();
  }
}

/** A tree of counters: numbers, nested by owner. */
export interface StatsTree {
  [key: string]: number | StatsTree;
}

/** What {@link Stack.snapshotStats} returns. */
export interface StatsSnapshot {
  stack: StackStats;
  nics: Record<string, Nic["stats"]>;
  links: Record<string, StatsTree>;
  neighbors: Record<string, StatsTree>;
  reassembly: StatsTree;
  ra: StatsTree;
  firewall?: StatsTree;
  dispatch: StatsTree;
  tables: StatsTree & { routes: StatsTree; neighbors: StatsTree; addresses: StatsTree };
  [owner: string]: unknown;
}

function count(it: Iterable<unknown>): number {
  let n = 0;
  for (const _ of it) n++;
  return n;
}

/** The numeric counters of a link endpoint (and of the links it wraps), or null. */
function linkStats(link: LinkEndpoint): StatsTree | null {
  const l = link as LinkEndpoint & { stats?: unknown; inner?: LinkEndpoint };
  let out: StatsTree | null = null;
  if (l.stats !== null && typeof l.stats === "object") {
    out = {};
    for (const [k, v] of Object.entries(l.stats)) if (typeof v === "number") out[k] = v;
  }
  if (l.inner !== undefined) {
    const inner = linkStats(l.inner);
    if (inner !== null) out = out === null ? inner : { ...inner, capture: out };
  }
  return out;
}
