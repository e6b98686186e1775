/**
 * Router Advertisements, the router side (RFC 4861 §6.2, RFC 4191,
 * RFC 8106): periodic unsolicited RAs with jittered intervals, answers to
 * Router Solicitations, final RAs on shutdown, and the consistency checks
 * of §6.2.7. {@link RouterAdvertisements} also owns the host side
 * ({@link RaHost} in slaac.ts) and dispatches every RS/RA that NDP hands
 * over (`ndp.onRouterMessage`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Nic } from "../nic.ts";
import type { Timer } from "../clock.ts";
import type { Ipv6, Ipv6InterfaceAddress } from "./ipv6.ts";
import { ALL_NODES, ALL_ROUTERS } from "./ipv6.ts";
import {
  type NdpOptionRepr,
  NdpPacket,
  NdpPreference,
  NdpRepr,
  writeNdpPacket,
} from "../wire/ndp.ts";
import type { Ipv6Packet } from "../wire/ipv6.ts";
import type { DnrInstance } from "../wire/dnr.ts";
import { formatIpv6, ipv6IsMulticast, ipv6IsUnspecified } from "../wire/ip_address.ts";
import { ETHERNET_HEADER_LEN, EtherType, writeEthernetHeader } from "../wire/ethernet.ts";
import { HEADROOM, type PacketBuffer } from "../wire/packet_buffer.ts";
import { ipv6MulticastMac } from "../wire/mac_address.ts";
import { RA_NEW_PER_SECOND, RaHost, type RaHostOptions, type RaHostState } from "./slaac.ts";
import { TokenBucket } from "../token_bucket.ts";
import type { RaStats } from "./ra_stats.ts";
export type { RaStats } from "./ra_stats.ts";

const log = getLogger(["tapir", "ra"]);

/** RFC 4861 §10 router constants. */
export const RA_CONSTANTS = {
  MAX_INITIAL_RTR_ADVERT_INTERVAL_MS: 16_000,
  MAX_INITIAL_RTR_ADVERTISEMENTS: 3,
  MAX_FINAL_RTR_ADVERTISEMENTS: 3,
  MIN_DELAY_BETWEEN_RAS_MS: 3_000,
  MAX_RA_DELAY_TIME_MS: 500,
} as const;

/** A Prefix Information option to advertise (lifetimes in ms, `Infinity` for infinity). */
export interface RaAdvertPrefix {
  prefix: { address: Uint8Array; prefixLen: number };
  onLink: boolean;
  autonomous: boolean;
  validLifetime: number;
  preferredLifetime: number;
  /** Advertise lifetimes that count down in real time (radvd `DecrementLifetimes`). */
  decrementLifetimes: boolean;
}

/**
 * What one interface advertises (the shape of config's `RaConfig`; times
 * in ms, option lifetimes `Infinity` for infinity).
 */
export interface RaAdvertSettings {
  minInterval: number;
  maxInterval: number;
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
  curHopLimit: number;
  managed: boolean;
  otherConfig: boolean;
  preference: "high" | "medium" | "low";
  mtu?: number;
  sourceLinkLayer: boolean;
  unicastSolicited: boolean;
  prefixes: RaAdvertPrefix[];
  rdnss: { addresses: Uint8Array[]; lifetime: number }[];
  dnssl: { domains: string[]; lifetime: number }[];
  routes: {
    prefix: { address: Uint8Array; prefixLen: number };
    preference: "high" | "medium" | "low";
    lifetime: number;
  }[];
  /** PREF64 (RFC 8781): the NAT64 prefix hosts synthesize with; lifetime in ms. */
  pref64?: { prefix: { address: Uint8Array; prefixLen: number }; lifetime: number };
  /** Captive-portal API URI (RFC 8910). */
  captivePortal?: string;
  /** Encrypted DNS resolvers (RFC 9463 §6), one option each; lifetime in ms. */
  dnr?: { instance: DnrInstance; lifetime: number }[];
}

