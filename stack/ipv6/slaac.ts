/**
 * Router Advertisements, the host side (RFC 4861 §6.3, RFC 4191 §3,
 * RFC 8106 §5.3) and stateless address autoconfiguration (RFC 4862 §5.5):
 * Router Solicitations at start, RA validation (§6.1.2), the default
 * router list, the prefix list, Route Information, link parameters, DNS
 * options, and SLAAC addresses with their lifetimes, all bounded per
 * interface against RA floods.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Nic } from "../nic.ts";
import type { Timer } from "../clock.ts";
import type { Ipv6, Ipv6InterfaceAddress } from "./ipv6.ts";
import { ALL_ROUTERS } from "./ipv6.ts";
import { NdpPreference, type NdpRepr } from "../wire/ndp.ts";
import { IPV6_MIN_MTU, type Ipv6Packet } from "../wire/ipv6.ts";
import { formatIpv6, ipv6Equal, ipv6IsLinkLocalUnicast, ipv6Masked } from "../wire/ip_address.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import { addressFromInterfaceId, eui64InterfaceId, stablePrivacyIid } from "./interface_id.ts";
import type { RaStats } from "./ra_stats.ts";

const log = getLogger(["tapir", "ra"]);

/** RFC 4861 §10 host constants. */
export const RS_CONSTANTS = {
  MAX_RTR_SOLICITATION_DELAY_MS: 1_000,
  RTR_SOLICITATION_INTERVAL_MS: 4_000,
  MAX_RTR_SOLICITATIONS: 3,
} as const;

/** RFC 4862 §5.5.3 (e): two hours. */
export const TWO_HOURS_MS = 2 * 3600_000;
/** RFC 7217 §6: IDGEN_RETRIES. */
const IDGEN_RETRIES = 3;
/** Most RDNSS servers and DNSSL domains kept per interface. */
export const MAX_DNS_ENTRIES = 8;

/** Settings of the host side of one interface. */
export interface RaHostOptions {
  maxRouters: number;
  maxPrefixes: number;
  maxAddresses: number;
  addrGenMode: "eui64" | "stable-privacy";
  /** RFC 7217 secret (16 bytes) for `stable-privacy`. */
  stableSecret?: Uint8Array;
  /** Send Router Solicitations at start (default true). */
  solicit: boolean;
}

/** A default router as {@link RaHost.state} reports it. */
export interface RaRouterInfo {
  address: string;
  preference: "high" | "medium" | "low";
  /** Seconds left. */
  lifetime: number;
}

/** What the host side learned on one interface. */
export interface RaHostState {
  routers: RaRouterInfo[];
  prefixes: {
    prefix: string;
    onLink: boolean;
    autonomous: boolean;
    /** Seconds left (null: infinite). */
    validLifetime: number | null;
    preferredLifetime: number | null;
  }[];
  addresses: {
    address: string;
    state: string;
    validLifetime: number | null;
    preferredLifetime: number | null;
  }[];
  routes: { prefix: string; via: string; preference: string; lifetime: number | null }[];
  rdnss: { address: string; lifetime: number | null }[];
  dnssl: { domain: string; lifetime: number | null }[];
  mtu: number;
  hopLimit: number;
  managed: boolean;
  other: boolean;
  solicitationsSent: number;
}

interface Router {
  address: Uint8Array;
  key: string;
  preference: number;
  expires: number;
  /** RAs heard from it: a flood's random routers are heard once. */
  heard: number;
}

/**
 * RAs a second parsed from routers in the default router list (or waiting
 * for room in it), per interface. RFC 4861 §10 has a router send at most one
 * unsolicited RA every MIN_RTR_ADV_INTERVAL (3 s) and answers to
 * solicitations at most every MIN_DELAY_BETWEEN_RAS (3 s): 50 a second is
 * room for every router a link has, and a bound on what a flood that
 * spoofs a known router's address costs.
 */
export const RA_KNOWN_PER_SECOND = 50;
/**
 * RAs a second parsed from sources not known as routers, per interface:
 * what a flood of RAs from random sources gets through (the rest are
 * counted in `advertisementsRateLimited` before they are parsed). One of
 * flood_router26 (25 prefixes) costs about 0.2 ms to parse and refuse: at
 * most 1 % of a CPU. A new router's first RA passes once the flood stops
 * (the bucket refills within a second of its end, the flood's backlog
 * drained), its second takes the place of an entry the flood left (see
 * `#displace`).
 */
export const RA_NEW_PER_SECOND = 50;

/**
 * How long after its last rate-limited RA an interface counts as flooded:
 * meanwhile RAs of routers not heard before set no link parameters (cur
 * hop limit, reachable time, retrans timer, M/O flags, MTU).
 */
