/**
 * In-memory topologies for stack tests: hosts and routers on MemoryLinks,
 * driven by a ManualClock.
 */
import assert from "node:assert/strict";
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import type {
  Ipv4Route,
  LinkEndpoint,
  NetworkDispatcher,
  Nic,
  StackOptions,
} from "../../stack/mod.ts";
import { MemoryLink } from "../../link/mod.ts";
import {
  BROADCAST_MAC,
  HEADROOM,
  macEqual,
  PacketBuffer,
  parseIpv4,
} from "../../stack/wire/mod.ts";
import { isArp, isIcmp, isIpv4, readArp } from "./_packets.ts";

/** h1 (192.0.2.10) — r (192.0.2.1 | 198.51.100.1) — h2 (198.51.100.10). */
export interface Triangle {
  clock: ManualClock;
  h1: Stack;
  r: Stack;
  h2: Stack;
  h1nic: Nic;
  h2nic: Nic;
  rLan: Nic;
  rWan: Nic;
}

/** Build the two-subnet topology; `wanMtu` sets the router–h2 link MTU. */
export function triangle(opts: { wanMtu?: number } = {}): Triangle {
  const clock = new ManualClock();
  const [a1, a2] = MemoryLink.pair({ clock, names: ["h1:eth0", "r:lan0"] });
  const [b1, b2] = MemoryLink.pair({
    clock,
    mtu: opts.wanMtu ?? 1500,
    names: ["r:wan0", "h2:eth0"],
  });
  const h1 = new Stack({ clock, random: new SeededRandom(1), hostname: "h1" });
  const r = new Stack({ clock, random: new SeededRandom(2), hostname: "r" });
  const h2 = new Stack({ clock, random: new SeededRandom(3), hostname: "h2" });
  const h1nic = h1.addNic(a1, { name: "eth0" });
  const rLan = r.addNic(a2, { name: "lan0", forwardingV4: true });
  const rWan = r.addNic(b1, { name: "wan0", forwardingV4: true, mtu: opts.wanMtu ?? 1500 });
  const h2nic = h2.addNic(b2, { name: "eth0", mtu: opts.wanMtu ?? 1500 });
  h1.ipv4.addAddress(h1nic, parseIpv4("192.0.2.10"), 24);
  r.ipv4.addAddress(rLan, parseIpv4("192.0.2.1"), 24);
  r.ipv4.addAddress(rWan, parseIpv4("198.51.100.1"), 24);
  h2.ipv4.addAddress(h2nic, parseIpv4("198.51.100.10"), 24);
  for (const [s, gw] of [[h1, "192.0.2.1"], [h2, "198.51.100.1"]] as const) {
    s.ipv4.routes.add({
      prefix: 0,
      prefixLen: 0,
      type: "unicast",
      nicId: 1,
      gateway: parseIpv4(gw),
      metric: 0,
      source: "static",
    });
  }
  clock.advance(0);
  return { clock, h1, r, h2, h1nic, h2nic, rLan, rWan };
}

/** Advance the clock in steps until `p` settles (bounded by `maxMs`). */
export async function settle<T>(clock: ManualClock, p: Promise<T>, maxMs = 120_000): Promise<T> {
  let done = false;
  p.then(() => done = true, () => done = true);
  for (let t = 0; t < maxMs && !done; t += 50) {
    for (let i = 0; i < 5; i++) await Promise.resolve();
    if (done) break;
    clock.advance(50);
  }
  return await p;
}

// ------------------------------------------------------------ hubs and raw hosts

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

/**
 * A host without a stack: it records every frame addressed to its MAC (or
 * to a group address), answers ARP requests for its address, and sends
 * whatever bytes a test builds. It lets a test put exact packets on a
 * router's wire and see exactly what comes back.
 */
export class RawHost implements NetworkDispatcher {
  /** Frames received (addressed to us or to a group), in order. */
  readonly received: Uint8Array[] = [];
  /** ARP requests for our address that we answered. */
  arpAnswered = 0;
  /** MAC that {@link sendIp} addresses by default (the router's). */
  gatewayMac: Uint8Array | null = null;

  constructor(
    readonly port: LinkEndpoint,
    readonly mac: Uint8Array,
    readonly ip: number,
  ) {
    port.attach(this);
  }