function newRaStats(): RaStats {
  return {
    unsolicitedSent: 0,
    solicitedSent: 0,
    finalSent: 0,
    solicitationsReceived: 0,
    invalidSolicitationsDropped: 0,
    solicitationsCoalesced: 0,
    inconsistentAdvertisements: 0,
    solicitationsSent: 0,
    advertisementsAccepted: 0,
    advertisementsNotLinkLocalDropped: 0,
    advertisementsMalformedDropped: 0,
    advertisementsIgnored: 0,
    advertisementsRateLimited: 0,
    linkParametersIgnored: 0,
    routersDropped: 0,
    routersDisplaced: 0,
    prefixesDropped: 0,
    prefixesDisplaced: 0,
    addressesDropped: 0,
    routesDropped: 0,
    dnsDropped: 0,
    prefixesIgnored: 0,
    twoHourRuleApplied: 0,
    mtuIgnored: 0,
  };
}

/** {@link RouterAdvertisements}' RA admission: the host side learns from it. */
const USE_LEARN = 1;
/** {@link RouterAdvertisements}' RA admission: the router side compares it with its own. */
const USE_COMPARE = 2;

/** Wire value of a preference name (RFC 4191 §2.1). */
export function preferenceBits(p: "high" | "medium" | "low"): number {
  return p === "high" ? NdpPreference.HIGH : p === "low" ? NdpPreference.LOW : NdpPreference.MEDIUM;
}

/** ms → a 32-bit seconds lifetime field (`Infinity` → 0xffffffff). */
function lifetimeSeconds(ms: number): number {
  if (!Number.isFinite(ms)) return 0xffffffff;
  return Math.min(0xfffffffe, Math.max(0, Math.floor(ms / 1000)));
}

interface RouterNic {
  nic: Nic;
  cfg: RaAdvertSettings;
  /** Other routers' RAs compared with ours (§6.2.7) when the host side does not take them, per second. */
  checkLimit: TokenBucket;
  /** Periodic RA timer. */
  timer: Timer | null;
  /** Answer to a solicitation, when one is scheduled. */
  solicitedTimer: Timer | null;
  solicitedAt: number;
  /** Unicast answers scheduled (at most one per solicitor). */
  unicastPending: Map<string, Timer>;
  /** Unsolicited RAs sent so far (the first 3 use the short interval). */
  initialSent: number;
  /** Clock time of the last multicast RA (−Infinity: none yet). */
  lastMulticast: number;
  /** Prefix lifetime deadlines for decrementing prefixes. */
  deadlines: { valid: number; preferred: number }[];
  started: boolean;
  /** True once stopped (final RAs sent). */
  stopped: boolean;
  /** Clock time the next unsolicited RA is due (null: not scheduled yet). */
  nextAt: number | null;
}

/**
 * The RA machinery of one stack: router side per advertising interface,
 * host side (RS, RA processing, SLAAC) per `accept_ra` interface.
 *
 * @example
 * ```ts
 * import { Stack } from "../stack.ts";
 * import { ManualClock } from "../clock.ts";
 * const s = new Stack({ clock: new ManualClock() });
 * console.assert(s.ra.routerNics().length === 0);
 * ```
 */
export class RouterAdvertisements {
  /** Counters of both sides. */
  readonly stats: RaStats = newRaStats();
  /** The host side (accept_ra). */
  readonly host: RaHost;
  #routers = new Map<number, RouterNic>();
  #ndp = new NdpPacket();