export const RA_FLOOD_QUIET_MS = 10_000;

/**
 * The longest Retrans Timer taken from an RA (RFC 4861 §6.3.4 sets no
 * bound; RETRANS_TIMER is 1 s): flood_router26 sends 1,966,080 ms, and a
 * neighbour whose first answer was lost would then stay unresolved for 32
 * minutes. A longer value is ignored (`linkParametersIgnored`).
 */
export const RA_RETRANS_TIMER_MAX_MS = 60_000;

/** Routers (prefixes) heard while their list was full, remembered for their second RA (at most this many). */
const WAITING_ENTRIES = 64;

interface Prefix {
  key: string;
  prefix: Uint8Array;
  prefixLen: number;
  onLink: boolean;
  onLinkExpires: number;
  autonomous: boolean;
  addr: Ipv6InterfaceAddress | null;
  dadCounter: number;
  /** Prefix Information options heard for it: a flood's random prefixes are heard once. */
  heard: number;
}

interface RaRoute {
  key: string;
  prefix: Uint8Array;
  prefixLen: number;
  via: Uint8Array;
  preference: number;
  expires: number;
}

interface HostNic {
  nic: Nic;
  opts: RaHostOptions;
  linkMtu: number;
  routers: Map<string, Router>;
  /** Routers heard once while the list was full (key → RAs heard), oldest first. */
  waitingRouters: Map<string, number>;
  /** The same for prefixes. */
  waitingPrefixes: Map<string, number>;
  prefixes: Map<string, Prefix>;
  routes: Map<string, RaRoute>;
  rdnss: Map<string, number>;
  dnssl: Map<string, number>;
  rsTimer: Timer | null;
  /** RAs from routers it knows (listed or waiting) it parses, per second ({@link RaHost.admit}). */
  knownLimit: TokenBucket;
  /** RAs from any other source it parses, per second. */
  newLimit: TokenBucket;
  /** Until this clock time an RA flood is on (an RA was rate-limited less than RA_FLOOD_QUIET_MS ago). */
  floodUntil: number;
  rsSent: number;
  gotRa: boolean;
  managed: boolean;
  other: boolean;
}

/** RFC 4191 §2.1: wire preference → route preference (reserved reads as medium). */
function routePreference(bits: number): number {
  return bits === NdpPreference.HIGH ? 1 : bits === NdpPreference.LOW ? -1 : 0;
}

function preferenceName(p: number): "high" | "medium" | "low" {
  return p > 0 ? "high" : p < 0 ? "low" : "medium";
}

/** A 32-bit seconds lifetime → ms (0xffffffff → Infinity). */
function lifetimeMs(s: number): number {
  return s === 0xffffffff ? Infinity : s * 1000;
}

/** The host side of RAs (accept_ra) for every interface that enabled it. */
export class RaHost {
  #nics = new Map<number, HostNic>();
  #timer: Timer | null = null;
  #timerAt = Infinity;

  constructor(
    readonly ipv6: Ipv6,
    readonly stats: RaStats,
    readonly send: (nic: Nic, src: Uint8Array, dst: Uint8Array, repr: NdpRepr) => boolean,
  ) {}

