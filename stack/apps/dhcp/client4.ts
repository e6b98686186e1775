/**
 * A DHCPv4 client (RFC 2131) for one interface, as a WAN interface of a
 * gateway takes its address from the provider or the cloud: DISCOVER,
 * REQUEST, the ARP conflict check of RFC 5227 before the address is used
 * (DECLINE when another host answers), RENEW at T1 (unicast to the server),
 * REBIND at T2 (broadcast), expiry, NAK, and RELEASE when it stops.
 *
 * What a lease gives is installed in the stack: the address with its
 * prefix (option 1), the connected route, and the routes — RFC 3442
 * classless routes when the server sends them (option 3 is then ignored, as
 * the RFC says), else a default route through the first router (option 3);
 * routes carry source "dhcp" (`proto dhcp` in `show routes`) and the
 * configured metric. The DNS servers, domain and MTU are kept in
 * {@link Dhcpv4Client.lease} for the services that use them.
 *
 * It sets the BROADCAST flag (RFC 2131 §4.1: a client that cannot receive
 * unicast datagrams before its address is configured SHOULD), so the
 * servers' OFFER and ACK arrive as limited broadcasts the IPv4 layer takes
 * on an interface with no address. Retransmissions follow RFC 2131 §4.1
 * (4 s doubling to 64 s, ±1 s at random); a REQUEST unanswered four times
 * starts over; in RENEWING and REBINDING a retry comes after half the
 * time left to T2 or to the expiry, at least 60 s (§4.4.5). Everything runs
 * on the stack's clock and random source.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Udp, UdpDatagram, UdpEndpoint } from "../../transport/udp.ts";
import type { Ipv4 } from "../../ipv4/ipv4.ts";
import type { Clock, Timer } from "../../clock.ts";
import { type Random, randomBetween } from "../../random.ts";
import {
  BootpOp,
  type ClasslessRoute,
  decodeClasslessRoutes,
  decodeIpv4List,
  decodeText,
  decodeUint,
  DHCPV4_CLIENT_PORT,
  DHCPV4_FLAG_BROADCAST,
  DHCPV4_SERVER_PORT,
  Dhcpv4Message,
  Dhcpv4MessageType as T,
  Dhcpv4Option as O,
  type Dhcpv4OptionEntry,
  type Dhcpv4Options,
  encodeText,
  encodeU16,
  encodeU32,
  writeDhcpv4,
} from "../../wire/dhcpv4.ts";
import { ArpOp } from "../../wire/arp.ts";
import { formatIpv4, ipv4Mask } from "../../wire/ip_address.ts";
import { BROADCAST_MAC } from "../../wire/mac_address.ts";

/** Where the client is (RFC 2131 Figure 5, with the conflict check and the wait after a DECLINE). */
export type Dhcpv4ClientState =
  | "selecting"
  | "requesting"
  | "probing"
  | "bound"
  | "renewing"
  | "rebinding"
  | "declined"
  | "stopped";

/** How the client behaves. */
export interface Dhcpv4ClientSettings {
  /** Option 12, or null. */
  hostname: string | null;
  /** Option 61 as bytes (RFC 4361), or null: the server knows the client by its MAC. */
  clientId: Uint8Array | null;
  /** Metric of the routes the lease installs (systemd-networkd's default is 1024). */
  routeMetric: number;
  /** ARP probes before the address is used (RFC 5227 §2.1.1 sends 3); 0 skips the check. */
  probes: number;
  /** Milliseconds between probes, and the wait after the last one. */
  probeIntervalMs: number;
}

/** The defaults {@link Dhcpv4Client} takes for settings not given. */
export const DHCPV4_CLIENT_DEFAULTS: Dhcpv4ClientSettings = {
  hostname: null,
  clientId: null,
  routeMetric: 1024,
  probes: 2,
  probeIntervalMs: 1000,
};