  constructor(readonly ipv6: Ipv6) {
    this.host = new RaHost(
      ipv6,
      this.stats,
      (nic, src, dst, repr) => this.send(nic, src, dst, repr),
    );
    ipv6.ndp.onRouterMessage = (nic, pkt, ip, off, len, use) =>
      this.#receive(nic, pkt, ip, off, len, use);
    ipv6.ndp.admitRouterAdvertisement = (nic, pkt, ip) => this.#admit(nic, pkt, ip);
    ipv6.addressListeners.add((nic, a) => this.#addressChanged(nic, a));
  }

  // ------------------------------------------------------------ router side

  /**
   * Start advertising on `nic` (RFC 4861 §6.2.2: it becomes an advertising
   * interface and joins all-routers). The first RA leaves once the
   * link-local address passed DAD.
   */
  enableRouter(nic: Nic, cfg: RaAdvertSettings): void {
    if (this.#routers.has(nic.id)) this.disableRouter(nic, false);
    const now = this.ipv6.stack.clock.now();
    const r: RouterNic = {
      nic,
      cfg,
      checkLimit: new TokenBucket(this.ipv6.stack.clock, RA_NEW_PER_SECOND, RA_NEW_PER_SECOND),
      timer: null,
      solicitedTimer: null,
      solicitedAt: 0,
      unicastPending: new Map(),
      initialSent: 0,
      lastMulticast: -Infinity,
      deadlines: cfg.prefixes.map((p) => ({
        valid: now + p.validLifetime,
        preferred: now + p.preferredLifetime,
      })),
      started: false,
      stopped: false,
      nextAt: null,
    };
    this.#routers.set(nic.id, r);
    // §6.2.2: an advertising interface joins all-routers (reference counted with forwarding).
    this.ipv6.joinGroup(nic, ALL_ROUTERS);
    this.#maybeStart(r);
  }

  /** Stop advertising on `nic`; with `final` (default) send the final RAs of §6.2.5 first. */
  disableRouter(nic: Nic, final = true): void {
    const r = this.#routers.get(nic.id);
    if (r === undefined) return;
    if (final) this.#sendFinal(r);
    this.#cancel(r);
    r.stopped = true;
    this.#routers.delete(nic.id);
    this.ipv6.leaveGroup(nic, ALL_ROUTERS);
  }

  /**
   * What `nic` advertises and when its next unsolicited RA leaves (ms from
   * now, null while waiting for its link-local address); null when `nic`
   * does not advertise.
   */
  advertState(nic: Nic): { settings: RaAdvertSettings; nextInMs: number | null } | null {
    const r = this.#routers.get(nic.id);
    if (r === undefined) return null;
    return {
      settings: r.cfg,
      nextInMs: r.nextAt === null ? null : Math.max(0, r.nextAt - this.ipv6.stack.clock.now()),
    };
  }

  /** NICs that advertise. */
  routerNics(): Nic[] {
    return [...this.#routers.values()].map((r) => r.nic);
  }

  /**
   * RFC 4861 §6.2.5: cease advertising everywhere: up to
   * MAX_FINAL_RTR_ADVERTISEMENTS RAs with router lifetime 0 on each
   * advertising interface, sent synchronously (call before the links close).
   */
  stop(): void {
    for (const r of [...this.#routers.values()]) this.disableRouter(r.nic, true);
  }

  /** Stop both sides (final RAs included) and every timer. */
  close(): void {
    this.stop();
    this.host.close();
  }

  #cancel(r: RouterNic): void {
    r.timer?.cancel();
    r.timer = null;
    r.solicitedTimer?.cancel();
    r.solicitedTimer = null;
    for (const t of r.unicastPending.values()) t.cancel();
    r.unicastPending.clear();
  }

  #maybeStart(r: RouterNic): void {
    if (r.started || r.stopped || this.ipv6.linkLocalOf(r.nic) === null) return;
    r.started = true;
    log.info("{nic}: sending router advertisements every {min}..{max} s", {
      nic: r.nic.name,
      min: r.cfg.minInterval / 1000,
      max: r.cfg.maxInterval / 1000,
    });
    this.#periodic(r);
  }

  /** Send one unsolicited RA and schedule the next (§6.2.4). */
  #periodic(r: RouterNic): void {
    r.timer = null;
    if (r.stopped) return;
    if (this.#sendRa(r, ALL_NODES, false)) {
      this.stats.unsolicitedSent++;
      r.initialSent++;
    }
    this.#scheduleNext(r);
  }

  /**
   * The next interval: uniform in [MinRtrAdvInterval, MaxRtrAdvInterval];
   * for the first MAX_INITIAL_RTR_ADVERTISEMENTS at most
   * MAX_INITIAL_RTR_ADVERT_INTERVAL (§6.2.4).
   */
  #scheduleNext(r: RouterNic): void {
    r.timer?.cancel();
    const { minInterval: lo, maxInterval: hi } = r.cfg;
    let ms = lo + this.ipv6.stack.random.float() * (hi - lo);
    if (r.initialSent < RA_CONSTANTS.MAX_INITIAL_RTR_ADVERTISEMENTS) {
      ms = Math.min(ms, RA_CONSTANTS.MAX_INITIAL_RTR_ADVERT_INTERVAL_MS);
    }
    r.nextAt = this.ipv6.stack.clock.now() + ms;
    r.timer = this.ipv6.stack.clock.schedule(ms, () => this.#periodic(r));
  }

  /** §6.2.6: answer a solicitation after a random delay, rate-limited for multicast. */
  #solicited(r: RouterNic, pkt: PacketBuffer, ip: Ipv6Packet): void {
    const d = pkt.data;
    const srcOff = ip.srcOffset();
    const clock = this.ipv6.stack.clock;
    const now = clock.now();
    const delay = this.ipv6.stack.random.float() * RA_CONSTANTS.MAX_RA_DELAY_TIME_MS;
    if (r.cfg.unicastSolicited && !ipv6IsUnspecified(d, srcOff)) {
      const src = d.slice(srcOff, srcOff + 16);
      const key = formatIpv6(src);
      if (r.unicastPending.has(key)) {
        this.stats.solicitationsCoalesced++;
        return;
      }
      r.unicastPending.set(
        key,
        clock.schedule(delay, () => {
          r.unicastPending.delete(key);
          if (r.stopped) return;
          if (this.#sendRa(r, src, false)) this.stats.solicitedSent++;
        }),
      );
      return;
    }
    if (r.solicitedTimer !== null) {
      this.stats.solicitationsCoalesced++;
      return;
    }
    // Never two multicast RAs within MIN_DELAY_BETWEEN_RAS.
    let at = now + delay;
    at = Math.max(at, r.lastMulticast + RA_CONSTANTS.MIN_DELAY_BETWEEN_RAS_MS);
    r.solicitedAt = at;
    r.solicitedTimer = clock.schedule(at - now, () => {
      r.solicitedTimer = null;
      if (r.stopped) return;
      if (this.#sendRa(r, ALL_NODES, false)) this.stats.solicitedSent++;
      // The multicast answer counts as the periodic RA: restart the interval.
      this.#scheduleNext(r);
    });
  }

  #sendFinal(r: RouterNic): void {
    if (!r.started || r.stopped) return;
    for (let i = 0; i < RA_CONSTANTS.MAX_FINAL_RTR_ADVERTISEMENTS; i++) {
      if (this.#sendRa(r, ALL_NODES, true)) this.stats.finalSent++;
    }
    log.info("{nic}: sent final router advertisements (router lifetime 0)", { nic: r.nic.name });
  }

  /** Build the RA of `r` (§6.2.3); `final` sets router lifetime 0. */
  buildAdvertisement(nic: Nic, final = false): NdpRepr | null {
    const r = this.#routers.get(nic.id);
    return r === undefined ? null : this.#build(r, final);
  }

  #build(r: RouterNic, final: boolean): NdpRepr {
    const c = r.cfg;
    const now = this.ipv6.stack.clock.now();
    const options: NdpOptionRepr[] = [];
    if (c.sourceLinkLayer) options.push({ kind: "sourceLinkLayerAddress", mac: r.nic.mac });
    if (c.mtu !== undefined) options.push({ kind: "mtu", mtu: c.mtu });
    c.prefixes.forEach((p, i) => {
      let valid = p.validLifetime, preferred = p.preferredLifetime;
      if (p.decrementLifetimes) {
        const dl = r.deadlines[i]!;
        valid = Math.max(0, dl.valid - now);
        preferred = Math.max(0, dl.preferred - now);
      }
      options.push({
        kind: "prefixInformation",
        prefixLength: p.prefix.prefixLen,
        onLink: p.onLink,
        autonomous: p.autonomous,
        validLifetime: lifetimeSeconds(valid),
        preferredLifetime: lifetimeSeconds(preferred),
        prefix: p.prefix.address,
      });
    });
    for (const rt of c.routes) {
      options.push({
        kind: "routeInformation",
        prefixLength: rt.prefix.prefixLen,
        preference: preferenceBits(rt.preference),
        lifetime: lifetimeSeconds(rt.lifetime),
        prefix: rt.prefix.address,
      });
    }
    for (const x of c.rdnss) {
      options.push({
        kind: "rdnss",
        lifetime: lifetimeSeconds(x.lifetime),
        addresses: x.addresses,
      });
    }
    for (const x of c.dnssl) {
      options.push({ kind: "dnssl", lifetime: lifetimeSeconds(x.lifetime), domains: x.domains });
    }
    if (c.pref64 !== undefined) {
      options.push({
        kind: "pref64",
        // RFC 8781 §4.1: in units of 8 s, at most 65528 s.
        lifetime: Math.min(65528, Math.floor(c.pref64.lifetime / 1000)),
        prefixLength: c.pref64.prefix.prefixLen,
        prefix: c.pref64.prefix.address,
      });
    }
    if (c.captivePortal !== undefined) {
      options.push({ kind: "captivePortal", uri: c.captivePortal });
    }
    for (const x of c.dnr ?? []) {
      options.push({ kind: "dnr", lifetime: lifetimeSeconds(x.lifetime), instance: x.instance });
    }
    const routerLifetime = final ? 0 : Math.min(9000, Math.floor(c.routerLifetime / 1000));
    return {
      kind: "routerAdvertisement",
      curHopLimit: c.curHopLimit,
      managed: c.managed,
      other: c.otherConfig,
      // RFC 4191 §2.2: with router lifetime 0 the preference is sent as medium.
      preference: routerLifetime === 0 ? NdpPreference.MEDIUM : preferenceBits(c.preference),
      routerLifetime,
      reachableTime: c.reachableTime,
      retransTimer: c.retransTimer,
      options,
    };
  }

  /** §6.1.2 / §6.2.3: sent from the link-local address, hop limit 255. */
  #sendRa(r: RouterNic, dst: Uint8Array, final: boolean): boolean {
    const src = this.ipv6.linkLocalOf(r.nic);
    if (src === null) return false;
    const ok = this.send(r.nic, src, dst, this.#build(r, final));
    if (ok && ipv6IsMulticast(dst)) r.lastMulticast = this.ipv6.stack.clock.now();
    return ok;
  }

  /**
   * Send an NDP message built from `repr` on `nic` (multicast straight to
   * the group MAC; unicast through neighbor resolution). False when no
   * buffer was free.
   */
  send(nic: Nic, src: Uint8Array, dst: Uint8Array, repr: NdpRepr): boolean {
    const pool = this.ipv6.stack.pool;
    const b = pool.get();
    if (b === null) {
      this.ipv6.stack.stats.bufferPoolExhausted++;
      return false;
    }
    try {
      const ipOff = HEADROOM + ETHERNET_HEADER_LEN;
      const n = writeNdpPacket(b, ipOff, src, dst, repr);
      b.start = HEADROOM;
      b.end = ipOff + n;
      b.networkOffset = ipOff;
      if (!ipv6IsMulticast(dst)) return this.ipv6.output(b, ipOff, { nic, noFragment: true });
      writeEthernetHeader(b, HEADROOM, ipv6MulticastMac(dst), nic.mac, EtherType.IPV6);
      nic.send(b);
      return true;
    } finally {
      pool.put(b);
    }
  }

  // ------------------------------------------------------------ dispatch

  #addressChanged(nic: Nic, a: Ipv6InterfaceAddress): void {
    if (a.origin === "link-local" && a.state === "preferred") {
      const r = this.#routers.get(nic.id);
      if (r !== undefined) this.#maybeStart(r);
    }
    this.host.addressChanged(nic, a);
  }

  /**
   * Whether an RA is processed, before it is parsed (an RA of
   * flood_router26 carries 25 prefixes): {@link USE_LEARN} when the host
   * side takes it (its checks and flood limit, RaHost.admit), and
   * {@link USE_COMPARE} when we advertise on `nic` and compare it with ours
   * (§6.2.7): every RA the host side takes, else at most
   * RA_NEW_PER_SECOND a second. 0: neither.
   */
  #admit(nic: Nic, pkt: PacketBuffer, ip: Ipv6Packet): number {
    const r = this.#routers.get(nic.id);
    const learn = this.host.admit(nic, pkt, ip);
    const compare = r !== undefined && r.started && (learn || r.checkLimit.take());
    return (learn ? USE_LEARN : 0) | (compare ? USE_COMPARE : 0);
  }