  deliverFrame(pkt: PacketBuffer): void {
    const f = pkt.data.slice(pkt.start, pkt.end);
    if ((f[0]! & 1) === 0 && !macEqual(f, this.mac, 0, 0)) return;
    this.received.push(f);
    if (isArp(f)) {
      const a = readArp(f);
      if (a.op === 1 && parseIpv4(a.targetIp) === this.ip) {
        this.arpAnswered++;
        this.sendArp(2, parseIpv4(a.targetIp), f.subarray(6, 12), parseIpv4(a.senderIp));
      }
    }
  }

  /** Received IPv4 frames since index `since` of `received`. */
  ipv4(since = 0): Uint8Array[] {
    return this.received.slice(since).filter(isIpv4);
  }

  /** Received ICMP frames (of `type` when given) since index `since`. */
  icmp(type?: number, since = 0): Uint8Array[] {
    return this.received.slice(since).filter((f) => isIcmp(f, type));
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

  /** Send an ARP packet (op 1 request, 2 reply). */
  sendArp(op: number, spa: number, tha: Uint8Array, tpa: number, ethDst?: Uint8Array): void {
    const a = new Uint8Array(28);
    const v = new DataView(a.buffer);
    v.setUint16(0, 1);
    v.setUint16(2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    v.setUint16(6, op);
    a.set(this.mac, 8);
    v.setUint32(14, spa);
    a.set(tha, 18);
    v.setUint32(24, tpa);
    this.sendIp(a, {
      dstMac: ethDst ?? (op === 1 ? BROADCAST_MAC : tha),
      etherType: 0x0806,
      pad: true,
    });
  }

  /** Ask for `target` by broadcast ARP (which also teaches the target our MAC). */
  arpFor(target: number): void {
    this.sendArp(1, this.ip, new Uint8Array(6), target);
  }
}

// ------------------------------------------------------------ labs

/** Addresses of the labs. */
export const ADDR = {
  a: "192.0.2.10",
  rLan: "192.0.2.1",
  rWan: "198.51.100.1",
  b: "198.51.100.10",
} as const;

/** raw a (192.0.2.10) — lan hub — r — wan hub — raw b (198.51.100.10). */
export interface RouterLab {
  clock: ManualClock;
  r: Stack;
  rLan: Nic;
  rWan: Nic;
  lan: Hub;
  wan: Hub;
  a: RawHost;
  b: RawHost;
}

/** Options of {@link routerLab}. */
export interface RouterLabOptions {
  lanMtu?: number;
  wanMtu?: number;
  lanOffloads?: boolean;
  /** Forwarding on r's LAN NIC (default true). */
  lanForwarding?: boolean;
  /** ICMP redirects on r's LAN NIC (default true). */
  sendRedirects?: boolean;
  /** More options for r's Stack. */
  stack?: Omit<StackOptions, "clock" | "random" | "hostname">;
  /** Skip the ARP warm-up (r learns a and b only when it needs them). */
  cold?: boolean;
}

/** A MAC for raw host number `n`. */
export function rawMac(n: number): Uint8Array {
  return new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, n]);
}

/**
 * A router between two hubs with a raw host on each. After it returns, r
 * knows a's and b's MACs (each sent an ARP request for r), unless `cold`.
 */
export function routerLab(opts: RouterLabOptions = {}): RouterLab {
  const clock = new ManualClock();
  const lan = new Hub(clock, "lan", opts.lanMtu ?? 1500, opts.lanOffloads ?? false);
  const wan = new Hub(clock, "wan", opts.wanMtu ?? 1500);
  const r = new Stack({ clock, random: new SeededRandom(2), hostname: "r", ...opts.stack });
  const rLan = r.addNic(lan.port("r"), {
    name: "lan0",
    forwardingV4: opts.lanForwarding ?? true,
    sendRedirects: opts.sendRedirects ?? true,
  });
  const rWan = r.addNic(wan.port("r"), { name: "wan0", forwardingV4: true });
  r.ipv4.addAddress(rLan, parseIpv4(ADDR.rLan), 24);
  r.ipv4.addAddress(rWan, parseIpv4(ADDR.rWan), 24);
  const a = new RawHost(lan.port("a"), rawMac(0x0a), parseIpv4(ADDR.a));
  const b = new RawHost(wan.port("b"), rawMac(0x0b), parseIpv4(ADDR.b));
  a.gatewayMac = rLan.mac;
  b.gatewayMac = rWan.mac;
  clock.advance(0);
  if (!opts.cold) {
    a.arpFor(parseIpv4(ADDR.rLan));
    b.arpFor(parseIpv4(ADDR.rWan));
    clock.advance(0);
    clock.advance(0);
  }
  a.clear();
  b.clear();
  return { clock, r, rLan, rWan, lan, wan, a, b };
}

