/**
 * A DHCPv6 client (RFC 8415 §18) for one interface, as the WAN interface
 * of a gateway takes an address (IA_NA) and a delegated prefix (IA_PD)
 * from its upstream: SOLICIT, ADVERTISE (the highest preference wins; 255
 * at once), REQUEST, REPLY, RENEW at T1 and REBIND at T2, expiry, Rapid
 * Commit when asked, DECLINE when DAD finds the address in use, and
 * RELEASE when it stops. Retransmissions are §15's: an initial timeout
 * doubled up to a maximum, ±10 % at random, per message type (SOLICIT 1 s
 * to 3600 s; REQUEST 1 s to 30 s, 10 tries; RENEW and REBIND 10 s to
 * 600 s, until T2 or the end of the lease).
 *
 * The address is installed on the interface as a /128 (§18.2.10.1: the
 * on-link prefix comes from RAs) with its lifetimes, as `dhcp` (`dynamic`
 * in `show addresses`). A delegated prefix is handed to
 * {@link Dhcpv6Client.onPrefix} listeners (the LAN interfaces that
 * advertise parts of it) and gets an unreachable route for the whole of it
 * (RFC 7084 WPD-5: traffic for unused parts is not sent back upstream).
 * DNS servers and the search list are kept in the lease.
 *
 * Everything runs on the stack's clock and random source.
 *
 * @module
 */
import type { Nic } from "../../nic.ts";
import type { Udp, UdpDatagram, UdpEndpoint } from "../../transport/udp.ts";
import type { Ipv6 } from "../../ipv6/ipv6.ts";
import type { Ipv6InterfaceAddress } from "../../ipv6/_layer.ts";
import type { Clock, Timer } from "../../clock.ts";
import type { Random } from "../../random.ts";
import {
  ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
  decodeDomainList,
  DHCPV6_CLIENT_PORT,
  DHCPV6_SERVER_PORT,
  type Dhcpv6Message,
  Dhcpv6MessageType as T,
  Dhcpv6Option as O,
  type Dhcpv6OptionView,
  Dhcpv6Status,
  Dhcpv6Writer,
  duidLl,
  findOption,
  hexColon,
  parseDhcpv6,
  parseIa,
  parseIaAddr,
  parseIaPrefix,
  parseStatus,
  sameDuid,
} from "../../wire/dhcpv6.ts";
import { formatIpv6, ipv6Equal, ipv6Masked } from "../../wire/ip_address.ts";

/** Where the client is (RFC 8415 §18.2). */
export type Dhcpv6ClientState =
  | "soliciting"
  | "requesting"
  | "bound"
  | "renewing"
  | "rebinding"
  | "declined"
  | "stopped";

/** What the client asks for. */
export interface Dhcpv6ClientSettings {
  /** Ask for an address (IA_NA). */
  iaNa: boolean;
  /** Ask for a delegated prefix (IA_PD). */
  iaPd: boolean;
  /** The prefix length to ask for (an IAPREFIX hint, RFC 8415 §18.2.1), or null. */
  prefixHint: number | null;
  /** Offer Rapid Commit in SOLICIT. */
  rapidCommit: boolean;
}

/** The defaults {@link Dhcpv6Client} takes for settings not given. */
export const DHCPV6_CLIENT_DEFAULTS: Dhcpv6ClientSettings = {
  iaNa: true,
  iaPd: false,
  prefixHint: null,
  rapidCommit: false,
};

/** A delegated prefix as the client holds it (times in stack-clock ms). */
export interface Dhcpv6DelegatedPrefix {
  prefix: Uint8Array;
  prefixLen: number;
  preferredUntil: number;
  validUntil: number;
}

/** What the server gave. */
export interface Dhcpv6ClientLease {
  /** The server's DUID. */
  serverId: Uint8Array;
  /** The server's address (the REPLY's source). */
  server: Uint8Array;
  address: { address: Uint8Array; preferredUntil: number; validUntil: number } | null;
  prefix: Dhcpv6DelegatedPrefix | null;
  dnsServers: Uint8Array[];
  domains: string[];
  /** Seconds after `start`: RENEW and REBIND. */
  t1: number;
  t2: number;
  /** Stack-clock ms the REQUEST/RENEW/REBIND that got the REPLY was first sent. */
  start: number;
}