  #receive(
    nic: Nic,
    pkt: PacketBuffer,
    ip: Ipv6Packet,
    off: number,
    len: number,
    use: number,
  ): void {
    const type = pkt.data[off]!;
    const r = this.#routers.get(nic.id);
    if (type === 133) {
      if (r === undefined || !r.started) return; // §6.2.6: only where we advertise.
      this.stats.solicitationsReceived++;
      const v = this.#ndp.reset(pkt, off);
      const repr = NdpRepr.parse(v, ip.off, len);
      if (repr === null) return;
      const hasSlla = repr.options.some((o) => o.kind === "sourceLinkLayerAddress");
      // §6.1.1: from the unspecified address there is no source link-layer option.
      if (ipv6IsUnspecified(pkt.data, ip.srcOffset()) && hasSlla) {
        this.stats.invalidSolicitationsDropped++;
        return;
      }
      this.#solicited(r, pkt, ip);
      return;
    }
    // NDP asked #admit first (use is never 0 here).
    const repr = NdpRepr.parse(this.#ndp.reset(pkt, off), ip.off, len);
    if (repr === null || repr.kind !== "routerAdvertisement") return;
    if ((use & USE_COMPARE) !== 0 && r !== undefined) this.#checkConsistency(r, pkt, ip, repr);
    if ((use & USE_LEARN) !== 0) this.host.receive(nic, pkt, ip, repr, len);
  }

  /** §6.2.7: log RAs of other routers that disagree with what we advertise. */
  #checkConsistency(
    r: RouterNic,
    pkt: PacketBuffer,
    ip: Ipv6Packet,
    ra: Extract<NdpRepr, { kind: "routerAdvertisement" }>,
  ): void {
    const src = formatIpv6(pkt.data.subarray(ip.srcOffset(), ip.srcOffset() + 16));
    const mine = this.ipv6.linkLocalOf(r.nic);
    if (mine !== null && formatIpv6(mine) === src) return;
    const c = r.cfg;
    const issues: string[] = [];
    if (ra.curHopLimit !== 0 && c.curHopLimit !== 0 && ra.curHopLimit !== c.curHopLimit) {
      issues.push(`cur hop limit ${ra.curHopLimit} (ours ${c.curHopLimit})`);
    }
    if (ra.managed !== c.managed) issues.push(`M flag ${ra.managed} (ours ${c.managed})`);
    if (ra.other !== c.otherConfig) issues.push(`O flag ${ra.other} (ours ${c.otherConfig})`);
    if (ra.reachableTime !== 0 && c.reachableTime !== 0 && ra.reachableTime !== c.reachableTime) {
      issues.push(`reachable time ${ra.reachableTime} (ours ${c.reachableTime})`);
    }
    if (ra.retransTimer !== 0 && c.retransTimer !== 0 && ra.retransTimer !== c.retransTimer) {
      issues.push(`retrans timer ${ra.retransTimer} (ours ${c.retransTimer})`);
    }
    for (const o of ra.options) {
      if (o.kind === "mtu" && c.mtu !== undefined && o.mtu !== c.mtu) {
        issues.push(`MTU ${o.mtu} (ours ${c.mtu})`);
      }
      if (o.kind !== "prefixInformation") continue;
      const p = c.prefixes.find((x) =>
        x.prefix.prefixLen === o.prefixLength &&
        x.prefix.address.every((b, i) => b === o.prefix[i])
      );
      // Decrementing lifetimes are not compared (they legitimately differ).
      if (p === undefined || p.decrementLifetimes) continue;
      const name = `${formatIpv6(o.prefix)}/${o.prefixLength}`;
      if (o.validLifetime !== lifetimeSeconds(p.validLifetime)) {
        issues.push(`${name} valid lifetime ${o.validLifetime}`);
      }
      if (o.preferredLifetime !== lifetimeSeconds(p.preferredLifetime)) {
        issues.push(`${name} preferred lifetime ${o.preferredLifetime}`);
      }
    }
    if (issues.length === 0) return;
    this.stats.inconsistentAdvertisements++;
    log.warn("{nic}: router {src} advertises differently: {issues}", {
      nic: r.nic.name,
      src,
      issues: issues.join(", "),
    });
  }

  // ------------------------------------------------------------ host side

  /** Turn on accept_ra on `nic` (RS at start, RA processing, SLAAC). */
  enableHost(nic: Nic, opts: Partial<RaHostOptions> = {}): void {
    this.host.enable(nic, opts);
  }

  /** What the host side learned on `nic` (routers, prefixes, addresses, DNS), or null. */
  hostState(nic: Nic): RaHostState | null {
    return this.host.state(nic);
  }
}