/** What the server gave, as the client holds it. */
export interface Dhcpv4ClientLease {
  address: number;
  prefixLen: number;
  /** The server identifier (option 54). */
  server: number;
  routers: number[];
  dnsServers: number[];
  domain: string | null;
  mtu: number | null;
  /** Option 121 as sent (empty when the server sent none). */
  routes: ClasslessRoute[];
  /** Seconds: the lease, T1 and T2. */
  leaseTime: number;
  renewalTime: number;
  rebindingTime: number;
  /** Stack-clock milliseconds: when the REQUEST that got the ACK was sent (times count from there, §4.4.1). */
  start: number;
}

/** Counters of one DHCPv4 client. */
export interface Dhcpv4ClientStats {
  /** DHCPDISCOVER messages sent (retransmissions included). */
  discoversSent: number;
  /** DHCPREQUEST messages sent (selecting, renewing and rebinding). */
  requestsSent: number;
  /** DHCPDECLINE messages sent (another host answered for the offered address). */
  declinesSent: number;
  /** DHCPRELEASE messages sent. */
  releasesSent: number;
  /** DHCPOFFER messages taken. */
  offersReceived: number;
  /** DHCPACK messages taken. */
  acksReceived: number;
  /** DHCPNAK messages taken. */
  naksReceived: number;
  /** Leases that ran out without a renewal. */
  leasesExpired: number;
  /** Replies that do not parse (short, no magic cookie, bad options). */
  malformedDropped: number;
  /** Replies for another client (xid or chaddr differ) or from a server not asked. */
  notOursDropped: number;
  /** Replies of a type the client does not wait for now (an OFFER when bound, ...). */
  unexpectedDropped: number;
  /** OFFERs and ACKs without a usable address, server identifier or lease time. */
  unusableDropped: number;
  /** Messages the stack could not send. */
  sendFailed: number;
}

function newStats(): Dhcpv4ClientStats {
  return {
    discoversSent: 0,
    requestsSent: 0,
    declinesSent: 0,
    releasesSent: 0,
    offersReceived: 0,
    acksReceived: 0,
    naksReceived: 0,
    leasesExpired: 0,
    malformedDropped: 0,
    notOursDropped: 0,
    unexpectedDropped: 0,
    unusableDropped: 0,
    sendFailed: 0,
  };
}

/** What the client needs of a stack (its public layers). */
export interface Dhcpv4ClientHost {
  readonly udp: Udp;
  readonly ipv4: Ipv4;
  readonly clock: Clock;
  readonly random: Random;
}

const LIMITED_BROADCAST = 0xffffffff;
/** RFC 2131 §4.1: the first retransmission after 4 s, doubling to 64 s. */
const RETRANSMIT_FIRST_MS = 4_000;
const RETRANSMIT_MAX_MS = 64_000;
/** REQUESTs in REQUESTING before the client starts over. */
const REQUEST_TRIES = 4;
/** RFC 2131 §3.1 step 5: at least 10 s after a DECLINE before starting over. */
const DECLINE_WAIT_MS = 10_000;
/** §4.4.5: retries in RENEWING/REBINDING no closer than 60 s. */
const RENEW_RETRY_MIN_MS = 60_000;
/** The options asked for (option 55). */
const PARAMETERS = new Uint8Array([
  O.SUBNET_MASK,
  O.CLASSLESS_ROUTES,
  O.ROUTER,
  O.DNS_SERVERS,
  O.DOMAIN_NAME,
  O.INTERFACE_MTU,
  O.BROADCAST_ADDRESS,
  O.DOMAIN_SEARCH,
]);

/** The classful mask (RFC 2131 leaves option 1 optional; Linux clients fall back to it). */
function classfulPrefix(a: number): number {
  if (a >>> 31 === 0) return 8;
  if (a >>> 30 === 2) return 16;
  return 24;
}