/** Counters of one DHCPv6 client. */
export interface Dhcpv6ClientStats {
  /** SOLICIT messages sent (retransmissions included). */
  solicitsSent: number;
  /** REQUEST messages sent. */
  requestsSent: number;
  /** RENEW messages sent. */
  renewsSent: number;
  /** REBIND messages sent. */
  rebindsSent: number;
  /** RELEASE messages sent. */
  releasesSent: number;
  /** DECLINE messages sent (DAD found the address in use). */
  declinesSent: number;
  /** ADVERTISE messages taken. */
  advertisesReceived: number;
  /** REPLY messages taken. */
  repliesReceived: number;
  /** Leases that ran out without a renewal. */
  leasesExpired: number;
  /** Messages that do not parse. */
  malformedDropped: number;
  /** Messages for another exchange or client (transaction id or client id differ). */
  notOursDropped: number;
  /** Messages of a type not waited for now. */
  unexpectedDropped: number;
  /** RECONFIGURE messages (this client never offers Reconfigure Accept, RFC 8415 §18.2.11: it drops them). */
  reconfigureDropped: number;
  /** ADVERTISEs and REPLYs with nothing usable in them (every IA refused, or bad lifetimes). */
  unusableDropped: number;
  /** Messages the stack could not send (or no link-local address to send from yet). */
  sendFailed: number;
}

function newStats(): Dhcpv6ClientStats {
  return {
    solicitsSent: 0,
    requestsSent: 0,
    renewsSent: 0,
    rebindsSent: 0,
    releasesSent: 0,
    declinesSent: 0,
    advertisesReceived: 0,
    repliesReceived: 0,
    leasesExpired: 0,
    malformedDropped: 0,
    notOursDropped: 0,
    unexpectedDropped: 0,
    reconfigureDropped: 0,
    unusableDropped: 0,
    sendFailed: 0,
  };
}

/** What the client needs of a stack. */
export interface Dhcpv6ClientHost {
  readonly udp: Udp;
  readonly ipv6: Ipv6;
  readonly clock: Clock;
  readonly random: Random;
}

/** RFC 8415 §7.6 transmission parameters (ms) and counts. */
const SOL = { irt: 1_000, mrt: 3_600_000, mrc: 0 };
const REQ = { irt: 1_000, mrt: 30_000, mrc: 10 };
const REN = { irt: 10_000, mrt: 600_000, mrc: 0 };
const REB = { irt: 10_000, mrt: 600_000, mrc: 0 };
const CNF_MAX_DELAY_MS = 1_000;
/** A pause before soliciting again after a DECLINE or a refused REQUEST. */
const RESTART_WAIT_MS = 10_000;
const INFINITY = 0xffffffff;

/** Our IAs in a message: the first address / prefix with its lifetimes, and each IA's status. */
interface ReadIas {
  na: { address: Uint8Array; preferred: number; valid: number; t1: number; t2: number } | null;
  pd: {
    prefix: Uint8Array;
    len: number;
    preferred: number;
    valid: number;
    t1: number;
    t2: number;
  } | null;
  naStatus: number | null;
  pdStatus: number | null;
}

interface Offer {
  msg: { serverId: Uint8Array; preference: number };
  naAddr: Uint8Array | null;
  pd: { prefix: Uint8Array; len: number } | null;
}

/**
 * The DHCPv6 client of one interface. It starts at once (after a random
 * delay up to 1 s, §18.2.1) and runs until {@link close}.
 *
 * @example
 * ```ts
 * import { Stack, ManualClock } from "../../mod.ts";
 * import { MemoryLink } from "../../../link/mod.ts";
 * import { Dhcpv6Client } from "./client6.ts";
 * const clock = new ManualClock();
 * const [a] = MemoryLink.pair({ clock });
 * const s = new Stack({ clock });
 * const nic = s.addNic(a, { name: "wan0", ipv6: true });
 * const c = new Dhcpv6Client(s, nic, { iaPd: true });
 * clock.advance(5_000);
 * console.assert(c.state === "soliciting" && c.stats.solicitsSent >= 1);
 * c.close();
 * ```
 */
