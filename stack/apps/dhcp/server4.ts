/**
 * A DHCPv4 server (RFC 2131) for one interface: address pools, static
 * reservations by MAC or client identifier (RFC 4361), the options of RFC
 * 2132 with classless routes (RFC 3442) and the search list (RFC 3397),
 * DECLINE, RELEASE and INFORM, the client-id echo (RFC 6842), and leases
 * made durable in a {@link LeaseStore} before the ACK leaves (written at
 * once, synced to disk once per burst of ACKs: a group commit).
 *
 * It runs on the stack's UDP socket API (port 67 bound to the interface,
 * as dnsmasq binds with SO_BINDTODEVICE) with the synchronous callback, and
 * answers a client that has no address yet at its MAC without ARP (RFC
 * 2131 §4.1), or by broadcast when the client set the BROADCAST flag.
 * Through a relay agent (giaddr set, RFC 1542) it answers the relay at its
 * server port and echoes the relay agent information (RFC 3046); the relay
 * must be on one of the interface's subnets, where the pools are.
 *
 * Allocation, in order (as Kea's and dnsmasq's): the client's reservation;
 * the address it holds or held (client affinity, also after a RELEASE or an
 * expiry, while nobody took it); the address it asks for (option 50) when
 * free; an address never handed out yet; then the lease that expired or
 * was released longest ago. An OFFER holds its address for that client for
 * {@link OFFER_HOLD_MS} in memory only (an OFFER is no promise, RFC 2131
 * §4.3.1); only an ACK writes the store.
 *
 * Times of leases are wall-clock milliseconds (what the lease file keeps
 * across restarts), from the `wallClock` the caller injects: `Date.now` in
 * `tapir run`, the manual clock in the lab and tests.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Udp, UdpDatagram, UdpEndpoint, UdpSendOptions } from "../../transport/udp.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { Ipv4 } from "../../ipv4/ipv4.ts";
import {
  BootpOp,
  type ClasslessRoute,
  decodeText,
  decodeUint,
  DHCPV4_CLIENT_PORT,
  DHCPV4_FLAG_BROADCAST,
  DHCPV4_SERVER_PORT,
  Dhcpv4Message,
  Dhcpv4MessageType,
  Dhcpv4Option,
  type Dhcpv4OptionEntry,
  type Dhcpv4Options,
  encodeClasslessRoutes,
  encodeDomainSearch,
  encodeIpv4List,
  encodeText,
  encodeU16,
  encodeU32,
  writeDhcpv4,
} from "../../wire/dhcpv4.ts";
import { formatIpv4, ipv4Broadcast, ipv4Mask, parseIpv4 } from "../../wire/ip_address.ts";
import { hexColon } from "../../wire/dhcpv6.ts";
import { formatMac } from "../../wire/mac_address.ts";
import { GroupCommit, type LeaseRecord, type LeaseStore } from "./lease_store.ts";

/** How long an OFFER keeps its address for the client (RFC 2131 §4.3.1 leaves it to the server). */
export const OFFER_HOLD_MS = 60_000;

/** An inclusive range of addresses to hand out. */
export interface Dhcpv4Pool {
  start: number;
  end: number;
}

/** A fixed address for one client, by MAC or by client identifier (option 61). */
export interface Dhcpv4Reservation {
  /** `aa:bb:cc:dd:ee:ff`, or null. */
  mac: string | null;
  /** Option 61 as colon-separated hex (`01:aa:bb:...`), or null. */
  clientId: string | null;
  address: number;
  hostname: string | null;
}

/** An off-link subnet served through relay agents. */
export interface Dhcpv4RelaySubnet {
  prefix: number;
  prefixLen: number;
  pools: Dhcpv4Pool[];
  routers: number[];
}

/** Where a client is served from: the server identifier, its subnet, the pools and routers there. */
interface Scope {
  server: { address: number; prefixLen: number };
  subnet: { address: number; prefixLen: number };
  pools: Dhcpv4Pool[];
  routers: number[];
  /** The never-used cursor of these pools. */
  cursor: { pool: number; off: number };
}

/** An option by code, sent when the client asks for it (option 55) or always. */
export interface Dhcpv4CustomOption {
  code: number;
  value: Uint8Array;
  alwaysSend: boolean;
}

/** What one interface's server hands out. */
export interface Dhcpv4ServerSettings {
  pools: Dhcpv4Pool[];
  /** Lease time, seconds. */
  leaseTime: number;
  /** Routers (option 3); empty: none. */
  routers: number[];
  dnsServers: number[];
  /** Option 15, or null. */
  domain: string | null;
  /** Option 119. */
  search: string[];
  /** Option 26, or null. */
  mtu: number | null;
  ntpServers: number[];
  /** Option 121 (sent when asked for; a default route via the first router is added, RFC 3442 §DHCP Client Behavior). */
  routes: ClasslessRoute[];
  options: Dhcpv4CustomOption[];
  reservations: Dhcpv4Reservation[];
  /** NAK a client whose address is wrong for this network even with no record of it (dnsmasq's dhcp-authoritative). */
  authoritative: boolean;
  /**
   * Subnets behind relay agents (RFC 1542: giaddr in one of them), each with
   * its pools and routers (empty: the relay agent's address, giaddr); the
   * other options are the interface's.
   */
  relaySubnets?: Dhcpv4RelaySubnet[];
  /** Seconds a DECLINEd address stays out of the pools. */
  declineTime: number;
  /**
   * Milliseconds to wait for an answer to an ARP probe of an address before
   * it is first offered (dnsmasq pings it); an answer takes the address out
   * of the pools for `declineTime`, as a DECLINE would. 0: offer at once (Kea).
   */
  conflictProbeMs: number;
}