  /** Accept RAs on `nic`; solicit routers after a random delay (RFC 4861 §6.3.7). */
  enable(nic: Nic, o: Partial<RaHostOptions> = {}): void {
    if (this.#nics.has(nic.id)) return;
    const h: HostNic = {
      nic,
      opts: {
        maxRouters: o.maxRouters ?? 16,
        maxPrefixes: o.maxPrefixes ?? 16,
        maxAddresses: o.maxAddresses ?? 16,
        addrGenMode: o.addrGenMode ?? "eui64",
        stableSecret: o.stableSecret,
        solicit: o.solicit ?? true,
      },
      linkMtu: nic.mtu(),
      routers: new Map(),
      waitingRouters: new Map(),
      waitingPrefixes: new Map(),
      prefixes: new Map(),
      routes: new Map(),
      rdnss: new Map(),
      dnssl: new Map(),
      rsTimer: null,
      knownLimit: new TokenBucket(this.ipv6.stack.clock, RA_KNOWN_PER_SECOND, RA_KNOWN_PER_SECOND),
      newLimit: new TokenBucket(this.ipv6.stack.clock, RA_NEW_PER_SECOND, RA_NEW_PER_SECOND),
      floodUntil: -Infinity,
      rsSent: 0,
      gotRa: false,
      managed: false,
      other: false,
    };
    this.#nics.set(nic.id, h);
    if (h.opts.solicit) {
      const delay = this.ipv6.stack.random.float() * RS_CONSTANTS.MAX_RTR_SOLICITATION_DELAY_MS;
      h.rsTimer = this.ipv6.stack.clock.schedule(delay, () => this.#solicit(h));
    }
  }

  /** Stop accepting RAs on `nic` (it is going away): its timer stops, its learned state is forgotten. */
  disable(nic: Nic): void {
    const h = this.#nics.get(nic.id);
    if (h === undefined) return;
    h.rsTimer?.cancel();
    this.#nics.delete(nic.id);
  }

  /** True when `nic` accepts RAs. */
  enabled(nic: Nic): boolean {
    return this.#nics.has(nic.id);
  }

  /** Stop every timer (learned state stays as it is). */
  close(): void {
    for (const h of this.#nics.values()) {
      h.rsTimer?.cancel();
      h.rsTimer = null;
    }
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  /** RFC 4861 §6.3.7: from the link-local address with SLLA, or from :: without. */
  #solicit(h: HostNic): void {
    h.rsTimer = null;
    if (h.gotRa || h.rsSent >= RS_CONSTANTS.MAX_RTR_SOLICITATIONS) return;
    const ll = this.ipv6.linkLocalOf(h.nic);
    const repr: NdpRepr = {
      kind: "routerSolicitation",
      options: ll === null ? [] : [{ kind: "sourceLinkLayerAddress", mac: h.nic.mac }],
    };
    if (this.send(h.nic, ll ?? new Uint8Array(16), ALL_ROUTERS, repr)) {
      h.rsSent++;
      this.stats.solicitationsSent++;
    }
    if (h.rsSent < RS_CONSTANTS.MAX_RTR_SOLICITATIONS) {
      h.rsTimer = this.ipv6.stack.clock.schedule(
        RS_CONSTANTS.RTR_SOLICITATION_INTERVAL_MS,
        () => this.#solicit(h),
      );
    }
  }

  /**
   * Before an RA arriving on `nic` is parsed: the checks of RFC 4861
   * §6.1.2 that need no parsing (a link-local source; NDP checked the hop
   * limit, code, length, checksum and options), our own RAs skipped, and
   * the flood limit. RAs from a router in the default router list (or
   * waiting for room in it) pass at {@link RA_KNOWN_PER_SECOND}; RAs from
   * any other source at {@link RA_NEW_PER_SECOND}, so a flood of RAs from
   * random sources (flood_router26: 25 prefixes each) costs a parse only a
   * few times a second, and a known router's RAs are never starved by it.
   * Each refused RA moves one counter.
   *
   * @returns true when the RA is to be parsed and handed to {@link receive}
   */
  admit(nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet): boolean {
    const h = this.#nics.get(nic.id);
    if (h === undefined) {
      this.stats.advertisementsIgnored++;
      return false;
    }
    const d = pkt.data;
    const srcOff = ip.srcOffset();
    // §6.1.2: the source is link-local (routers are named by it) and hop limit 255.
    if (!ipv6IsLinkLocalUnicast(d, srcOff)) {
      this.stats.advertisementsNotLinkLocalDropped++;
      return false;
    }
    // Our own RAs (a router that also accepts RAs) teach us nothing.
    const ll = this.ipv6.linkLocalOf(nic);
    if (ll !== null && ipv6Equal(ll, d, 0, srcOff)) return false;
    const key = this.ipv6.keys.peek(d, srcOff);
    const known = h.routers.has(key) || h.waitingRouters.has(key);
    if (!(known ? h.knownLimit : h.newLimit).take()) {
      this.stats.advertisementsRateLimited++;
      h.floodUntil = this.ipv6.stack.clock.now() + RA_FLOOD_QUIET_MS;
      return false;
    }
    return true;
  }

  /**
   * An RA that {@link admit} let through, parsed: RFC 4861 §6.3.4 (default
   * router, prefixes, link parameters), RFC 4191 and RFC 8106 options.
   */
  receive(
    nic: Nic,
    pkt: PacketBuffer,
    ip: Ipv6Packet,
    ra: Extract<NdpRepr, { kind: "routerAdvertisement" }>,
    _len: number,
  ): void {
    const h = this.#nics.get(nic.id);
    if (h === undefined) return;
    const srcOff = ip.srcOffset();
    const src = pkt.data.slice(srcOff, srcOff + 16);
    this.stats.advertisementsAccepted++;
    h.gotRa = true;
    h.rsTimer?.cancel();
    h.rsTimer = null;
    this.#process(h, src, ra);
    this.#reschedule();
  }

  #process(
    h: HostNic,
    src: Uint8Array,
    ra: Extract<NdpRepr, { kind: "routerAdvertisement" }>,
  ): void {
    const now = this.ipv6.stack.clock.now();
    const st = this.ipv6.nicState(h.nic);
    if (st === undefined) return;
    // During an RA flood (RAs rate-limited in the last RA_FLOOD_QUIET_MS),
    // only a router heard before sets the link's parameters (the flood's
    // random routers would set them at each RA that gets through).
    const params = now >= h.floodUntil || h.routers.has(formatIpv6(src));
    if (!params) this.stats.linkParametersIgnored++;
    else {
      h.managed = ra.managed;
      h.other = ra.other;
      // §6.3.4: link parameters.
      if (ra.curHopLimit !== 0) st.hopLimit = ra.curHopLimit;
      if (ra.reachableTime !== 0) st.neighbors.setBaseReachableTime(ra.reachableTime);
      if (ra.retransTimer > RA_RETRANS_TIMER_MAX_MS) this.stats.linkParametersIgnored++;
      else if (ra.retransTimer !== 0) st.neighbors.setRetransTime(ra.retransTimer);
    }
    this.#defaultRouter(h, src, ra.routerLifetime, ra.preference, now);
    for (const o of ra.options) {
      switch (o.kind) {
        case "mtu":
          // §6.3.4: only values the link can carry; never below the IPv6 minimum.
          if (!params) break;
          if (o.mtu >= IPV6_MIN_MTU && o.mtu <= h.linkMtu) {
            if (h.nic.mtu() !== o.mtu) {
              log.info("{nic}: MTU {mtu} from router {r}", {
                nic: h.nic.name,
                mtu: o.mtu,
                r: formatIpv6(src),
              });
            }
            h.nic.setMtu(o.mtu);
          } else {
            this.stats.mtuIgnored++;
          }
          break;
        case "prefixInformation":
          this.#prefix(h, o, now);
          break;
        case "routeInformation":
          this.#routeInfo(h, src, o, now);
          break;
        case "rdnss":
          for (const a of o.addresses) this.#dns(h, h.rdnss, formatIpv6(a), o.lifetime, now);
          break;
        case "dnssl":
          for (const dm of o.domains) this.#dns(h, h.dnssl, dm, o.lifetime, now);
          break;
        default:
          break;
      }
    }
  }

  /** §6.3.4 and RFC 4191 §3.1: the default router list and its `::/0` routes. */
  #defaultRouter(h: HostNic, src: Uint8Array, lifetimeS: number, prf: number, now: number): void {
    const key = formatIpv6(src);
    const r = h.routers.get(key);
    if (lifetimeS === 0) {
      if (r !== undefined) this.#removeRouter(h, r, "router lifetime 0");
      return;
    }
    const preference = routePreference(prf);
    const expires = now + lifetimeS * 1000;
    if (r === undefined) {
      if (
        h.routers.size >= h.opts.maxRouters &&
        !this.#displace(h.waitingRouters, key, h.routers.values(), (v) => {
          this.#removeRouter(h, v, "displaced by a router that repeats its RAs");
          this.stats.routersDisplaced++;
        })
      ) {
        this.stats.routersDropped++;
        return;
      }
      const nr: Router = { address: src, key, preference, expires, heard: 1 };
      h.routers.set(key, nr);
      log.info("{nic}: default router {r} (preference {p}, lifetime {l} s)", {
        nic: h.nic.name,
        r: key,
        p: preferenceName(preference),
        l: lifetimeS,
      });
      this.#installDefault(h, nr);
      return;
    }
    if (r.preference !== preference) {
      log.info("{nic}: default router {r} now preference {p}", {
        nic: h.nic.name,
        r: key,
        p: preferenceName(preference),
      });
    }
    r.preference = preference;
    r.expires = expires;
    r.heard++;
    this.#installDefault(h, r);
  }

  /**
   * A list (routers, prefixes) is full and `key` is not in it. An entry
   * whose RAs repeat displaces the oldest one heard only once (an RA flood's
   * random routers and prefixes never repeat), at its second RA while the
   * list is full; the first is remembered in `waiting` (bounded, oldest
   * forgotten first).
   *
   * @returns true when `remove` made room for `key`
   */
  #displace<E extends { heard: number }>(
    waiting: Map<string, number>,
    key: string,
    entries: Iterable<E>,
    remove: (victim: E) => void,
  ): boolean {
    if (!waiting.has(key)) {
      if (waiting.size >= WAITING_ENTRIES) waiting.delete(waiting.keys().next().value!);
      waiting.set(key, 1);
      return false;
    }
    for (const e of entries) {
      if (e.heard !== 1) continue;
      waiting.delete(key);
      remove(e);
      return true;
    }
    return false;
  }

  /** Take a prefix out whole: its on-link route and its SLAAC address. */
  #removePrefix(h: HostNic, p: Prefix, why: string): void {
    this.#dropOnLink(h, p);
    const a = p.addr;
    if (a !== null) {
      log.info("{nic}: {addr} removed ({why})", {
        nic: h.nic.name,
        addr: formatIpv6(a.address),
        why,
      });
      p.addr = null;
      this.ipv6.removeAddress(h.nic, a.address);
    }
    this.#forgetIfEmpty(h, p);
  }

  #installDefault(h: HostNic, r: Router): void {
    // Linux: proto ra, metric 1024; preference orders routers of equal metric.
    this.ipv6.routes.add({
      prefix: new Uint8Array(16),
      prefixLen: 0,
      type: "unicast",
      nicId: h.nic.id,
      gateway: r.address,
      metric: 1024,
      source: "ra",
      preference: r.preference,
      expiresAt: r.expires,
    });
  }

  #removeRouter(h: HostNic, r: Router, why: string): void {
    h.routers.delete(r.key);
    this.ipv6.routes.remove(
      new Uint8Array(16),
      0,
      (x) =>
        x.source === "ra" && x.nicId === h.nic.id && x.gateway !== null &&
        formatIpv6(x.gateway) === r.key,
    );
    log.info("{nic}: default router {r} removed ({why})", { nic: h.nic.name, r: r.key, why });
  }

  /** RFC 4861 §6.3.4 (on-link) and RFC 4862 §5.5.3 (autonomous). */
  #prefix(
    h: HostNic,
    o: Extract<NdpRepr["options"][number], { kind: "prefixInformation" }>,
    now: number,
  ): void {
    // §6.3.4 / RFC 4862 §5.5.3 (b): never the link-local prefix.
    if (ipv6IsLinkLocalUnicast(o.prefix)) {
      this.stats.prefixesIgnored++;
      return;
    }
    if (!o.onLink && !o.autonomous) return;
    const prefix = ipv6Masked(o.prefix, o.prefixLength);
    const key = `${formatIpv6(prefix)}/${o.prefixLength}`;
    const valid = lifetimeMs(o.validLifetime);
    const preferred = lifetimeMs(o.preferredLifetime);
    // RFC 4862 §5.5.3 (c): a preferred lifetime above the valid one makes
    // the whole option invalid; Linux (addrconf_prefix_rcv) drops it before
    // the on-link part too.
    if (preferred > valid) {
      this.stats.prefixesIgnored++;
      return;
    }
    let p = h.prefixes.get(key);
    if (p === undefined) {
      if (o.validLifetime === 0) return;
      if (
        h.prefixes.size >= h.opts.maxPrefixes &&
        !this.#displace(h.waitingPrefixes, key, h.prefixes.values(), (v) => {
          this.#removePrefix(h, v, "displaced by a prefix its router repeats");
          this.stats.prefixesDisplaced++;
        })
      ) {
        this.stats.prefixesDropped++;
        return;
      }
      p = {
        key,
        prefix,
        prefixLen: o.prefixLength,
        onLink: false,
        onLinkExpires: 0,
        autonomous: false,
        addr: null,
        dadCounter: 0,
        heard: 1,
      };
      h.prefixes.set(key, p);
      log.info("{nic}: prefix {p} (valid {v} s, preferred {pr} s{flags})", {
        nic: h.nic.name,
        p: key,
        v: o.validLifetime,
        pr: o.preferredLifetime,
        flags: (o.onLink ? ", on-link" : "") + (o.autonomous ? ", autonomous" : ""),
      });
    } else p.heard++;
    if (o.onLink) {
      if (o.validLifetime === 0) {
        // §6.3.4: a zero valid lifetime times the prefix out at once.
        this.#dropOnLink(h, p);
      } else {
        p.onLink = true;
        p.onLinkExpires = now + valid;
        this.ipv6.routes.add({
          prefix: p.prefix,
          prefixLen: p.prefixLen,
          type: "unicast",
          nicId: h.nic.id,
          gateway: null,
          metric: 256,
          source: "ra",
          ...(Number.isFinite(p.onLinkExpires) ? { expiresAt: p.onLinkExpires } : {}),
        });
      }
    }
    if (o.autonomous) this.#slaac(h, p, o.prefixLength, valid, preferred, now);
    this.#forgetIfEmpty(h, p);
  }

  #dropOnLink(h: HostNic, p: Prefix): void {
    if (!p.onLink) return;
    p.onLink = false;
    this.ipv6.routes.remove(
      p.prefix,
      p.prefixLen,
      (r) => r.source === "ra" && r.nicId === h.nic.id && r.gateway === null,
    );
  }

  #forgetIfEmpty(h: HostNic, p: Prefix): void {
    if (p.onLink || p.addr !== null) return;
    if (h.prefixes.delete(p.key)) {
      log.info("{nic}: prefix {p} removed", { nic: h.nic.name, p: p.key });
    }
  }

  /** RFC 4862 §5.5.3 (c)–(e). */
  #slaac(
    h: HostNic,
    p: Prefix,
    prefixLen: number,
    valid: number,
    preferred: number,
    now: number,
  ): void {
    // (c) was checked for the whole option. (d): prefix length plus the 64-bit interface identifier must be 128.
    if (prefixLen !== 64) {
      this.stats.prefixesIgnored++;
      return;
    }
    p.autonomous = true;
    const a = p.addr;
    if (a === null) {
      if (valid === 0) return;
      if (this.#slaacCount(h) >= h.opts.maxAddresses) {
        this.stats.addressesDropped++;
        return;
      }
      this.#form(h, p, now + valid, now + preferred);
      return;
    }
    // (e): the preferred lifetime is reset to the advertised one.
    a.preferredUntil = now + preferred;
    if (a.state === "deprecated" && a.preferredUntil > now) {
      a.state = "preferred";
      log.info("{nic}: {addr} preferred again", { nic: h.nic.name, addr: formatIpv6(a.address) });
    } else if (a.state === "preferred" && a.preferredUntil <= now) {
      this.#deprecate(h, a);
    }
    a.validUntil = twoHourRule(a.validUntil, valid, now, this.stats);
  }

  #slaacCount(h: HostNic): number {
    let n = 0;
    for (const p of h.prefixes.values()) if (p.addr !== null) n++;
    return n;
  }

  /** Form the address of `p` (EUI-64 or RFC 7217) and start DAD (addAddress does it). */
  #form(h: HostNic, p: Prefix, validUntil: number, preferredUntil: number): void {
    let iid: Uint8Array;
    if (h.opts.addrGenMode === "stable-privacy" && h.opts.stableSecret !== undefined) {
      const r = stablePrivacyIid(p.prefix, h.nic.name, null, p.dadCounter, h.opts.stableSecret);
      iid = r.iid;
      p.dadCounter = r.dadCounter;
    } else {
      iid = eui64InterfaceId(h.nic.mac);
    }
    const address = addressFromInterfaceId(p.prefix, iid);
    // RFC 5942 §4: an autonomous-only prefix does not make the prefix on-link.
    const hadRoute = this.ipv6.routes.find(p.prefix, 64).some((r) => r.nicId === h.nic.id);
    p.addr = this.ipv6.addAddress(h.nic, address, 64, {
      origin: "slaac",
      validUntil,
      preferredUntil,
    });
    if (!hadRoute && !p.onLink) {
      this.ipv6.routes.remove(
        p.prefix,
        64,
        (r) => r.source === "connected" && r.nicId === h.nic.id,
      );
    }
    log.info("{nic}: SLAAC address {addr}/64 (valid {v} s, preferred {pr} s)", {
      nic: h.nic.name,
      addr: formatIpv6(address),
      v: secondsLeft(validUntil, this.ipv6.stack.clock.now()) ?? "forever",
      pr: secondsLeft(preferredUntil, this.ipv6.stack.clock.now()) ?? "forever",
    });
  }

  #deprecate(h: HostNic, a: Ipv6InterfaceAddress): void {
    if (a.state !== "preferred") return;
    a.state = "deprecated";
    log.info("{nic}: {addr} deprecated (preferred lifetime over)", {
      nic: h.nic.name,
      addr: formatIpv6(a.address),
    });
    this.ipv6.addressChanged(h.nic, a);
  }

  /** RFC 4191 §3.1: Route Information into the routing table, via the router. */
  #routeInfo(
    h: HostNic,
    src: Uint8Array,
    o: Extract<NdpRepr["options"][number], { kind: "routeInformation" }>,
    now: number,
  ): void {
    if (o.prefixLength > 128) return;
    const prefix = ipv6Masked(o.prefix, o.prefixLength);
    const key = `${formatIpv6(prefix)}/${o.prefixLength} ${formatIpv6(src)}`;
    const r = h.routes.get(key);
    const remove = (x: RaRoute) =>
      this.ipv6.routes.remove(
        x.prefix,
        x.prefixLen,
        (y) =>
          y.source === "ra" && y.nicId === h.nic.id && y.gateway !== null &&
          y.gateway.every((b, i) => b === x.via[i]),
      );
    if (o.lifetime === 0) {
      if (r !== undefined) {
        h.routes.delete(key);
        remove(r);
      }
      return;
    }
    if (r === undefined && h.routes.size >= h.opts.maxPrefixes) {
      this.stats.routesDropped++;
      return;
    }
    const x: RaRoute = r ?? {
      key,
      prefix,
      prefixLen: o.prefixLength,
      via: src,
      preference: 0,
      expires: 0,
    };
    x.preference = routePreference(o.preference);
    x.expires = now + lifetimeMs(o.lifetime);
    if (r === undefined) {
      h.routes.set(key, x);
      log.info("{nic}: route {p} via {r} (preference {pr})", {
        nic: h.nic.name,
        p: `${formatIpv6(prefix)}/${o.prefixLength}`,
        r: formatIpv6(src),
        pr: preferenceName(x.preference),
      });
    }
    this.ipv6.routes.add({
      prefix,
      prefixLen: o.prefixLength,
      type: "unicast",
      nicId: h.nic.id,
      gateway: src,
      metric: 1024,
      source: "ra",
      preference: x.preference,
      ...(Number.isFinite(x.expires) ? { expiresAt: x.expires } : {}),
    });
  }

  /** RFC 8106 §5.3.1: keep RDNSS/DNSSL entries with their lifetimes. */
  #dns(h: HostNic, list: Map<string, number>, key: string, lifetimeS: number, now: number): void {
    if (lifetimeS === 0) {
      if (list.delete(key)) log.info("{nic}: DNS {k} removed", { nic: h.nic.name, k: key });
      return;
    }
    if (!list.has(key)) {
      if (list.size >= MAX_DNS_ENTRIES) {
        this.stats.dnsDropped++;
        return;
      }
      log.info("{nic}: DNS {k} (lifetime {l} s)", { nic: h.nic.name, k: key, l: lifetimeS });
    }
    list.set(key, now + lifetimeMs(lifetimeS));
  }

  /** An address changed state: retry RFC 7217 addresses that failed DAD (§6 of RFC 7217). */
  addressChanged(nic: Nic, a: Ipv6InterfaceAddress): void {
    const h = this.#nics.get(nic.id);
    if (h === undefined || a.origin !== "slaac") return;
    this.#reschedule();
    if (a.state !== "duplicate") return;
    for (const p of h.prefixes.values()) {
      if (p.addr !== a) continue;
      p.addr = a; // keep it (dadfailed, like Linux) unless another identifier may be tried
      if (
        h.opts.addrGenMode === "stable-privacy" && h.opts.stableSecret !== undefined &&
        p.dadCounter < IDGEN_RETRIES
      ) {
        const { validUntil, preferredUntil } = a;
        this.ipv6.stack.clock.schedule(0, () => {
          if (p.addr !== a) return;
          this.ipv6.removeAddress(nic, a.address);
          p.addr = null;
          p.dadCounter++;
          this.#form(h, p, validUntil, preferredUntil);
          this.#reschedule();
        });
      }
    }
  }

  // ------------------------------------------------------------ lifetimes

  /** One timer for the earliest lifetime event of every interface. */
  #reschedule(): void {
    let next = Infinity;
    for (const h of this.#nics.values()) {
      for (const r of h.routers.values()) next = Math.min(next, r.expires);
      for (const p of h.prefixes.values()) {
        if (p.onLink) next = Math.min(next, p.onLinkExpires);
        const a = p.addr;
        if (a !== null) {
          next = Math.min(next, a.validUntil);
          // A tentative address is timed once DAD ends (addressChanged reschedules).
          if (a.state === "preferred") next = Math.min(next, a.preferredUntil);
        }
      }
      for (const r of h.routes.values()) next = Math.min(next, r.expires);
      for (const t of h.rdnss.values()) next = Math.min(next, t);
      for (const t of h.dnssl.values()) next = Math.min(next, t);
    }
    if (next === this.#timerAt) return;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = next;
    if (!Number.isFinite(next)) return;
    const clock = this.ipv6.stack.clock;
    this.#timer = clock.schedule(Math.max(0, next - clock.now()), () => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#expire();
      this.#reschedule();
    });
  }

  #expire(): void {
    const now = this.ipv6.stack.clock.now();
    for (const h of this.#nics.values()) {
      for (const r of [...h.routers.values()]) {
        if (r.expires <= now) this.#removeRouter(h, r, "lifetime over");
      }
      for (const p of [...h.prefixes.values()]) {
        if (p.onLink && p.onLinkExpires <= now) this.#dropOnLink(h, p);
        const a = p.addr;
        if (a !== null) {
          if (a.validUntil <= now) {
            log.info("{nic}: {addr} removed (valid lifetime over)", {
              nic: h.nic.name,
              addr: formatIpv6(a.address),
            });
            p.addr = null;
            this.ipv6.removeAddress(h.nic, a.address);
          } else if (a.preferredUntil <= now) {
            this.#deprecate(h, a);
          }
        }
        this.#forgetIfEmpty(h, p);
      }
      for (const r of [...h.routes.values()]) {
        if (r.expires > now) continue;
        h.routes.delete(r.key);
        this.ipv6.routes.remove(
          r.prefix,
          r.prefixLen,
          (y) =>
            y.source === "ra" && y.nicId === h.nic.id && y.gateway !== null &&
            y.gateway.every((b, i) => b === r.via[i]),
        );
      }
      for (const list of [h.rdnss, h.dnssl]) {
        for (const [k, t] of [...list]) {
          if (t <= now) {
            list.delete(k);
            log.info("{nic}: DNS {k} expired", { nic: h.nic.name, k });
          }
        }
      }
    }
    this.ipv6.routes.removeExpired(now);
  }

  /** What was learned on `nic`, lifetimes in seconds left; null when accept_ra is off there. */
  state(nic: Nic): RaHostState | null {
    const h = this.#nics.get(nic.id);
    if (h === undefined) return null;
    const now = this.ipv6.stack.clock.now();
    return {
      routers: [...h.routers.values()]
        .sort((a, b) => b.preference - a.preference)
        .map((r) => ({
          address: r.key,
          preference: preferenceName(r.preference),
          lifetime: secondsLeft(r.expires, now) ?? 0,
        })),
      prefixes: [...h.prefixes.values()].map((p) => ({
        prefix: p.key,
        onLink: p.onLink,
        autonomous: p.autonomous,
        validLifetime: p.onLink
          ? secondsLeft(p.onLinkExpires, now)
          : p.addr !== null
          ? secondsLeft(p.addr.validUntil, now)
          : 0,
        preferredLifetime: p.addr !== null ? secondsLeft(p.addr.preferredUntil, now) : 0,
      })),
      addresses: [...h.prefixes.values()].flatMap((p) =>
        p.addr === null ? [] : [{
          address: `${formatIpv6(p.addr.address)}/64`,
          state: p.addr.state === "duplicate" ? "dadfailed" : p.addr.state,
          validLifetime: secondsLeft(p.addr.validUntil, now),
          preferredLifetime: secondsLeft(p.addr.preferredUntil, now),
        }]
      ),
      routes: [...h.routes.values()].map((r) => ({
        prefix: `${formatIpv6(r.prefix)}/${r.prefixLen}`,
        via: formatIpv6(r.via),
        preference: preferenceName(r.preference),
        lifetime: secondsLeft(r.expires, now),
      })),
      rdnss: [...h.rdnss].map(([address, t]) => ({ address, lifetime: secondsLeft(t, now) })),
      dnssl: [...h.dnssl].map(([domain, t]) => ({ domain, lifetime: secondsLeft(t, now) })),
      mtu: h.nic.mtu(),
      hopLimit: this.ipv6.nicState(nic)?.hopLimit ?? 0,
      managed: h.managed,
      other: h.other,
      solicitationsSent: h.rsSent,
    };
  }
}

function secondsLeft(until: number, now: number): number | null {
  return Number.isFinite(until) ? Math.max(0, Math.round((until - now) / 1000)) : null;
}

/**
 * RFC 4862 §5.5.3 (e): the new valid-until of an existing autoconfigured
 * address. 1) a valid lifetime above two hours, or above what remains,
 * is taken; 2) otherwise, when two hours or less remain, the option is
 * ignored (no authentication here); 3) otherwise two hours remain.
 *
 * @param validUntil the address's current valid-until (Clock ms, Infinity)
 * @param advertised the advertised valid lifetime in ms (Infinity for infinity)
 * @param now the clock
 * @returns the new valid-until
 */
export function twoHourRule(
  validUntil: number,
  advertised: number,
  now: number,
  stats?: { twoHourRuleApplied: number },
): number {
  const remaining = validUntil - now;
  if (advertised > TWO_HOURS_MS || advertised > remaining) return now + advertised;
  if (stats) stats.twoHourRuleApplied++;
  if (remaining <= TWO_HOURS_MS) return validUntil;
  return now + TWO_HOURS_MS;
}
