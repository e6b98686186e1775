/**
 * The lab both families' topology tests stand on: hubs that record every
 * frame, one raw host (no stack) that answers ARP and Neighbor
 * Solicitations, and one builder of "a — lan hub — r — wan hub — b" labs,
 * with raw hosts (IPv4 or IPv6) or with stacks on the ends.
 */
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import type { LinkEndpoint, NetworkDispatcher, Nic, StackOptions } from "../../stack/mod.ts";
import {
  BROADCAST_MAC,
  formatIpv6,
  HEADROOM,
  ipv6MulticastMac,
  ipv6SolicitedNode,
  macEqual,
  PacketBuffer,
  parseIpv4,
  parseIpv6,
} from "../../stack/wire/mod.ts";
import { arp, isArp, isIcmp, isIpv4, readArp } from "./_packets.ts";
import { a6, type Addr6, ip6, isIcmp6, isIpv6, na, NH, ns, readIpv6, T6 } from "./_packets6.ts";

// ------------------------------------------------------------ hubs

/** A frame seen on a {@link Hub}: who wrote it, when, its bytes and GSO metadata. */
export interface TappedFrame {
  from: string;
  at: number;
  bytes: Uint8Array;
  gsoType: number;
  gsoSize: number;
}

/** Counters of a {@link HubPort}. */
export interface HubPortStats {
  /** Frames written and accepted. */
  tx: number;
  /** Frames longer than mtu + 14 (and not GSO on an offloading hub), dropped. */
  txTooBig: number;
  /** GSO super-frames written to a hub without offloads, dropped. */
  txGso: number;
}

/** One port of a {@link Hub}: a {@link LinkEndpoint}. */
export class HubPort implements LinkEndpoint {
  readonly capabilities: { readonly offloads: boolean };
  readonly stats: HubPortStats = { tx: 0, txTooBig: 0, txGso: 0 };
  dispatcher: NetworkDispatcher | null = null;
  #up = true;

  constructor(readonly hub: Hub, readonly name: string) {
    this.capabilities = { offloads: hub.offloads };
  }

  mtu(): number {
    return this.hub.mtu;
  }

  attach(d: NetworkDispatcher | null): void {
    this.dispatcher = d;
  }

  writePacket(pkt: PacketBuffer): boolean {
    if (!this.#up) return false;
    const gso = pkt.isGso();
    if (gso && !this.hub.offloads) {
      this.stats.txGso++;
      return false;
    }
    if (!gso && pkt.end - pkt.start > this.hub.mtu + 14) {
      this.stats.txTooBig++;
      return false;
    }
    this.stats.tx++;
    this.hub.carry(this, pkt);
    return true;
  }

  isUp(): boolean {
    return this.#up;
  }

  close(): void {
    this.#up = false;
  }
}

/**
 * A shared Ethernet segment on the manual clock: a frame written by one
 * port reaches every other port (each gets its own copy) at the next
 * `advance(0)`. Every frame is also recorded in `log`: the hub is the
 * frame tap of the tests.
 */
export class Hub {
  readonly ports: HubPort[] = [];
  /** Every frame that crossed the hub, in order. */
  readonly log: TappedFrame[] = [];
  #queue: TappedFrame[] = [];
  #scheduled = false;

  constructor(
    readonly clock: ManualClock,
    readonly name: string,
    readonly mtu = 1500,
    readonly offloads = false,
  ) {}

  /** A new port. */
  port(name: string): HubPort {
    const p = new HubPort(this, name);
    this.ports.push(p);
    return p;
  }

  /** Frames in the log written by port `from` (all when absent), optionally since index `since`. */
  frames(from?: string, since = 0): TappedFrame[] {
    return this.log.slice(since).filter((f) => from === undefined || f.from === from);
  }