/**
 * The DHCPv4 client of one interface. It starts at once (SELECTING) and
 * runs until {@link close}, which releases the lease.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock } from "../../mod.ts";
 * import { MemoryLink } from "../../../link/mod.ts";
 * import { Dhcpv4Client } from "./client4.ts";
 * const clock = new ManualClock();
 * const [a] = MemoryLink.pair({ clock });
 * const s = new Stack({ clock });
 * const nic = s.addNic(a, { name: "wan0", mac: new Uint8Array([2, 0, 0, 0, 0, 1]) });
 * const c = new Dhcpv4Client(s, nic);
 * console.assert(c.state === "selecting" && c.stats.discoversSent === 1);
 * c.close();
 * ```
 */
export class Dhcpv4Client {
  readonly stats: Dhcpv4ClientStats = newStats();
  readonly settings: Dhcpv4ClientSettings;
  #state: Dhcpv4ClientState = "selecting";
  #lease: Dhcpv4ClientLease | null = null;
  /** The address installed on the interface now (0: none). */
  #installed = 0;
  /** The OFFER being requested (selecting → requesting). */
  #offer: Dhcpv4ClientLease | null = null;
  #xid = 0;
  /** Stack-clock ms the current exchange began (the secs field). */
  #exchangeStart = 0;
  /** When the last REQUEST of this exchange left (the lease's times count from it). */
  #requestSent = 0;
  #tries = 0;
  #delay = RETRANSMIT_FIRST_MS;
  /** Wait before starting over after a NAK, doubled on each (reset when bound). */
  #nakBackoff = 0;
  #timer: Timer | null = null;
  #leaseTimers: Timer[] = [];
  #probesLeft = 0;
  /** The Ethernet source of the last ACK (the server, or the relay before it): where the RELEASE goes without ARP. */
  #serverMac: Uint8Array | null = null;
  readonly #ep: UdpEndpoint;
  readonly #out = new Uint8Array(576);
  readonly #arpWatch: (nic: Nic, op: number, spa: number, sha: Uint8Array, tpa: number) => void;
  /** Called after each change of the installed lease (bound, renewed, lost). */
  onChange: ((lease: Dhcpv4ClientLease | null) => void) | null = null;