/** Counters of one DHCPv4 server. */
export interface Dhcpv4ServerStats {
  /** DHCPDISCOVER messages received. */
  discoverReceived: number;
  /** DHCPREQUEST messages received. */
  requestReceived: number;
  /** DHCPDECLINE messages received. */
  declineReceived: number;
  /** DHCPRELEASE messages received. */
  releaseReceived: number;
  /** DHCPINFORM messages received. */
  informReceived: number;
  /** DHCPOFFER messages sent. */
  offersSent: number;
  /** DHCPACK messages sent. */
  acksSent: number;
  /** DHCPNAK messages sent. */
  naksSent: number;
  /** REQUESTs that selected another server's offer. */
  otherServerSelected: number;
  /** Messages too short, without the magic cookie, or with options that do not parse. */
  malformedDropped: number;
  /** BOOTREPLY messages (from another server) received on port 67. */
  notRequestDropped: number;
  /** Messages for a hardware type other than Ethernet. */
  unsupportedHardwareDropped: number;
  /** BOOTP messages without option 53 (plain BOOTP is not served). */
  noMessageTypeDropped: number;
  /** Messages with an option 53 a server does not take (OFFER, ACK, NAK, or unknown). */
  unknownMessageTypeDropped: number;
  /** DISCOVERs left unanswered because every address of the pools is in use. */
  poolExhaustedDropped: number;
  /** Messages through a relay (giaddr set) whose giaddr is in none of this interface's subnets. */
  relayOtherSubnetDropped: number;
  /** Messages that arrived while the interface had no IPv4 address to serve from. */
  noAddressDropped: number;
  /** REQUESTs with neither a requested address nor ciaddr. */
  requestWithoutAddressDropped: number;
  /** REQUESTs and DECLINEs for this server about an address it has no record of (non-authoritative: silence, RFC 2131 §4.3.2). */
  unknownClientDropped: number;
  /** ACKs not sent because the lease could not be written to the lease store. */
  leaseWriteFailedDropped: number;
  /** Replies the stack could not send (no buffer, link down). */
  sendFailed: number;
  /** ARP probes sent before offering an address. */
  conflictProbesSent: number;
  /** Probed addresses another host answered for (kept out of the pools for decline_time). */
  conflictsDetected: number;
}

function newStats(): Dhcpv4ServerStats {
  return {
    discoverReceived: 0,
    requestReceived: 0,
    declineReceived: 0,
    releaseReceived: 0,
    informReceived: 0,
    offersSent: 0,
    acksSent: 0,
    naksSent: 0,
    otherServerSelected: 0,
    malformedDropped: 0,
    notRequestDropped: 0,
    unsupportedHardwareDropped: 0,
    noMessageTypeDropped: 0,
    unknownMessageTypeDropped: 0,
    poolExhaustedDropped: 0,
    relayOtherSubnetDropped: 0,
    noAddressDropped: 0,
    requestWithoutAddressDropped: 0,
    unknownClientDropped: 0,
    leaseWriteFailedDropped: 0,
    sendFailed: 0,
    conflictProbesSent: 0,
    conflictsDetected: 0,
  };
}

/** A lease as `show leases` lists it. */
export interface Dhcpv4LeaseInfo extends LeaseRecord {
  interface: string;
  /** True once `expires` has passed (the record is kept for client affinity). */
  expired: boolean;
}

/** What the server needs of a stack (its public layers). */
export interface Dhcpv4ServerHost {
  readonly udp: Udp;
  readonly ipv4: Ipv4;
  readonly clock: Clock;
}

/** A reply held until the lease store has synced the leases it announces. */
interface HeldReply {
  payload: Uint8Array;
  dst: number;
  dstPort: number;
  opts: UdpSendOptions;
}

interface Binding {
  address: number;
  rec: LeaseRecord;
}

interface Offer {
  address: number;
  until: number;
}

/** An OFFER waiting for its address's ARP probe: the DISCOVER, copied, and the timer. */
interface Probe {
  address: number;
  key: string;
  /** The asking client's MAC: its own answer is no conflict. */
  mac: string;
  /** The DISCOVER's bytes and where it came from, to answer it after the wait. */
  bytes: Uint8Array;
  src: number;
  tries: number;
  timer: Timer;
}

/** Addresses a probe found free are offered without probing again for this long (ms). */
const PROBE_FRESH_MS = 60_000;
/** New addresses probed for one DISCOVER before it is left unanswered. */
const PROBE_TRIES = 3;

const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const LIMITED_BROADCAST = 0xffffffff;