  /** Take a copy of `pkt` and deliver it to the other ports on the next flush. */
  carry(from: HubPort, pkt: PacketBuffer): void {
    const f: TappedFrame = {
      from: from.name,
      at: this.clock.now(),
      bytes: pkt.data.slice(pkt.start, pkt.end),
      gsoType: pkt.gsoType,
      gsoSize: pkt.gsoSize,
    };
    this.log.push(f);
    this.#queue.push(f);
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.clock.schedule(0, () => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const q = this.#queue;
    this.#queue = [];
    for (const f of q) {
      for (const p of this.ports) {
        if (p.name === f.from || p.dispatcher === null || !p.isUp()) continue;
        const b = new PacketBuffer(HEADROOM + f.bytes.length + 64);
        b.data.set(f.bytes, HEADROOM);
        b.setFrame(HEADROOM, f.bytes.length);
        if (this.offloads) {
          b.gsoType = f.gsoType;
          b.gsoSize = f.gsoSize;
        }
        p.dispatcher.deliverFrame(b);
      }
    }
  }
}

/** A MAC for raw host number `n`. */
export function rawMac(n: number): Uint8Array {
  return new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, n]);
}

// ------------------------------------------------------------ raw host

/**
 * A host without a stack, for both families: it records every frame to its
 * MAC or to a group MAC, answers ARP requests for its IPv4 address and
 * Neighbor Solicitations for its IPv6 addresses (S=1, O=1, with its
 * link-layer address), and sends whatever bytes a test builds. It lets a
 * test put exact packets on a router's wire and see exactly what comes back.
 */
export class RawHost implements NetworkDispatcher {
  /** Frames received (addressed to us or to a group), in order. */
  readonly received: Uint8Array[] = [];
  /** ARP requests for our address that we answered. */
  arpAnswered = 0;
  /** Solicitations answered. */
  nsAnswered = 0;
  /** Answer NS (default true). */
  answerNs = true;
  /** MAC that {@link sendIp} and {@link send} address by default (the router's). */
  gatewayMac: Uint8Array | null = null;
  /** The IPv4 address (0: none). */
  readonly ip: number;
  /** The IPv6 addresses. */
  readonly addrs: Uint8Array[];

  /**
   * @param ip the IPv4 address (a number), the IPv6 addresses (strings), or both
   */
  constructor(
    readonly port: LinkEndpoint,
    readonly mac: Uint8Array,
    ip: number | string[] | { ipv4?: number; ipv6?: string[] },
  ) {
    const o = typeof ip === "number" ? { ipv4: ip } : Array.isArray(ip) ? { ipv6: ip } : ip;
    this.ip = o.ipv4 ?? 0;
    this.addrs = (o.ipv6 ?? []).map((a) => parseIpv6(a));
    port.attach(this);
  }

  deliverFrame(pkt: PacketBuffer): void {
    const f = pkt.data.slice(pkt.start, pkt.end);
    if ((f[0]! & 1) === 0 && !macEqual(f, this.mac, 0, 0)) return;
    this.received.push(f);
    if (isArp(f)) {
      const a = readArp(f);
      if (this.ip !== 0 && a.op === 1 && parseIpv4(a.targetIp) === this.ip) {
        this.arpAnswered++;
        this.sendArp(2, parseIpv4(a.targetIp), f.subarray(6, 12), parseIpv4(a.senderIp));
      }
      return;
    }
    if (!this.answerNs || !isIcmp6(f, T6.NS)) return;
    const ip = readIpv6(f);
    const target = ip.l4.subarray(8, 24);
    if (!this.addrs.some((a) => a.every((x, i) => x === target[i]))) return;
    if (ip.src === "::") return;
    this.nsAnswered++;
    const t = formatIpv6(target);
    this.send(
      ip6({
        src: t,
        dst: ip.src,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: na(t, ip.src, t, { s: true, o: true, tlla: this.mac }),
      }),
      { dstMac: f.subarray(6, 12) },
    );
  }