  constructor(
    readonly host: Dhcpv4ClientHost,
    readonly nic: Nic,
    settings: Partial<Dhcpv4ClientSettings> = {},
  ) {
    this.settings = { ...DHCPV4_CLIENT_DEFAULTS, ...settings };
    this.#ep = host.udp.bindSocket({
      family: 4,
      port: DHCPV4_CLIENT_PORT,
      device: nic,
      onDatagram: (d) => this.#receive(d),
    });
    this.#arpWatch = (n, op, spa, sha, tpa) => this.#arp(n, op, spa, sha, tpa);
    host.ipv4.arp.watchers.add(this.#arpWatch);
    this.#startOver();
  }

  get state(): Dhcpv4ClientState {
    return this.#state;
  }

  /** The lease in use (bound, renewing, rebinding), or null. */
  get lease(): Dhcpv4ClientLease | null {
    return this.#installed !== 0 ? this.#lease : null;
  }

  /** Stack-clock milliseconds when the lease in use expires, or null. */
  get expires(): number | null {
    const l = this.lease;
    return l === null ? null : l.start + l.leaseTime * 1000;
  }

  /** Stop: RELEASE the lease (RFC 2131 §4.4.6), remove its address and routes, free the port. */
  close(): void {
    if (this.#state === "stopped") return;
    if (this.#installed !== 0 && this.#lease !== null) {
      this.#xid = this.host.random.uint32();
      // To the MAC the ACK came from: a RELEASE waiting for ARP would be lost
      // when the stack closes right after.
      this.#send(T.RELEASE, {
        ciaddr: this.#installed,
        dst: this.#lease.server,
        ...(this.#serverMac !== null ? { linkDst: this.#serverMac } : {}),
        options: [[O.SERVER_ID, encodeU32(this.#lease.server)]],
      });
      this.stats.releasesSent++;
    }
    this.#uninstall();
    this.#cancelTimers();
    this.#state = "stopped";
    this.host.ipv4.arp.watchers.delete(this.#arpWatch);
    this.#ep.close();
  }

  // ------------------------------------------------------------ states

  /** INIT: a fresh exchange, DISCOVER now. */
  #startOver(): void {
    this.#cancelTimers();
    this.#state = "selecting";
    this.#offer = null;
    this.#newExchange();
    this.#discover();
  }

  #newExchange(): void {
    this.#xid = this.host.random.uint32();
    this.#exchangeStart = this.host.clock.now();
    this.#tries = 0;
    this.#delay = RETRANSMIT_FIRST_MS;
  }

  /** §4.1: the next retransmission, 4 s doubling to 64 s, randomised by ±1 s. */
  #backoff(): number {
    const d = this.#delay + randomBetween(this.host.random, -1000, 1000);
    this.#delay = Math.min(this.#delay * 2, RETRANSMIT_MAX_MS);
    return d;
  }

  #discover(): void {
    const opts: Dhcpv4OptionEntry[] = [];
    if (this.#lease !== null) opts.push([O.REQUESTED_ADDRESS, encodeU32(this.#lease.address)]);
    this.#send(T.DISCOVER, { options: opts });
    this.stats.discoversSent++;
    this.#arm(this.#backoff(), () => this.#discover());
  }

  #request(): void {
    const o = this.#offer!;
    this.#requestSent = this.host.clock.now();
    this.#send(T.REQUEST, {
      options: [
        [O.REQUESTED_ADDRESS, encodeU32(o.address)],
        [O.SERVER_ID, encodeU32(o.server)],
      ],
    });
    this.stats.requestsSent++;
    this.#tries++;
    this.#arm(this.#backoff(), () => {
      if (this.#tries >= REQUEST_TRIES) this.#startOver();
      else this.#request();
    });
  }

  /** RENEWING (unicast to the server) or REBINDING (broadcast): REQUEST with ciaddr. */
  #extend(): void {
    const l = this.#lease!;
    this.#requestSent = this.host.clock.now();
    this.#send(T.REQUEST, {
      ciaddr: this.#installed,
      ...(this.#state === "renewing" ? { dst: l.server } : {}),
    });
    this.stats.requestsSent++;
    const now = this.host.clock.now();
    const until = this.#state === "renewing"
      ? l.start + l.rebindingTime * 1000
      : l.start + l.leaseTime * 1000;
    const wait = Math.max(RENEW_RETRY_MIN_MS, (until - now) / 2);
    // No retry past the next state change: its own timer takes over.
    if (now + wait < until) this.#arm(wait, () => this.#extend());
  }

  // ------------------------------------------------------------ receive

  #receive(d: UdpDatagram): void {
    const s = this.stats;
    const m = new Dhcpv4Message(d.buffer.data, d.payloadOffset, d.payloadLength);
    const opts = m.options();
    if (typeof opts === "string") {
      s.malformedDropped++;
      return;
    }
    if (m.op() !== BootpOp.REPLY || m.xid() !== this.#xid || !this.#ourChaddr(m)) {
      s.notOursDropped++;
      return;
    }
    const type = decodeUint(opts.get(O.MESSAGE_TYPE), 1);
    const st = this.#state;
    if (type === T.OFFER && st === "selecting") return this.#onOffer(m, opts);
    if (type === T.ACK && (st === "requesting" || st === "renewing" || st === "rebinding")) {
      const eth = d.buffer.networkOffset - 14;
      if (d.nic !== null && eth >= 0) this.#serverMac = d.buffer.data.slice(eth + 6, eth + 12);
      return this.#onAck(m, opts);
    }
    if (type === T.NAK && (st === "requesting" || st === "renewing" || st === "rebinding")) {
      const sid = decodeUint(opts.get(O.SERVER_ID), 4);
      const expected = st === "requesting" ? this.#offer?.server : this.#lease?.server;
      // A NAK from a server other than the one asked (requesting, renewing) is not ours.
      if (st !== "rebinding" && sid !== null && sid !== expected) {
        s.notOursDropped++;
        return;
      }
      s.naksReceived++;
      return this.#onNak();
    }
    s.unexpectedDropped++;
  }

  #ourChaddr(m: Dhcpv4Message): boolean {
    const c = m.chaddr();
    for (let i = 0; i < 6; i++) if (c[i] !== this.nic.mac[i]) return false;
    return true;
  }

  /** The lease an OFFER or ACK describes, or null when it lacks what a lease needs. */
  #leaseOf(m: Dhcpv4Message, opts: Dhcpv4Options, start: number): Dhcpv4ClientLease | null {
    const address = m.yiaddr();
    const server = decodeUint(opts.get(O.SERVER_ID), 4);
    const leaseTime = decodeUint(opts.get(O.LEASE_TIME), 4);
    if (address === 0 || (address >>> 28) >= 0xe || server === null || leaseTime === null) {
      return null;
    }
    const mask = decodeUint(opts.get(O.SUBNET_MASK), 4);
    let prefixLen = classfulPrefix(address);
    if (mask !== null) {
      // A mask that is not a run of ones is not a mask.
      const inv = ~mask >>> 0;
      if ((inv & (inv + 1)) !== 0) return null;
      prefixLen = 32 - Math.log2(inv + 1);
      if (prefixLen === 0) return null;
    }
    const list = (code: number) => {
      const v = opts.get(code);
      return v === undefined ? [] : (decodeIpv4List(v) ?? []);
    };
    const r121 = opts.get(O.CLASSLESS_ROUTES);
    const routes = r121 === undefined ? [] : decodeClasslessRoutes(r121);
    if (routes === null) return null;
    const dom = opts.get(O.DOMAIN_NAME);
    const mtu = decodeUint(opts.get(O.INTERFACE_MTU), 2);
    // RFC 2131 §4.4.5: T1 0.5 and T2 0.875 of the lease unless the server says.
    const infinite = leaseTime === 0xffffffff;
    let renewalTime = decodeUint(opts.get(O.RENEWAL_TIME), 4) ?? Math.floor(leaseTime * 0.5);
    let rebindingTime = decodeUint(opts.get(O.REBINDING_TIME), 4) ??
      Math.floor(leaseTime * 0.875);
    if (!infinite && (rebindingTime > leaseTime || renewalTime > rebindingTime)) {
      renewalTime = Math.floor(leaseTime * 0.5);
      rebindingTime = Math.floor(leaseTime * 0.875);
    }
    return {
      address,
      prefixLen,
      server,
      routers: list(O.ROUTER),
      dnsServers: list(O.DNS_SERVERS),
      domain: dom === undefined ? null : decodeText(dom),
      mtu: mtu !== null && mtu >= 68 ? mtu : null,
      routes,
      leaseTime,
      renewalTime,
      rebindingTime,
      start,
    };
  }

  #onOffer(m: Dhcpv4Message, opts: Dhcpv4Options): void {
    const o = this.#leaseOf(m, opts, 0);
    if (o === null) {
      this.stats.unusableDropped++;
      return;
    }
    // The first usable OFFER wins (as dhcpcd and systemd-networkd).
    this.stats.offersReceived++;
    this.#offer = o;
    this.#state = "requesting";
    this.#tries = 0;
    this.#delay = RETRANSMIT_FIRST_MS;
    this.#request();
  }

  #onAck(m: Dhcpv4Message, opts: Dhcpv4Options): void {
    const l = this.#leaseOf(m, opts, this.#requestSent);
    const st = this.#state;
    if (l === null || (st !== "requesting" && l.address !== this.#installed)) {
      this.stats.unusableDropped++;
      return;
    }
    this.stats.acksReceived++;
    this.#lease = l;
    this.#nakBackoff = 0;
    if (st === "requesting" && this.settings.probes > 0) {
      // RFC 2131 §4.4.1 / RFC 5227: make sure nobody uses it before it is ours.
      this.#state = "probing";
      this.#probesLeft = this.settings.probes;
      this.#probe();
      return;
    }
    this.#bind();
  }

  #probe(): void {
    const l = this.#lease!;
    if (this.#probesLeft === 0) return this.#bind();
    this.#probesLeft--;
    this.host.ipv4.arp.sendProbe(this.nic, l.address);
    this.#arm(this.settings.probeIntervalMs, () => this.#probe());
  }

  #arp(nic: Nic, op: number, spa: number, sha: Uint8Array, tpa: number): void {
    if (nic !== this.nic || this.#state !== "probing") return;
    const a = this.#lease!.address;
    let mine = true;
    for (let i = 0; i < 6; i++) if (sha[i] !== this.nic.mac[i]) mine = false;
    if (mine) return;
    // RFC 5227 §2.1.1: a packet from the address, or another host probing for it.
    if (spa === a || (op === ArpOp.REQUEST && spa === 0 && tpa === a)) this.#decline();
  }

  #decline(): void {
    const l = this.#lease!;
    this.#send(T.DECLINE, {
      options: [[O.REQUESTED_ADDRESS, encodeU32(l.address)], [O.SERVER_ID, encodeU32(l.server)]],
    });
    this.stats.declinesSent++;
    this.#lease = null;
    this.#cancelTimers();
    this.#state = "declined";
    this.#arm(DECLINE_WAIT_MS, () => this.#startOver());
  }

  #onNak(): void {
    // §3.1 step 5 / §4.4.5: the address is no longer ours; start over (after a
    // growing pause, so a server that NAKs every REQUEST is not flooded).
    this.#uninstall();
    this.#lease = null;
    this.#cancelTimers();
    this.#state = "selecting";
    const wait = this.#nakBackoff;
    this.#nakBackoff = Math.min(Math.max(1000, wait * 2), RETRANSMIT_MAX_MS);
    if (wait === 0) this.#startOver();
    else this.#arm(wait, () => this.#startOver());
  }

  // ------------------------------------------------------------ the lease in the stack

  #bind(): void {
    const l = this.#lease!;
    this.#cancelTimers();
    this.#state = "bound";
    if (this.#installed !== l.address) {
      this.#uninstall();
      this.host.ipv4.addAddress(this.nic, l.address, l.prefixLen);
      this.#installed = l.address;
    }
    this.#installRoutes(l);
    if (l.leaseTime !== 0xffffffff) {
      const now = this.host.clock.now();
      const at = (s: number) => Math.max(0, l.start + s * 1000 - now);
      this.#leaseTimers.push(
        this.host.clock.schedule(at(l.renewalTime), () => this.#enter("renewing")),
        this.host.clock.schedule(at(l.rebindingTime), () => this.#enter("rebinding")),
        this.host.clock.schedule(at(l.leaseTime), () => this.#expire()),
      );
    }
    this.onChange?.(l);
  }

  #enter(st: "renewing" | "rebinding"): void {
    this.#timer?.cancel();
    this.#state = st;
    this.#newExchange();
    this.#extend();
  }

  #expire(): void {
    this.stats.leasesExpired++;
    this.#uninstall();
    this.#startOver();
  }

  #installRoutes(l: Dhcpv4ClientLease): void {
    const routes = this.host.ipv4.routes;
    routes.removeWhere((r) => r.source === "dhcp" && r.nicId === this.nic.id);
    const add = (prefix: number, prefixLen: number, gateway: number | null) => {
      routes.add({
        prefix: (prefix & ipv4Mask(prefixLen)) >>> 0,
        prefixLen,
        type: "unicast",
        nicId: this.nic.id,
        gateway,
        metric: this.settings.routeMetric,
        source: "dhcp",
      });
    };
    const onLink = (g: number) => ((g ^ l.address) & ipv4Mask(l.prefixLen)) === 0;
    // A router outside the leased subnet (a /32 lease, as clouds give) is
    // reached on-link by a host route first.
    const via = (g: number) => {
      if (g !== 0 && !onLink(g)) add(g, 32, null);
      return g === 0 ? null : g;
    };
    if (l.routes.length > 0) {
      for (const r of l.routes) add(r.prefix, r.prefixLen, via(r.router));
    } else if (l.routers.length > 0) {
      add(0, 0, via(l.routers[0]!));
    }
  }

  #uninstall(): void {
    if (this.#installed === 0) return;
    this.host.ipv4.routes.removeWhere((r) => r.source === "dhcp" && r.nicId === this.nic.id);
    this.host.ipv4.removeAddress(this.nic, this.#installed);
    this.#installed = 0;
    this.onChange?.(null);
  }

  // ------------------------------------------------------------ send

  #send(
    type: number,
    o: { ciaddr?: number; dst?: number; linkDst?: Uint8Array; options?: Dhcpv4OptionEntry[] },
  ): void {
    const st = this.settings;
    const opts: Dhcpv4OptionEntry[] = [[O.MESSAGE_TYPE, new Uint8Array([type])]];
    if (st.clientId !== null) opts.push([O.CLIENT_ID, st.clientId]);
    opts.push(...(o.options ?? []));
    if (type === T.DISCOVER || type === T.REQUEST) {
      opts.push([O.PARAMETER_REQUEST_LIST, PARAMETERS]);
      opts.push([O.MAX_MESSAGE_SIZE, encodeU16(576)]);
      if (st.hostname !== null) opts.push([O.HOSTNAME, encodeText(st.hostname)]);
    }
    const secs = Math.min(0xffff, Math.floor((this.host.clock.now() - this.#exchangeStart) / 1000));
    const ciaddr = o.ciaddr ?? 0;
    const n = writeDhcpv4(this.#out, 0, {
      op: BootpOp.REQUEST,
      xid: this.#xid,
      secs: type === T.DECLINE || type === T.RELEASE ? 0 : secs,
      // §4.1: set while the client has no address to receive unicast on.
      flags: ciaddr === 0 ? DHCPV4_FLAG_BROADCAST : 0,
      ciaddr,
      chaddr: this.nic.mac,
    }, opts);
    const payload = this.#out.subarray(0, n);
    const ok = o.dst !== undefined
      ? this.#ep.send(o.dst, DHCPV4_SERVER_PORT, payload, {
        nic: this.nic,
        src: ciaddr,
        ...(o.linkDst !== undefined ? { linkDst: o.linkDst } : {}),
      })
      : this.#ep.send(LIMITED_BROADCAST, DHCPV4_SERVER_PORT, payload, {
        nic: this.nic,
        src: ciaddr,
        linkDst: BROADCAST_MAC,
      });
    if (!ok) this.stats.sendFailed++;
  }

  // ------------------------------------------------------------ timers

  #arm(ms: number, fn: () => void): void {
    this.#timer?.cancel();
    this.#timer = this.host.clock.schedule(Math.max(0, ms), () => {
      this.#timer = null;
      fn();
    });
  }

  #cancelTimers(): void {
    this.#timer?.cancel();
    this.#timer = null;
    for (const t of this.#leaseTimers) t.cancel();
    this.#leaseTimers = [];
  }

  /** `show`-style text of the lease, for logs. */
  describe(): string {
    const l = this.lease;
    if (l === null) return `${this.nic.name}: ${this.#state}, no lease`;
    return `${this.nic.name}: ${this.#state} ${formatIpv4(l.address)}/${l.prefixLen} from ${
      formatIpv4(l.server)
    }, lease ${l.leaseTime} s`;
  }
}