/**
 * The DHCPv4 server of one interface.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock } from "../../mod.ts";
 * import { MemoryLink } from "../../../link/mod.ts";
 * import { Dhcpv4Server } from "./server4.ts";
 * import { MemoryLeaseStore } from "./lease_store.ts";
 * const clock = new ManualClock();
 * const [a] = MemoryLink.pair({ clock });
 * const s = new Stack({ clock });
 * const nic = s.addNic(a, { name: "lan0", mac: new Uint8Array([2, 0, 0, 0, 0, 1]) });
 * s.ipv4.addAddress(nic, 0xc0000201, 24);
 * const srv = new Dhcpv4Server(s, nic, {
 *   pools: [{ start: 0xc0000264, end: 0xc00002c8 }], leaseTime: 3600, routers: [0xc0000201],
 *   dnsServers: [], domain: null, search: [], mtu: null, ntpServers: [], routes: [],
 *   options: [], reservations: [], authoritative: true, declineTime: 600, conflictProbeMs: 500,
 * }, { store: new MemoryLeaseStore(), wallClock: () => clock.now() });
 * console.assert(srv.leases().length === 0);
 * srv.close();
 * ```
 */
export class Dhcpv4Server {
  readonly stats: Dhcpv4ServerStats = newStats();
  readonly #ep: UdpEndpoint;
  readonly #byAddress = new Map<number, Binding>();
  /** Client key (client id, else MAC) → its binding. */
  readonly #byClient = new Map<string, Binding>();
  readonly #offers = new Map<string, Offer>();
  /** Addresses offered now → the client key holding the offer. */
  readonly #offered = new Map<number, string>();
  #reservedByKey = new Map<string, Dhcpv4Reservation>();
  #reservedAddr = new Map<number, Dhcpv4Reservation>();
  /** Next address to try for a never-used one, per set of pools: pool index and offset. */
  #cursors = new Map<Dhcpv4Pool[], { pool: number; off: number }>();
  readonly #out = new Uint8Array(1500);
  readonly #store: LeaseStore;
  /** ACKs waiting for the group commit (one store sync for a burst). */
  readonly #commits: GroupCommit<HeldReply>;
  readonly #wall: () => number;
  #settings!: Dhcpv4ServerSettings;
  /** Conflict probes in flight, by address. */
  readonly #probes = new Map<number, Probe>();
  /** Addresses a probe found free → until when (stack clock) that holds. */
  readonly #probedFree = new Map<number, number>();
  readonly #arpWatch: (nic: Nic, op: number, spa: number, sha: Uint8Array, tpa: number) => void;