  /** Received IPv4 frames since index `since` of `received`. */
  ipv4(since = 0): Uint8Array[] {
    return this.received.slice(since).filter(isIpv4);
  }

  /** Received ICMP frames (of `type` when given) since index `since`. */
  icmp(type?: number, since = 0): Uint8Array[] {
    return this.received.slice(since).filter((f) => isIcmp(f, type));
  }

  /** Received IPv6 frames since `since`. */
  ipv6(since = 0): Uint8Array[] {
    return this.received.slice(since).filter(isIpv6);
  }

  /** Received ICMPv6 frames (of `type` when given) since `since`. */
  icmp6(type?: number, since = 0): Uint8Array[] {
    return this.received.slice(since).filter((f) => isIcmp6(f, type));
  }

  /** Received ICMPv6 frames other than NDP and MLD (errors, echo). */
  icmp6NoControl(since = 0): Uint8Array[] {
    return this.icmp6(undefined, since).filter((f) => {
      const t = readIpv6(f).l4[0]!;
      return t < 130 || (t > 137 && t !== 143);
    });
  }

  /** IPv6 frames that are not NDP or MLD (what the test cares about). */
  data(since = 0): Uint8Array[] {
    return this.ipv6(since).filter((f) => {
      if (!isIcmp6(f)) return true;
      const t = readIpv6(f).l4[0]!;
      return !(t >= 130 && t <= 137) && t !== 143;
    });
  }

  /** Forget what was received. */
  clear(): void {
    this.received.length = 0;
  }

  /** Send an Ethernet frame with `payload` (IPv4 unless `etherType`), padded to 60 bytes when `pad`. */
  sendIp(
    payload: Uint8Array,
    opts: {
      dstMac?: Uint8Array;
      etherType?: number;
      pad?: boolean;
      gsoType?: number;
      gsoSize?: number;
    } = {},
  ): boolean {
    const dst = opts.dstMac ?? this.gatewayMac;
    if (dst === null) throw new Error("RawHost.sendIp: no destination MAC");
    const len = Math.max(14 + payload.length, opts.pad ? 60 : 0);
    const b = new PacketBuffer(HEADROOM + len + 64);
    b.setFrame(HEADROOM, len);
    b.data.set(dst, HEADROOM);
    b.data.set(this.mac, HEADROOM + 6);
    b.view.setUint16(HEADROOM + 12, opts.etherType ?? 0x0800);
    b.data.set(payload, HEADROOM + 14);
    if (opts.gsoType !== undefined) {
      b.gsoType = opts.gsoType;
      b.gsoSize = opts.gsoSize ?? 0;
    }
    return this.port.writePacket(b);
  }

  /** Send an IPv6 packet in an Ethernet frame (to the gateway's MAC unless `dstMac`). */
  send(ip: Uint8Array, opts: { dstMac?: Uint8Array } = {}): boolean {
    const dst = opts.dstMac ?? this.gatewayMac;
    if (dst === null) throw new Error("RawHost.send: no destination MAC");
    const b = new PacketBuffer(HEADROOM + 14 + ip.length + 64);
    b.setFrame(HEADROOM, 14 + ip.length);
    b.data.set(dst, HEADROOM);
    b.data.set(this.mac, HEADROOM + 6);
    b.view.setUint16(HEADROOM + 12, 0x86dd);
    b.data.set(ip, HEADROOM + 14);
    return this.port.writePacket(b);
  }

  /** Send an IPv6 packet to a multicast group's MAC. */
  sendMulticast(ip: Uint8Array, group: Addr6): boolean {
    return this.send(ip, { dstMac: ipv6MulticastMac(a6(group)) });
  }

  /** Send an ARP packet (op 1 request, 2 reply). */
  sendArp(op: number, spa: number, tha: Uint8Array, tpa: number, ethDst?: Uint8Array): void {
    this.sendIp(arp(op, this.mac, spa, tha, tpa), {
      dstMac: ethDst ?? (op === 1 ? BROADCAST_MAC : tha),
      etherType: 0x0806,
      pad: true,
    });
  }