/** h1 (192.0.2.10) — lan hub — r — wan hub — h2 (198.51.100.10), all stacks. */
export interface HostLab {
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

/** Like {@link triangle}, but over hubs that record every frame. */
export function hostLab(opts: { lanMtu?: number; wanMtu?: number } = {}): HostLab {
  const clock = new ManualClock();
  const lan = new Hub(clock, "lan", opts.lanMtu ?? 1500);
  const wan = new Hub(clock, "wan", opts.wanMtu ?? 1500);
  const h1 = new Stack({ clock, random: new SeededRandom(1), hostname: "h1" });
  const r = new Stack({ clock, random: new SeededRandom(2), hostname: "r" });
  const h2 = new Stack({ clock, random: new SeededRandom(3), hostname: "h2" });
  const h1nic = h1.addNic(lan.port("h1"), { name: "eth0" });
  const rLan = r.addNic(lan.port("r"), { name: "lan0", forwardingV4: true });
  const rWan = r.addNic(wan.port("r"), { name: "wan0", forwardingV4: true });
  const h2nic = h2.addNic(wan.port("h2"), { name: "eth0" });
  h1.ipv4.addAddress(h1nic, parseIpv4(ADDR.a), 24);
  r.ipv4.addAddress(rLan, parseIpv4(ADDR.rLan), 24);
  r.ipv4.addAddress(rWan, parseIpv4(ADDR.rWan), 24);
  h2.ipv4.addAddress(h2nic, parseIpv4(ADDR.b), 24);
  defaultRoute(h1, h1nic, ADDR.rLan);
  defaultRoute(h2, h2nic, ADDR.rWan);
  clock.advance(0);
  return { clock, h1, r, h2, h1nic, h2nic, rLan, rWan, lan, wan };
}

/** Add `prefix/len` via `gateway` (null: on-link) out of `nic` to `s`. */
export function addRoute(
  s: Stack,
  nic: Nic | null,
  cidr: string,
  gateway: string | null,
  type: Ipv4Route["type"] = "unicast",
  metric = 0,
): void {
  const [p, l] = cidr.split("/");
  s.ipv4.routes.add({
    prefix: parseIpv4(p!),
    prefixLen: Number(l),
    type,
    nicId: nic?.id ?? 0,
    gateway: gateway === null ? null : parseIpv4(gateway),
    metric,
    source: "static",
  });
}

/** A default route via `gateway`. */
export function defaultRoute(s: Stack, nic: Nic, gateway: string): void {
  addRoute(s, nic, "0.0.0.0/0", gateway);
}

// ------------------------------------------------------------ counters

/** Every counter of `s` as a flat record: `ipv4.ttlExceeded`, `nic.lan0.framesSent`, `neigh.wan0.packetsQueued`, `neigh6.wan0.packetsQueued`. */
export function counters(s: Stack): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (prefix: string, o: object) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "number") out[prefix + k] = v;
      else if (v !== null && typeof v === "object") walk(`${prefix}${k}.`, v);
    }
  };
  walk("", s.stats);
  for (const n of s.nics.values()) {
    walk(`nic.${n.name}.`, n.stats);
    const st = s.ipv4.nicState(n);
    if (st !== undefined) walk(`neigh.${n.name}.`, st.neighbors.stats);
    const st6 = s.ipv6.nicState(n);
    if (st6 !== undefined) walk(`neigh6.${n.name}.`, st6.neighbors.stats);
  }
  return out;
}

/** Start watching `s`: the returned function gives the counters that changed since (name → delta). */
export function watch(s: Stack): () => Record<string, number> {
  const before = counters(s);
  return () => {
    const after = counters(s);
    const d: Record<string, number> = {};
    for (const [k, v] of Object.entries(after)) {
      const x = v - (before[k] ?? 0);
      if (x !== 0) d[k] = x;
    }
    return d;
  };
}

/** Assert that each counter in `expected` changed by exactly that much (0 = unchanged). */
export function assertDelta(
  delta: Record<string, number>,
  expected: Record<string, number>,
  msg = "",
): void {
  for (const [k, v] of Object.entries(expected)) {
    assert.equal(delta[k] ?? 0, v, `${msg} counter ${k} (changed: ${JSON.stringify(delta)})`);
  }
}