  constructor(
    readonly host: Dhcpv4ServerHost,
    readonly nic: Nic,
    settings: Dhcpv4ServerSettings,
    opts: { store: LeaseStore; wallClock: () => number },
  ) {
    this.#store = opts.store;
    this.#wall = opts.wallClock;
    // Group commit: an ACK leaves once the store has synced its lease.
    this.#commits = new GroupCommit<HeldReply>(host.clock, opts.store, (h) => {
      if (this.#ep.send(h.dst, h.dstPort, h.payload, h.opts)) this.stats.acksSent++;
      else this.stats.sendFailed++;
    }, (n) => this.stats.leaseWriteFailedDropped += n);
    this.configure(settings);
    for (const rec of this.#store.load()) {
      let a: number;
      try {
        a = parseIpv4(rec.address);
      } catch {
        continue;
      }
      this.#bind(a, rec);
    }
    this.#ep = host.udp.bindSocket({
      family: 4,
      port: DHCPV4_SERVER_PORT,
      device: nic,
      onDatagram: (d) => this.#receive(d),
    });
    this.#arpWatch = (n, _op, spa, sha) => this.#arp(n, spa, sha);
    host.ipv4.arp.watchers.add(this.#arpWatch);
  }

  /** Take new settings (a reload); leases stay. */
  configure(settings: Dhcpv4ServerSettings): void {
    this.#settings = settings;
    this.#reservedByKey = new Map();
    this.#reservedAddr = new Map();
    for (const r of settings.reservations) {
      if (r.clientId !== null) this.#reservedByKey.set(`id:${r.clientId}`, r);
      if (r.mac !== null) this.#reservedByKey.set(`mac:${r.mac}`, r);
      this.#reservedAddr.set(r.address, r);
    }
    this.#cursors = new Map();
  }

  get settings(): Dhcpv4ServerSettings {
    return this.#settings;
  }

  /** Every lease record (bound, released, declined), for `show leases`. */
  leases(): Dhcpv4LeaseInfo[] {
    const now = this.#wall();
    return [...this.#byAddress.values()]
      .sort((a, b) => a.address - b.address)
      .map((b) => ({ ...b.rec, interface: this.nic.name, expired: b.rec.expires <= now }));
  }

  /** Leases bound and not expired. */
  activeLeases(): number {
    const now = this.#wall();
    let n = 0;
    for (const b of this.#byAddress.values()) {
      if (b.rec.state === "bound" && b.rec.expires > now) n++;
    }
    return n;
  }

  close(): void {
    this.#commits.flush();
    for (const p of this.#probes.values()) p.timer.cancel();
    this.#probes.clear();
    this.host.ipv4.arp.watchers.delete(this.#arpWatch);
    this.#ep.close();
    this.#store.close();
  }

  // ------------------------------------------------------------ receive

  #receive(d: UdpDatagram): void {
    this.#handle(d.buffer.data, d.payloadOffset, d.payloadLength, d.src, null);
  }

  /**
   * One message; `probeTries` is null for one off the wire, else the
   * conflict probes a held DISCOVER (already counted) has had: it is
   * answered now.
   */
  #handle(
    data: Uint8Array,
    off: number,
    len: number,
    src: number,
    probeTries: number | null,
  ): void {
    const s = this.stats;
    const m = new Dhcpv4Message(data, off, len);
    const opts = m.options();
    if (typeof opts === "string") {
      s.malformedDropped++;
      return;
    }
    if (m.op() !== BootpOp.REQUEST) {
      s.notRequestDropped++;
      return;
    }
    if (m.htype() !== 1 || m.hlen() !== 6) {
      s.unsupportedHardwareDropped++;
      return;
    }
    const type = decodeUint(opts.get(Dhcpv4Option.MESSAGE_TYPE), 1);
    if (type === null) {
      s.noMessageTypeDropped++;
      return;
    }
    const giaddr = m.giaddr();
    const scope = giaddr !== 0 ? this.#relayScope(giaddr) : this.#directScope();
    if (scope === null) {
      // A relay for a subnet this interface does not serve; or no IPv4
      // address on the interface (removed by a reload): nothing to serve from.
      if (giaddr !== 0) s.relayOtherSubnetDropped++;
      else s.noAddressDropped++;
      return;
    }
    const mac = formatMac(m.chaddr().subarray(0, 6));
    const cid = opts.get(Dhcpv4Option.CLIENT_ID);
    const clientId = cid !== undefined && cid.length > 0 ? hexColon(cid) : null;
    const key = clientId !== null ? `id:${clientId}` : `mac:${mac}`;
    const c: Client = { m, opts, mac, clientId, key, ...scope, srcAddr: src, giaddr };
    if (probeTries !== null) return this.#discover(c, probeTries);
    switch (type) {
      case Dhcpv4MessageType.DISCOVER:
        s.discoverReceived++;
        return this.#discover(c);
      case Dhcpv4MessageType.REQUEST:
        s.requestReceived++;
        return this.#request(c);
      case Dhcpv4MessageType.DECLINE:
        s.declineReceived++;
        return this.#decline(c);
      case Dhcpv4MessageType.RELEASE:
        s.releaseReceived++;
        return this.#release(c);
      case Dhcpv4MessageType.INFORM:
        s.informReceived++;
        return this.#inform(c);
      default:
        s.unknownMessageTypeDropped++;
    }
  }

  /**
   * RFC 2131 §4.3.1: a relayed message is served from the subnet giaddr is
   * on: one of this interface's (a relay agent on the LAN, or perfdhcp
   * acting as one), or one of `relaySubnets` (off-link, behind a router
   * that relays). Null when it is neither.
   */
  #relayScope(giaddr: number): Scope | null {
    const st = this.host.ipv4.nicState(this.nic);
    for (const a of st?.addresses ?? []) {
      if (((a.address ^ giaddr) & ipv4Mask(a.prefixLen)) === 0 && a.address !== giaddr) {
        return this.#scopeOf(a, a, this.#settings.pools, this.#settings.routers);
      }
    }
    const server = this.#serverAddress();
    if (server === null) return null;
    for (const r of this.#settings.relaySubnets ?? []) {
      if (((r.prefix ^ giaddr) & ipv4Mask(r.prefixLen)) !== 0) continue;
      const subnet = { address: giaddr, prefixLen: r.prefixLen };
      return this.#scopeOf(server, subnet, r.pools, r.routers.length > 0 ? r.routers : [giaddr]);
    }
    return null;
  }

  /** A client on the link itself: the interface address the pools are on. */
  #directScope(): Scope | null {
    const server = this.#serverAddress();
    if (server === null) return null;
    return this.#scopeOf(server, server, this.#settings.pools, this.#settings.routers);
  }

  #scopeOf(
    server: { address: number; prefixLen: number },
    subnet: { address: number; prefixLen: number },
    pools: Dhcpv4Pool[],
    routers: number[],
  ): Scope {
    let cursor = this.#cursors.get(pools);
    if (cursor === undefined) this.#cursors.set(pools, cursor = { pool: 0, off: 0 });
    return { server, subnet, pools, routers, cursor };
  }

  /** The interface address the pools are on: the server identifier and the replies' source. */
  #serverAddress(): { address: number; prefixLen: number } | null {
    const st = this.host.ipv4.nicState(this.nic);
    if (st === undefined || st.addresses.length === 0) return null;
    const first = this.#settings.pools[0];
    if (first !== undefined) {
      for (const a of st.addresses) {
        if (((a.address ^ first.start) & ipv4Mask(a.prefixLen)) === 0) return a;
      }
    }
    return st.addresses[0]!;
  }

  #discover(c: Client, tries = 0): void {
    const now = this.#wall();
    const req = this.#requested(c);
    const a = this.#allocate(c, req, now);
    if (a === null) {
      this.stats.poolExhaustedDropped++;
      return;
    }
    this.#holdOffer(c.key, a, now);
    if (this.#needsProbe(c, a)) {
      if (this.#probes.has(a)) return; // a retransmitted DISCOVER: the probe runs already
      if (tries >= PROBE_TRIES) return;
      this.#probe(c, a, tries + 1);
      return;
    }
    this.#reply(c, Dhcpv4MessageType.OFFER, a, true);
  }

  /**
   * An address is probed before it is offered unless the client holds or
   * held it, it is reserved, or a probe found it free a moment ago.
   */
  #needsProbe(c: Client, a: number): boolean {
    if (this.#settings.conflictProbeMs <= 0 || c.giaddr !== 0) return false;
    const b = this.#byAddress.get(a);
    if (b !== undefined && this.#keyOf(b.rec) === c.key) return false;
    if (this.#reservedAddr.has(a)) return false;
    const fresh = this.#probedFree.get(a);
    return fresh === undefined || fresh <= this.host.clock.now();
  }

  /** ARP-probe `a` (RFC 5227 §2.1.1, sender 0.0.0.0) and OFFER it if nobody answers in time. */
  #probe(c: Client, a: number, tries: number): void {
    const m = c.m;
    const bytes = m.data.slice(m.off, m.off + m.len);
    const p: Probe = {
      address: a,
      key: c.key,
      mac: c.mac,
      bytes,
      src: c.srcAddr,
      tries,
      timer: this.host.clock.schedule(this.#settings.conflictProbeMs, () => {
        this.#probes.delete(a);
        this.#probedFree.set(a, this.host.clock.now() + PROBE_FRESH_MS);
        if (this.#probedFree.size > 4096) {
          const now = this.host.clock.now();
          for (const [x, t] of this.#probedFree) if (t <= now) this.#probedFree.delete(x);
        }
        // The offer may have gone (the client chose another server) in the meantime.
        if (this.#offers.get(p.key)?.address !== a) return;
        this.#handle(p.bytes, 0, p.bytes.length, p.src, p.tries);
      }),
    };
    this.#probes.set(a, p);
    this.host.ipv4.arp.sendProbe(this.nic, a);
    this.stats.conflictProbesSent++;
  }

  /** An ARP packet on the interface: does a host answer for an address being probed? */
  #arp(nic: Nic, spa: number, sha: Uint8Array): void {
    if (nic !== this.nic || spa === 0) return;
    const p = this.#probes.get(spa);
    if (p === undefined || formatMac(sha) === p.mac) return;
    p.timer.cancel();
    this.#probes.delete(spa);
    this.stats.conflictsDetected++;
    // As a DECLINE: out of the pools for decline_time, recorded with the MAC that answered.
    const rec: LeaseRecord = {
      address: formatIpv4(spa),
      mac: formatMac(sha),
      clientId: null,
      hostname: null,
      expires: this.#wall() + this.#settings.declineTime * 1000,
      state: "declined",
    };
    if (!this.#commit(spa, rec)) return;
    this.#dropOffer(p.key);
    // Try the next address for the same DISCOVER.
    this.#handle(p.bytes, 0, p.bytes.length, p.src, p.tries);
  }

  #request(c: Client): void {
    const now = this.#wall();
    const sid = decodeUint(c.opts.get(Dhcpv4Option.SERVER_ID), 4);
    const req = this.#requested(c);
    const ciaddr = c.m.ciaddr();
    if (sid !== null) {
      // SELECTING (RFC 2131 §4.3.2): the client chose a server.
      if (sid !== c.server.address) {
        this.stats.otherServerSelected++;
        this.#dropOffer(c.key);
        return;
      }
      const want = req ?? ciaddr;
      if (want !== 0 && this.#availableTo(c, want, now)) return this.#ack(c, want, now);
      return this.#nak(c, "requested address not available");
    }
    if (req !== null && ciaddr === 0) {
      // INIT-REBOOT: the client verifies an address it remembers.
      if (!this.#onSubnet(c, req)) return this.#nak(c, "wrong network");
      const b = this.#byClient.get(c.key);
      if (b !== undefined && b.address === req && this.#availableTo(c, req, now)) {
        return this.#ack(c, req, now);
      }
      if (!this.#settings.authoritative && b === undefined) {
        this.stats.unknownClientDropped++;
        return;
      }
      if (this.#settings.authoritative && b === undefined && this.#availableTo(c, req, now)) {
        return this.#ack(c, req, now);
      }
      return this.#nak(c, "address not available");
    }
    if (ciaddr !== 0) {
      // RENEWING (unicast) or REBINDING (broadcast): extend the lease on ciaddr.
      const b = this.#byClient.get(c.key);
      const known = b !== undefined && b.address === ciaddr;
      if (known || this.#settings.authoritative) {
        if (this.#onSubnet(c, ciaddr) && this.#availableTo(c, ciaddr, now)) {
          return this.#ack(c, ciaddr, now);
        }
        if (known || this.#onSubnet(c, ciaddr)) return this.#nak(c, "lease not renewable");
      }
      this.stats.unknownClientDropped++;
      return;
    }
    this.stats.requestWithoutAddressDropped++;
  }

  #decline(c: Client): void {
    const sid = decodeUint(c.opts.get(Dhcpv4Option.SERVER_ID), 4);
    const req = this.#requested(c);
    if ((sid !== null && sid !== c.server.address) || req === null) {
      this.stats.unknownClientDropped++;
      return;
    }
    const b = this.#byAddress.get(req);
    if (b === undefined || b.rec.state !== "bound" || this.#keyOf(b.rec) !== c.key) {
      this.stats.unknownClientDropped++;
      return;
    }
    // RFC 2131 §4.3.3: the address is in use by someone else; keep it out of the pools.
    const rec: LeaseRecord = {
      ...b.rec,
      state: "declined",
      expires: this.#wall() + this.#settings.declineTime * 1000,
    };
    this.#commit(req, rec);
  }

  #release(c: Client): void {
    const a = c.m.ciaddr();
    const b = this.#byAddress.get(a);
    if (b === undefined || b.rec.state !== "bound" || this.#keyOf(b.rec) !== c.key) {
      this.stats.unknownClientDropped++;
      return;
    }
    // Kept as "released" so the client gets the same address back (affinity).
    this.#commit(a, { ...b.rec, state: "released", expires: this.#wall() });
  }

  #inform(c: Client): void {
    // RFC 2131 §3.4: the configuration without a lease, to ciaddr.
    this.#reply(c, Dhcpv4MessageType.ACK, 0, false);
  }

  #ack(c: Client, address: number, now: number): void {
    const hostOpt = c.opts.get(Dhcpv4Option.HOSTNAME);
    const res = this.#reservationFor(c);
    const rec: LeaseRecord = {
      address: formatIpv4(address),
      mac: c.mac,
      clientId: c.clientId,
      hostname: res?.hostname ?? (hostOpt !== undefined ? decodeText(hostOpt) : null),
      expires: now + this.#settings.leaseTime * 1000,
      state: "bound",
    };
    // The old address of this client (if it moved) is no longer its.
    const old = this.#byClient.get(c.key);
    if (!this.#commit(address, rec)) return;
    if (old !== undefined && old.address !== address && old.rec.state === "bound") {
      this.#commit(old.address, { ...old.rec, state: "released", expires: now });
    }
    this.#dropOffer(c.key);
    this.#reply(c, Dhcpv4MessageType.ACK, address, true);
  }

  #nak(c: Client, why: string): void {
    this.#dropOffer(c.key);
    this.#reply(c, Dhcpv4MessageType.NAK, 0, false, why);
  }

  /** Write `rec` to the store and then to the tables; false (and counted) when the store failed. */
  #commit(address: number, rec: LeaseRecord): boolean {
    try {
      this.#store.commit(
        rec,
        () => [...this.#byAddress.values()].map((b) => b.rec),
        this.#byAddress.size + (this.#byAddress.has(address) ? 0 : 1),
      );
    } catch {
      this.stats.leaseWriteFailedDropped++;
      return false;
    }
    this.#bind(address, rec);
    return true;
  }

  /** Bumped on every change of the lease tables (for caches of what they hold). */
  get version(): number {
    return this.#version;
  }
  #version = 0;

  #bind(address: number, rec: LeaseRecord): void {
    this.#version++;
    const prev = this.#byAddress.get(address);
    if (prev !== undefined) {
      const k = this.#keyOf(prev.rec);
      if (this.#byClient.get(k) === prev) this.#byClient.delete(k);
    }
    const b: Binding = { address, rec };
    this.#byAddress.set(address, b);
    if (rec.state !== "declined") this.#byClient.set(this.#keyOf(rec), b);
  }

  #keyOf(rec: LeaseRecord): string {
    return rec.clientId !== null ? `id:${rec.clientId}` : `mac:${rec.mac}`;
  }

  // ------------------------------------------------------------ allocation

  #requested(c: Client): number | null {
    return decodeUint(c.opts.get(Dhcpv4Option.REQUESTED_ADDRESS), 4);
  }

  #reservationFor(c: Client): Dhcpv4Reservation | undefined {
    return this.#reservedByKey.get(c.key) ??
      (c.clientId !== null ? this.#reservedByKey.get(`mac:${c.mac}`) : undefined);
  }

  #inPool(c: Client, a: number): boolean {
    for (const p of c.pools) if (a >= p.start && a <= p.end) return true;
    return false;
  }

  #onSubnet(c: Client, a: number): boolean {
    const mask = ipv4Mask(c.subnet.prefixLen);
    return ((a ^ c.subnet.address) & mask) === 0;
  }

  /** True when `a` may be leased to client `c` now. */
  #availableTo(c: Client, a: number, now: number): boolean {
    const res = this.#reservationFor(c);
    if (res !== undefined) return res.address === a && this.#freeFor(c.key, a, now);
    const r = this.#reservedAddr.get(a);
    if (r !== undefined) return false;
    return this.#inPool(c, a) && this.#freeFor(c.key, a, now);
  }

  /** No one else holds `a` (a live lease, a live decline, or an offer). */
  #freeFor(key: string, a: number, now: number): boolean {
    const off = this.#offered.get(a);
    if (off !== undefined && off !== key && this.#offers.get(off)!.until > now) return false;
    const b = this.#byAddress.get(a);
    if (b === undefined) return true;
    if (b.rec.state === "declined") return b.rec.expires <= now;
    if (this.#keyOf(b.rec) === key) return true;
    return b.rec.state === "released" || b.rec.expires <= now;
  }

  #allocate(c: Client, req: number | null, now: number): number | null {
    const res = this.#reservationFor(c);
    if (res !== undefined && this.#freeFor(c.key, res.address, now)) return res.address;
    const held = this.#byClient.get(c.key);
    if (held !== undefined && this.#availableTo(c, held.address, now)) return held.address;
    const offer = this.#offers.get(c.key);
    if (offer !== undefined && this.#availableTo(c, offer.address, now)) return offer.address;
    if (req !== null && this.#availableTo(c, req, now)) return req;
    return this.#neverUsed(c, now) ?? this.#oldestReclaimable(c, now);
  }

  /** The next address of the pools with no record and no offer (a cursor, so a run of DISCOVERs is O(1) each). */
  #neverUsed(c: Client, now: number): number | null {
    const pools = c.pools;
    const cur = c.cursor;
    let total = 0;
    for (const p of pools) total += p.end - p.start + 1;
    for (let i = 0; i < total; i++) {
      const p = pools[cur.pool]!;
      const a = p.start + cur.off;
      if (a >= p.end) {
        cur.off = 0;
        cur.pool = (cur.pool + 1) % pools.length;
      } else cur.off++;
      if (
        !this.#byAddress.has(a) && !this.#reservedAddr.has(a) && this.#freeFor(c.key, a, now) &&
        !this.#isSpecial(c, a)
      ) return a;
    }
    return null;
  }

  /** The lease that ended longest ago, for an exhausted pool. */
  #oldestReclaimable(c: Client, now: number): number | null {
    let best: Binding | null = null;
    for (const b of this.#byAddress.values()) {
      if (!this.#inPool(c, b.address) || this.#reservedAddr.has(b.address)) continue;
      if (!this.#freeFor(c.key, b.address, now) || this.#isSpecial(c, b.address)) continue;
      if (best === null || b.rec.expires < best.rec.expires) best = b;
    }
    return best?.address ?? null;
  }

  /** The network, broadcast and server's own address are never handed out. */
  #isSpecial(c: Client, a: number): boolean {
    if (a === c.server.address || a === c.giaddr || this.host.ipv4.isLocal(a)) return true;
    if (c.subnet.prefixLen >= 31) return false;
    const net = (c.subnet.address & ipv4Mask(c.subnet.prefixLen)) >>> 0;
    return a === net || a === ipv4Broadcast(c.subnet);
  }

  #holdOffer(key: string, a: number, now: number): void {
    this.#dropOffer(key);
    this.#offers.set(key, { address: a, until: now + OFFER_HOLD_MS });
    this.#offered.set(a, key);
    // Forget offers long past, so a flood of one-shot DISCOVERs does not grow the map.
    if (this.#offers.size > 4096) {
      for (const [k, o] of this.#offers) if (o.until <= now) this.#dropOffer(k);
    }
  }

  #dropOffer(key: string): void {
    const o = this.#offers.get(key);
    if (o === undefined) return;
    this.#offers.delete(key);
    if (this.#offered.get(o.address) === key) this.#offered.delete(o.address);
  }

  // ------------------------------------------------------------ reply

  /** Build and send an OFFER/ACK (with lease options when `lease`) or a NAK. */
  #reply(c: Client, type: number, yiaddr: number, lease: boolean, message?: string): void {
    const st = this.#settings;
    const srv = c.server;
    const opts: Dhcpv4OptionEntry[] = [
      [Dhcpv4Option.MESSAGE_TYPE, new Uint8Array([type])],
      [Dhcpv4Option.SERVER_ID, encodeU32(srv.address)],
    ];
    if (type === Dhcpv4MessageType.NAK) {
      if (message !== undefined) opts.push([Dhcpv4Option.MESSAGE, encodeText(message)]);
    } else {
      if (lease) {
        opts.push(
          [Dhcpv4Option.LEASE_TIME, encodeU32(st.leaseTime)],
          [Dhcpv4Option.RENEWAL_TIME, encodeU32(Math.floor(st.leaseTime * 0.5))],
          [Dhcpv4Option.REBINDING_TIME, encodeU32(Math.floor(st.leaseTime * 0.875))],
        );
      }
      this.#configOptions(c, opts);
    }
    // RFC 6842: the client identifier goes back as it came.
    const cid = c.opts.get(Dhcpv4Option.CLIENT_ID);
    if (cid !== undefined) opts.push([Dhcpv4Option.CLIENT_ID, cid]);
    // RFC 3046 §2.2: the relay agent information is echoed, last.
    const rai = c.giaddr !== 0 ? c.opts.get(Dhcpv4Option.RELAY_AGENT_INFO) : undefined;
    if (rai !== undefined) opts.push([Dhcpv4Option.RELAY_AGENT_INFO, rai]);
    const m = c.m;
    const n = writeDhcpv4(this.#out, 0, {
      op: BootpOp.REPLY,
      xid: m.xid(),
      // §4.3.2: a NAK through a relay goes with the broadcast bit, so the relay broadcasts it.
      flags: type === Dhcpv4MessageType.NAK && c.giaddr !== 0
        ? m.flags() | DHCPV4_FLAG_BROADCAST
        : m.flags(),
      ciaddr: type === Dhcpv4MessageType.NAK ? 0 : m.ciaddr(),
      yiaddr,
      siaddr: 0,
      giaddr: c.giaddr,
      chaddr: m.chaddr(),
    }, opts);
    const payload = this.#out.subarray(0, n);
    // RFC 2131 §4.1: where the reply goes.
    const ciaddr = m.ciaddr();
    let dst: number;
    let dstPort = DHCPV4_CLIENT_PORT;
    let linkDst: Uint8Array | undefined;
    if (c.giaddr !== 0) {
      // Through the relay: to its server port; it delivers to the client.
      dst = c.giaddr;
      dstPort = DHCPV4_SERVER_PORT;
    } else if (type === Dhcpv4MessageType.NAK || (m.flags() & DHCPV4_FLAG_BROADCAST) !== 0) {
      dst = LIMITED_BROADCAST;
      linkDst = BROADCAST_MAC;
    } else if (ciaddr !== 0) {
      dst = ciaddr;
    } else if (yiaddr !== 0) {
      dst = yiaddr;
      linkDst = m.chaddr().slice(0, 6);
    } else if (c.srcAddr !== 0) {
      dst = c.srcAddr;
    } else {
      dst = LIMITED_BROADCAST;
      linkDst = BROADCAST_MAC;
    }
    const sendOpts: UdpSendOptions = {
      nic: this.nic,
      src: srv.address,
      ...(linkDst !== undefined ? { linkDst } : {}),
    };
    if (type === Dhcpv4MessageType.ACK && lease) {
      // Group commit: the ACK leaves once the store has synced its lease,
      // one sync for every ACK of this burst (the clock's next turn).
      this.#commits.hold({ payload: payload.slice(), dst, dstPort, opts: sendOpts });
      return;
    }
    const ok = this.#ep.send(dst, dstPort, payload, sendOpts);
    if (!ok) this.stats.sendFailed++;
    else if (type === Dhcpv4MessageType.OFFER) this.stats.offersSent++;
    else if (type === Dhcpv4MessageType.ACK) this.stats.acksSent++;
    else this.stats.naksSent++;
  }

  /** The configured options: the usual ones always, option 121 and custom ones when asked for. */
  #configOptions(c: Client, out: Dhcpv4OptionEntry[]): void {
    const st = this.#settings;
    const srv = c.subnet;
    const routers = c.routers;
    const prl = c.opts.get(Dhcpv4Option.PARAMETER_REQUEST_LIST) ?? new Uint8Array(0);
    const asked = (code: number) => prl.includes(code);
    out.push([Dhcpv4Option.SUBNET_MASK, encodeU32(ipv4Mask(srv.prefixLen))]);
    if (srv.prefixLen < 31) {
      out.push([Dhcpv4Option.BROADCAST_ADDRESS, encodeU32(ipv4Broadcast(srv))]);
    }
    if (routers.length > 0) out.push([Dhcpv4Option.ROUTER, encodeIpv4List(routers)]);
    if (st.dnsServers.length > 0) {
      out.push([Dhcpv4Option.DNS_SERVERS, encodeIpv4List(st.dnsServers)]);
    }
    if (st.domain !== null) out.push([Dhcpv4Option.DOMAIN_NAME, encodeText(st.domain)]);
    if (st.search.length > 0) {
      out.push([Dhcpv4Option.DOMAIN_SEARCH, encodeDomainSearch(st.search)]);
    }
    if (st.mtu !== null) out.push([Dhcpv4Option.INTERFACE_MTU, encodeU16(st.mtu)]);
    if (st.ntpServers.length > 0) {
      out.push([Dhcpv4Option.NTP_SERVERS, encodeIpv4List(st.ntpServers)]);
    }
    if (st.routes.length > 0 && asked(Dhcpv4Option.CLASSLESS_ROUTES)) {
      // RFC 3442: a client that takes option 121 ignores option 3, so the
      // default route goes in too.
      const routes = [...st.routes];
      if (routers.length > 0 && !routes.some((r) => r.prefixLen === 0)) {
        routes.push({ prefix: 0, prefixLen: 0, router: routers[0]! });
      }
      out.push([Dhcpv4Option.CLASSLESS_ROUTES, encodeClasslessRoutes(routes)]);
    }
    for (const o of st.options) {
      if (o.alwaysSend || asked(o.code)) {
        const i = out.findIndex(([code]) => code === o.code);
        if (i >= 0) out[i] = [o.code, o.value];
        else out.push([o.code, o.value]);
      }
    }
  }
}

interface Client extends Scope {
  m: Dhcpv4Message;
  opts: Dhcpv4Options;
  mac: string;
  clientId: string | null;
  key: string;
  srcAddr: number;
  /** The relay the message came through, or 0. */
  giaddr: number;
}