  /** Ask for `target` by broadcast ARP (which also teaches the target our MAC). */
  arpFor(target: number): void {
    this.sendArp(1, this.ip, new Uint8Array(6), target);
  }

  /** Solicit `target` with our link-layer address (which also teaches the target our MAC). */
  solicit(target: string): void {
    const src = formatIpv6(this.addrs[0]!);
    const dst = formatIpv6(ipv6SolicitedNode(parseIpv6(target)));
    this.sendMulticast(
      ip6({
        src,
        dst,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(src, dst, target, { slla: this.mac }),
      }),
      dst,
    );
  }
}

// ------------------------------------------------------------ the lab builder

/** One family's addresses of a lab: the raw/host ends and the router's two sides. */
export interface LabAddresses {
  a: string;
  rLan: string;
  rWan: string;
  b: string;
  /** Prefix length of both subnets. */
  prefixLen: number;
  /** The raw hosts' IPv6 link-local addresses (IPv6 only). */
  aLL?: string;
  bLL?: string;
}

/** Options of {@link buildLab}. */
export interface BuildLabOptions {
  family: 4 | 6;
  addrs: LabAddresses;
  /** Raw hosts on the ends (true) or stacks h1/h2 with default routes via r (false). */
  raw: boolean;
  lanMtu?: number;
  wanMtu?: number;
  lanOffloads?: boolean;
  /** MTUs of r's NICs set explicitly (else the links'). */
  nicMtu?: boolean;
  /** Forwarding on r's LAN NIC (default true); `forwardingWan` on its WAN NIC (default true). */
  lanForwarding?: boolean;
  wanForwarding?: boolean;
  sendRedirects?: boolean;
  stack?: Omit<StackOptions, "clock" | "random" | "hostname">;
  /** Skip the ARP/NDP warm-up of the raw hosts. */
  cold?: boolean;
  /** Time to let pass after building (IPv6: DAD). */
  settleMs?: number;
}

/** What {@link buildLab} made. */
export interface BuiltLab {
  clock: ManualClock;
  r: Stack;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
  /** Raw hosts (when `raw`). */
  a?: RawHost;
  b?: RawHost;
  /** Stacks with their NICs (when not `raw`). */
  h1?: Stack;
  h2?: Stack;
  h1nic?: Nic;
  h2nic?: Nic;
}

function addAddr(s: Stack, nic: Nic, family: 4 | 6, addr: string, len: number): void {
  if (family === 4) s.ipv4.addAddress(nic, parseIpv4(addr), len);
  else s.ipv6.addAddress(nic, parseIpv6(addr), len);
}

function defaultVia(s: Stack, nic: Nic, family: 4 | 6, gw: string): void {
  if (family === 4) {
    s.ipv4.routes.add({
      prefix: 0,
      prefixLen: 0,
      type: "unicast",
      nicId: nic.id,
      gateway: parseIpv4(gw),
      metric: 0,
      source: "static",
    });
  } else {
    s.ipv6.routes.add({
      prefix: new Uint8Array(16),
      prefixLen: 0,
      type: "unicast",
      nicId: nic.id,
      gateway: parseIpv6(gw),
      metric: 0,
      source: "static",
    });
  }
}

/**
 * a — lan hub — r — wan hub — b, for either family: r forwards between
 * lan0 and wan0; the ends are raw hosts (which r has learnt, unless
 * `cold`) or stacks with a default route via r.
 */