export class Dhcpv6Client {
  readonly stats: Dhcpv6ClientStats = newStats();
  readonly settings: Dhcpv6ClientSettings;
  /** This client's DUID (DUID-LL of the interface's MAC). */
  readonly duid: Uint8Array;
  /** The IAID of its IA_NA and of its IA_PD (from the MAC, as dhcpcd derives it). */
  readonly iaid: number;
  #state: Dhcpv6ClientState = "soliciting";
  #lease: Dhcpv6ClientLease | null = null;
  #offers: Offer[] = [];
  #xid = 0;
  #exchangeStart = 0;
  #rt = 0;
  #tries = 0;
  #params = SOL;
  #timer: Timer | null = null;
  #leaseTimers: Timer[] = [];
  /** The address installed (its interface-address record), or null. */
  #installed: Ipv6InterfaceAddress | null = null;
  readonly #ep: UdpEndpoint;
  readonly #out = new Uint8Array(512);
  readonly #listen: (nic: Nic, a: Ipv6InterfaceAddress) => void;
  /** Called after each change of the lease (bound, renewed, lost). */
  onChange: ((lease: Dhcpv6ClientLease | null) => void) | null = null;
  /** Called when the delegated prefix appears, changes or goes (null). */
  readonly onPrefix: Set<(p: Dhcpv6DelegatedPrefix | null) => void> = new Set();

  constructor(
    readonly host: Dhcpv6ClientHost,
    readonly nic: Nic,
    settings: Partial<Dhcpv6ClientSettings> = {},
  ) {
    if (host.ipv6.nicState(nic) === undefined) {
      throw new Error(`a DHCPv6 client needs IPv6 on interface "${nic.name}"`);
    }
    this.settings = { ...DHCPV6_CLIENT_DEFAULTS, ...settings };
    this.duid = duidLl(nic.mac);
    const m = nic.mac;
    this.iaid = ((m[2]! << 24) | (m[3]! << 16) | (m[4]! << 8) | m[5]!) >>> 0;
    this.#ep = host.udp.bindSocket({
      family: 6,
      port: DHCPV6_CLIENT_PORT,
      device: nic,
      onDatagram: (d) => this.#receive(d),
    });
    this.#listen = (n, a) => {
      if (n === this.nic && a === this.#installed && a.state === "duplicate") this.#decline();
    };
    host.ipv6.addressListeners.add(this.#listen);
    // §18.2.1: the first SOLICIT waits a random time up to SOL_MAX_DELAY (1 s).
    this.#state = "soliciting";
    this.#arm(Math.floor(host.random.float() * CNF_MAX_DELAY_MS), () => this.#startSolicit());
  }

  get state(): Dhcpv6ClientState {
    return this.#state;
  }

  /** The lease in use, or null. */
  get lease(): Dhcpv6ClientLease | null {
    return this.#lease;
  }

  /** The delegated prefix held now, or null. */
  get prefix(): Dhcpv6DelegatedPrefix | null {
    return this.#lease?.prefix ?? null;
  }

  /** Stop: RELEASE what is held (§18.2.7), remove the address and route, free the port. */
  close(): void {
    if (this.#state === "stopped") return;
    const l = this.#lease;
    if (
      l !== null &&
      (this.#state === "bound" || this.#state === "renewing" || this.#state === "rebinding")
    ) {
      this.#newExchange(REN);
      this.#send(T.RELEASE, l.serverId, l);
      this.stats.releasesSent++;
    }
    this.#drop();
    this.#cancelTimers();
    this.#state = "stopped";
    this.host.ipv6.addressListeners.delete(this.#listen);
    this.#ep.close();
  }

  // ------------------------------------------------------------ exchanges

  #newExchange(p: typeof SOL): void {
    this.#xid = this.host.random.uint32() & 0xffffff;
    this.#exchangeStart = this.host.clock.now();
    this.#tries = 0;
    this.#params = p;
    this.#rt = 0;
  }

  /** §15: RT = IRT ± 10 %, then 2·RT ± 10 %, capped at MRT ± 10 %; SOLICIT's first is above IRT. */
  #nextRt(): number {
    const p = this.#params;
    const r = this.host.random.float() * 0.2 - 0.1;
    if (this.#rt === 0) {
      const rand = this.#params === SOL ? Math.abs(r) : r;
      this.#rt = p.irt + rand * p.irt;
    } else {
      this.#rt = 2 * this.#rt + r * this.#rt;
      if (p.mrt > 0 && this.#rt > p.mrt) this.#rt = p.mrt + r * p.mrt;
    }
    return Math.round(this.#rt);
  }

  #startSolicit(): void {
    this.#cancelTimers();
    this.#state = "soliciting";
    this.#offers = [];
    this.#newExchange(SOL);
    this.#solicit();
  }

  #solicit(): void {
    this.#send(T.SOLICIT, null, null);
    this.stats.solicitsSent++;
    this.#tries++;
    this.#arm(this.#nextRt(), () => {
      // §18.2.1: after the first RT, take the best ADVERTISE collected.
      if (this.#offers.length > 0) return this.#choose();
      this.#solicit();
    });
  }

  #choose(): void {
    const best = this.#offers.reduce((a, b) => (b.msg.preference > a.msg.preference ? b : a));
    this.#offers = [];
    this.#state = "requesting";
    this.#newExchange(REQ);
    this.#request(best);
  }

  #request(o: Offer): void {
    const pending: Dhcpv6ClientLease = {
      serverId: o.msg.serverId,
      server: new Uint8Array(16),
      address: o.naAddr === null ? null : { address: o.naAddr, preferredUntil: 0, validUntil: 0 },
      prefix: o.pd === null
        ? null
        : { prefix: o.pd.prefix, prefixLen: o.pd.len, preferredUntil: 0, validUntil: 0 },
      dnsServers: [],
      domains: [],
      t1: 0,
      t2: 0,
      start: this.#exchangeStart,
    };
    this.#send(T.REQUEST, o.msg.serverId, pending);
    this.stats.requestsSent++;
    this.#tries++;
    this.#arm(this.#nextRt(), () => {
      if (this.#tries >= REQ.mrc) this.#startSolicit();
      else this.#request(o);
    });
  }

  #enter(st: "renewing" | "rebinding"): void {
    this.#timer?.cancel();
    this.#state = st;
    this.#newExchange(st === "renewing" ? REN : REB);
    this.#extend();
  }

  /** RENEW (to the server that gave the lease) or REBIND (any server), until T2 or the lease's end. */
  #extend(): void {
    const l = this.#lease!;
    const renewing = this.#state === "renewing";
    this.#send(renewing ? T.RENEW : T.REBIND, renewing ? l.serverId : null, l);
    this.#tries++;
    if (renewing) this.stats.renewsSent++;
    else this.stats.rebindsSent++;
    const until = renewing ? l.start + l.t2 * 1000 : this.#validUntil(l);
    const wait = this.#nextRt();
    // No retry past the next state change: its own timer takes over.
    if (this.host.clock.now() + wait < until) this.#arm(wait, () => this.#extend());
  }

  // ------------------------------------------------------------ receive

  #receive(d: UdpDatagram): void {
    const s = this.stats;
    const data = d.buffer.data;
    const m = parseDhcpv6(data.subarray(d.payloadOffset, d.payloadOffset + d.payloadLength));
    if (typeof m === "string") {
      s.malformedDropped++;
      return;
    }
    if ("hopCount" in m) {
      s.unexpectedDropped++;
      return;
    }
    if (m.msgType === T.RECONFIGURE) {
      // It sends no Reconfigure Accept option, so a server may not reconfigure it (§18.2.11).
      s.reconfigureDropped++;
      return;
    }
    const cid = findOption(m.options, O.CLIENTID);
    const sid = findOption(m.options, O.SERVERID);
    if (m.xid !== this.#xid || cid === undefined || !sameDuid(cid, this.duid)) {
      s.notOursDropped++;
      return;
    }
    if (sid === undefined) {
      s.unusableDropped++;
      return;
    }
    const st = this.#state;
    if (m.msgType === T.ADVERTISE && st === "soliciting") return this.#onAdvertise(m, sid);
    if (m.msgType === T.REPLY) {
      const src = data.slice(d.src6Offset, d.src6Offset + 16);
      if (st === "soliciting" && findOption(m.options, O.RAPID_COMMIT) !== undefined) {
        return this.#onReply(m, sid, src);
      }
      if (st === "requesting" || st === "renewing" || st === "rebinding") {
        return this.#onReply(m, sid, src);
      }
    }
    s.unexpectedDropped++;
  }

  /** The IAs of ours in a message: the first address / prefix with lifetimes, or a status. */
  #read(m: Dhcpv6Message): ReadIas {
    const out: ReadIas = { na: null, pd: null, naStatus: null, pdStatus: null };
    for (const o of m.options) {
      if (o.code !== O.IA_NA && o.code !== O.IA_PD) continue;
      const ia = parseIa(o.data);
      if (typeof ia === "string") continue;
      if (ia.iaid !== this.iaid) continue;
      // §18.2.10.1 / §21.4: T1 > T2 (both non-zero) makes the IA unusable.
      if (ia.t1 > ia.t2 && ia.t2 !== 0) continue;
      const status = statusOf(ia.options);
      if (o.code === O.IA_NA) {
        out.naStatus = status;
        for (const io of ia.options) {
          if (io.code !== O.IAADDR) continue;
          const a = parseIaAddr(io.data);
          if (typeof a === "string" || a.preferred > a.valid) continue;
          // A value with lifetimes takes the place of one being taken away (lifetime 0).
          if (out.na !== null && (out.na.valid > 0 || a.valid === 0)) continue;
          out.na = {
            address: a.address.slice(),
            preferred: a.preferred,
            valid: a.valid,
            t1: ia.t1,
            t2: ia.t2,
          };
        }
      } else {
        out.pdStatus = status;
        for (const io of ia.options) {
          if (io.code !== O.IAPREFIX) continue;
          const p = parseIaPrefix(io.data);
          if (typeof p === "string" || p.preferred > p.valid || p.prefixLen > 128) continue;
          if (out.pd !== null && (out.pd.valid > 0 || p.valid === 0)) continue;
          out.pd = {
            prefix: ipv6Masked(p.prefix, p.prefixLen),
            len: p.prefixLen,
            preferred: p.preferred,
            valid: p.valid,
            t1: ia.t1,
            t2: ia.t2,
          };
        }
      }
    }
    return out;
  }

  #onAdvertise(m: Dhcpv6Message, sid: Uint8Array): void {
    const r = this.#read(m);
    // §18.2.9: an ADVERTISE with nothing for any IA asked is ignored.
    const na = this.settings.iaNa ? r.na : null;
    const pd = this.settings.iaPd ? r.pd : null;
    if (na === null && pd === null) {
      this.stats.unusableDropped++;
      return;
    }
    this.stats.advertisesReceived++;
    const pref = findOption(m.options, O.PREFERENCE);
    const preference = pref !== undefined && pref.length === 1 ? pref[0]! : 0;
    const offer: Offer = {
      msg: { serverId: sid.slice(), preference },
      naAddr: na?.address ?? null,
      pd: pd === null ? null : { prefix: pd.prefix, len: pd.len },
    };
    this.#offers.push(offer);
    // §18.2.1: preference 255, or the first RT already passed, is taken at once.
    if (preference === 255 || this.#tries > 1) this.#choose();
  }

  #onReply(m: Dhcpv6Message, sid: Uint8Array, src: Uint8Array): void {
    const top = statusOf(m.options);
    const r = this.#read(m);
    const st = this.#state;
    if (top === Dhcpv6Status.USE_MULTICAST || top === Dhcpv6Status.UNSPEC_FAIL) {
      // We always multicast; an UnspecFail: try again at the next retransmission.
      this.stats.unusableDropped++;
      return;
    }
    const noBinding = r.naStatus === Dhcpv6Status.NO_BINDING ||
      r.pdStatus === Dhcpv6Status.NO_BINDING;
    if (noBinding && (st === "renewing" || st === "rebinding")) {
      // §18.2.10.1: the server lost our binding: ask again from the start.
      this.stats.repliesReceived++;
      this.#drop();
      this.#startSolicit();
      return;
    }
    const na = this.settings.iaNa ? r.na : null;
    const pd = this.settings.iaPd ? r.pd : null;
    const start = this.#exchangeStart;
    const until = (s: number) => (s === INFINITY ? Infinity : start + s * 1000);
    // Lifetimes of 0 take the value away (§18.2.10.1).
    const address = na !== null && na.valid > 0
      ? { address: na.address, preferredUntil: until(na.preferred), validUntil: until(na.valid) }
      : null;
    const prefix = pd !== null && pd.valid > 0
      ? {
        prefix: pd.prefix,
        prefixLen: pd.len,
        preferredUntil: until(pd.preferred),
        validUntil: until(pd.valid),
      }
      : null;
    if (address === null && prefix === null) {
      this.stats.unusableDropped++;
      if (st === "requesting" || st === "soliciting") {
        // Refused (NoAddrsAvail / NoPrefixAvail): solicit again after a pause.
        this.#cancelTimers();
        this.#state = "soliciting";
        this.#arm(RESTART_WAIT_MS, () => this.#startSolicit());
      }
      return;
    }
    this.stats.repliesReceived++;
    // T1/T2: the shortest of the IAs we got, else 0.5 / 0.8 of the shortest preferred lifetime.
    const held = [na, pd].filter((x) => x !== null && x.valid > 0) as {
      preferred: number;
      t1: number;
      t2: number;
    }[];
    const minPref = Math.min(...held.map((x) => x.preferred));
    let t1 = Math.min(...held.map((x) => x.t1 === 0 ? Infinity : x.t1));
    let t2 = Math.min(...held.map((x) => x.t2 === 0 ? Infinity : x.t2));
    if (!Number.isFinite(t1)) t1 = minPref === INFINITY ? INFINITY : Math.floor(minPref * 0.5);
    if (!Number.isFinite(t2)) t2 = minPref === INFINITY ? INFINITY : Math.floor(minPref * 0.8);
    if (t1 > t2) t1 = Math.floor(t2 * 0.625);
    const dns = findOption(m.options, O.DNS_SERVERS);
    const dom = findOption(m.options, O.DOMAIN_LIST);
    const lease: Dhcpv6ClientLease = {
      serverId: sid.slice(),
      server: src,
      address,
      prefix,
      dnsServers: dns === undefined
        ? []
        : Array.from({ length: Math.floor(dns.length / 16) }, (_, i) =>
          dns.slice(16 * i, 16 * i + 16)),
      domains: dom === undefined ? [] : decodeDomainList(dom) ?? [],
      t1,
      t2,
      start,
    };
    this.#bind(lease);
  }

  // ------------------------------------------------------------ the lease in the stack

  #validUntil(l: Dhcpv6ClientLease): number {
    return Math.max(l.address?.validUntil ?? 0, l.prefix?.validUntil ?? 0);
  }

  #bind(l: Dhcpv6ClientLease): void {
    const prev = this.#lease;
    this.#cancelTimers();
    this.#state = "bound";
    this.#lease = l;
    const ipv6 = this.host.ipv6;
    // The address: a /128 with the lease's lifetimes.
    if (
      this.#installed !== null &&
      (l.address === null || !ipv6Equal(this.#installed.address, l.address.address))
    ) {
      ipv6.removeAddress(this.nic, this.#installed.address);
      this.#installed = null;
    }
    if (l.address !== null) {
      if (this.#installed === null) {
        this.#installed = ipv6.addAddress(this.nic, l.address.address, 128, {
          origin: "dhcp",
          validUntil: l.address.validUntil,
          preferredUntil: l.address.preferredUntil,
        });
      } else {
        this.#installed.validUntil = l.address.validUntil;
        this.#installed.preferredUntil = l.address.preferredUntil;
        if (
          this.#installed.state === "deprecated" && l.address.preferredUntil > this.host.clock.now()
        ) {
          this.#installed.state = "preferred";
        }
      }
    }
    // The delegated prefix: an unreachable route for the whole of it, and the listeners.
    const pp = prev?.prefix ?? null;
    const np = l.prefix;
    const same = pp !== null && np !== null && pp.prefixLen === np.prefixLen &&
      ipv6Equal(pp.prefix, np.prefix);
    if (pp !== null && !same) this.#unroute(pp);
    if (np !== null) {
      if (!same) {
        ipv6.routes.add({
          prefix: np.prefix,
          prefixLen: np.prefixLen,
          type: "unreachable",
          nicId: 0,
          gateway: null,
          metric: 0xffffffff,
          source: "dhcp",
        });
      }
      for (const f of this.onPrefix) f(np);
    } else if (pp !== null) {
      for (const f of this.onPrefix) f(null);
    }
    const now = this.host.clock.now();
    if (l.t1 !== INFINITY) {
      const at = (s: number) => Math.max(0, l.start + s * 1000 - now);
      this.#leaseTimers.push(
        this.host.clock.schedule(at(l.t1), () => this.#enter("renewing")),
        this.host.clock.schedule(at(l.t2), () => this.#enter("rebinding")),
      );
    }
    const end = this.#validUntil(l);
    if (end !== Infinity) {
      this.#leaseTimers.push(
        this.host.clock.schedule(Math.max(0, end - now), () => this.#expire()),
      );
    }
    this.onChange?.(l);
  }

  #expire(): void {
    this.stats.leasesExpired++;
    this.#drop();
    this.#startSolicit();
  }

  #unroute(p: Dhcpv6DelegatedPrefix): void {
    this.host.ipv6.routes.remove(
      p.prefix,
      p.prefixLen,
      (r) => r.source === "dhcp" && r.type === "unreachable",
    );
  }

  /** Remove what the lease installed and tell the listeners. */
  #drop(): void {
    const l = this.#lease;
    this.#lease = null;
    if (this.#installed !== null) {
      this.host.ipv6.removeAddress(this.nic, this.#installed.address);
      this.#installed = null;
    }
    if (l?.prefix) {
      this.#unroute(l.prefix);
      for (const f of this.onPrefix) f(null);
    }
    if (l !== null) this.onChange?.(null);
  }

  /** DAD found the address in use: DECLINE it (§18.2.8) and start over after a pause. */
  #decline(): void {
    const l = this.#lease;
    if (l === null || l.address === null) return;
    this.#newExchange(REQ);
    this.#send(T.DECLINE, l.serverId, { ...l, prefix: null });
    this.stats.declinesSent++;
    this.#drop();
    this.#cancelTimers();
    this.#state = "declined";
    this.#arm(RESTART_WAIT_MS, () => this.#startSolicit());
  }

  // ------------------------------------------------------------ send

  /** Build and send one message: the IAs asked for, with what `l` holds in them. */
  #send(type: number, serverId: Uint8Array | null, l: Dhcpv6ClientLease | null): void {
    const st = this.settings;
    const w = new Dhcpv6Writer(this.#out);
    w.header(type, this.#xid);
    w.option(O.CLIENTID, this.duid);
    if (serverId !== null) w.option(O.SERVERID, serverId);
    const elapsed = Math.min(
      0xffff,
      Math.floor((this.host.clock.now() - this.#exchangeStart) / 10),
    );
    w.open(O.ELAPSED_TIME).u16(this.#tries === 0 ? 0 : elapsed).close();
    const release = type === T.RELEASE || type === T.DECLINE;
    if (!release) {
      // §18.2: SOL_MAX_RT in every ORO of a SOLICIT, and the DNS options.
      w.open(O.ORO).u16(O.DNS_SERVERS).u16(O.DOMAIN_LIST).u16(O.SOL_MAX_RT).close();
    }
    if (type === T.SOLICIT && st.rapidCommit) w.option(O.RAPID_COMMIT);
    if (st.iaNa && (!release || l?.address)) {
      w.open(O.IA_NA).u32(this.iaid).u32(0).u32(0);
      if (l?.address) w.open(O.IAADDR).raw(l.address.address).u32(0).u32(0).close();
      w.close();
    }
    if (st.iaPd && (!release || l?.prefix)) {
      w.open(O.IA_PD).u32(this.iaid).u32(0).u32(0);
      if (l?.prefix) {
        w.open(O.IAPREFIX).u32(0).u32(0).u8(l.prefix.prefixLen).raw(l.prefix.prefix).close();
      } else if (st.prefixHint !== null) {
        w.open(O.IAPREFIX).u32(0).u32(0).u8(st.prefixHint).raw(new Uint8Array(16)).close();
      }
      w.close();
    }
    const from = this.host.ipv6.linkLocalOf(this.nic);
    if (from === null) {
      this.stats.sendFailed++;
      return;
    }
    const ok = this.#ep.send(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, DHCPV6_SERVER_PORT, w.bytes(), {
      nic: this.nic,
      src: from,
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
    const l = this.#lease;
    if (l === null) return `${this.nic.name}: DHCPv6 ${this.#state}, no lease`;
    const parts = [`${this.nic.name}: DHCPv6 ${this.#state}`];
    if (l.address !== null) parts.push(`address ${formatIpv6(l.address.address)}`);
    if (l.prefix !== null) {
      parts.push(`prefix ${formatIpv6(l.prefix.prefix)}/${l.prefix.prefixLen}`);
    }
    parts.push(`from ${hexColon(l.serverId)}`);
    return parts.join(" ");
  }
}

function statusOf(opts: readonly Dhcpv6OptionView[]): number | null {
  const s = findOption(opts, O.STATUS_CODE);
  return s === undefined ? null : parseStatus(s)?.code ?? null;
}