export function buildLab(o: BuildLabOptions): BuiltLab {
  const clock = new ManualClock();
  const lan = new Hub(clock, "lan", o.lanMtu ?? 1500, o.lanOffloads ?? false);
  const wan = new Hub(clock, "wan", o.wanMtu ?? 1500);
  const f = o.family;
  const A = o.addrs;
  const host = (name: string, seed: number) =>
    o.raw ? null : new Stack({ clock, random: new SeededRandom(seed), hostname: name });
  const h1 = host("h1", 1);
  const r = new Stack({ clock, random: new SeededRandom(2), hostname: "r", ...o.stack });
  const h2 = host("h2", 3);
  const hostNic = (s: Stack | null, hub: Hub, mtu: number | undefined) =>
    s?.addNic(hub.port(s.hostname), { name: "eth0", ...(f === 6 ? { mtu, ipv6: true } : {}) });
  const routerNic = (
    hub: Hub,
    name: string,
    fwd: boolean,
    redirects: boolean | undefined,
    mtu: number | undefined,
  ) =>
    r.addNic(
      hub.port("r"),
      f === 4
        ? {
          name,
          forwardingV4: fwd,
          ...(redirects !== undefined ? { sendRedirects: redirects } : {}),
        }
        : {
          name,
          ...(o.nicMtu ? { mtu } : {}),
          ipv6: {
            forwarding: fwd,
            ...(redirects !== undefined ? { sendRedirects: redirects } : {}),
          },
        },
    );
  const h1nic = hostNic(h1, lan, o.lanMtu);
  const rLan = routerNic(lan, "lan0", o.lanForwarding ?? true, o.sendRedirects, o.lanMtu);
  const rWan = routerNic(wan, "wan0", o.wanForwarding ?? true, undefined, o.wanMtu);
  const h2nic = hostNic(h2, wan, o.wanMtu);
  if (h1 !== null) addAddr(h1, h1nic!, f, A.a, A.prefixLen);
  addAddr(r, rLan, f, A.rLan, A.prefixLen);
  addAddr(r, rWan, f, A.rWan, A.prefixLen);
  const lab: BuiltLab = { clock, r, rLan, rWan, lan, wan };
  if (h1 !== null && h2 !== null) {
    addAddr(h2, h2nic!, f, A.b, A.prefixLen);
    defaultVia(h1, h1nic!, f, A.rLan);
    defaultVia(h2, h2nic!, f, A.rWan);
    clock.advance(o.settleMs ?? 0);
    return Object.assign(lab, { h1, h2, h1nic, h2nic });
  }
  const who = (addr: string, ll: string | undefined) =>
    f === 4 ? parseIpv4(addr) : [addr, ...(ll !== undefined ? [ll] : [])];
  const a = new RawHost(lan.port("a"), rawMac(0x0a), who(A.a, A.aLL));
  const b = new RawHost(wan.port("b"), rawMac(0x0b), who(A.b, A.bLL));
  a.gatewayMac = rLan.mac;
  b.gatewayMac = rWan.mac;
  clock.advance(o.settleMs ?? 0);
  if (!o.cold) {
    if (f === 4) {
      a.arpFor(parseIpv4(A.rLan));
      b.arpFor(parseIpv4(A.rWan));
      clock.advance(0);
      clock.advance(0);
    } else {
      a.solicit(A.rLan);
      b.solicit(A.rWan);
      clock.advance(1);
    }
  }
  a.clear();
  b.clear();
  return Object.assign(lab, { a, b });
}

/** A lab with stacks on both ends, as `hostLab`/`hostLab6` return it. */
export interface HostsLab {
  clock: ManualClock;
  h1: Stack;
  r: Stack;
  h2: Stack;
  h1nic: Nic;
  h2nic: Nic;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
}

/** The stacks-on-both-ends view of a lab built with `raw: false`. */
export function hostsOf(l: BuiltLab): HostsLab {
  return {
    clock: l.clock,
    h1: l.h1!,
    r: l.r,
    h2: l.h2!,
    h1nic: l.h1nic!,
    h2nic: l.h2nic!,
    rLan: l.rLan,
    rWan: l.rWan,
    lan: l.lan,
    wan: l.wan,
  };
}
