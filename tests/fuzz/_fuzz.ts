/**
 * A seeded fuzzer for the datapath: mutated frames of every kind tapir
 * parses (ARP; IPv4 UDP, TCP, ICMP, options, fragments, ICMP errors; IPv6
 * UDP, TCP, ICMPv6, NDP, MLD, extension headers, fragments) go straight
 * into the NICs of an IPv4 router with conntrack, MASQUERADE and filter
 * rules, and of an IPv6 router with a stateful filter, on a manual clock.
 * Most mutations get their checksums fixed afterwards so they reach the
 * deep paths, not only the checksum test.
 *
 * It asserts what bad input must never do: throw out of the stack, or
 * hold on to buffers (the pool is back where it started once the clock
 * has run the queues and timers out). Everything is reproducible from the
 * seed.
 *
 * `fuzz()` runs on fresh routers; a `Fuzzer` keeps its routers for as long
 * as it is used (the long campaign of `main.ts`, which samples the heap).
 * A failure carries the target's last events; `reproduce` turns them into
 * a minimised reproducer that fails the same way on a fresh stack, from
 * the failing frame alone when that is enough, else from the shrunk list
 * of recent frames and clock steps.
 *
 * @module
 */
import {
  Dhcpv4Server,
  Dhcpv6Server,
  DnsForwarder,
  MemoryLeaseStore,
  SeededRandom,
} from "../../stack/mod.ts";
import { DnsWriter } from "../../stack/wire/dns.ts";
import { Dhcpv6Writer, duidLl } from "../../stack/wire/dhcpv6.ts";
import { writeDhcpv4 } from "../../stack/wire/dhcpv4.ts";
import { parseIpAddress, parseIpv4, parseIpv6 } from "../../stack/wire/ip_address.ts";
import type { Nic, Stack } from "../../stack/mod.ts";
import type { ManualClock } from "../../stack/clock.ts";
import { HEADROOM, PacketBuffer } from "../../stack/wire/packet_buffer.ts";
import {
  finishChecksum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../../stack/wire/checksum.ts";
import { Ipv6UpperLayer } from "../../stack/wire/ipv6_ext.ts";
import { minimiseEvents, minimiseFrame } from "./_minimise.ts";
import { ADDR, type Hub, type RawHost, routerLab } from "../topology/_topology.ts";
import { arp, echoRequest, icmp, ipv4, PROTO, tcp, udp } from "../topology/_packets.ts";
import {
  ADDR6,
  destOpts,
  echo6,
  frag,
  hbh,
  icmp6,
  ip6,
  llaOption,
  NH,
  ns,
  routerLab6,
  routing,
  T6,
  udp6,
  unknownOption,
} from "../topology/_topology6.ts";
import { firewallFrom } from "../stack/firewall/_fw.ts";

/** One place frames go in: a NIC of a router, with the MAC frames are addressed to. */
interface Target {
  name: string;
  stack: Stack;
  clock: ManualClock;
  nic: Nic;
  /** Frames (Ethernet included) to mutate. */
  seeds: Uint8Array[];
  /**
   * Empty what the test topology records (the hubs' frame logs, the raw
   * hosts' received lists): harness state, not the stack's, that would
   * otherwise grow for as long as the fuzzer runs.
   */
  forget: () => void;
}

/** A `forget` for a lab with two hubs and two raw hosts. */
function forgetter(lab: { lan: Hub; wan: Hub; a: RawHost; b: RawHost }): () => void {
  return () => {
    for (const h of [lab.lan, lab.wan]) h.log.length = 0;
    for (const r of [lab.a, lab.b]) r.received.length = 0;
  };
}

function frame(dst: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set([0x02, 0, 0, 0, 0, 0x0a], 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f.set(payload, 14);
  return f;
}

const BCAST = new Uint8Array(6).fill(0xff);

function v4Target(): Target {
  const lab = routerLab();
  firewallFrom(
    lab.r,
    `
[firewall]
conntrack = { max = 512 }
[firewall.filter]
input = { rules = ["-m conntrack --ctstate INVALID -j DROP", "-p tcp --dport 22 -j REJECT --reject-with tcp-reset"] }
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-p udp --dport 53 -j LOG --log-prefix fuzz",
  "-i lan0 -o wan0 -j ACCEPT",
  "-p icmp -j REJECT",
] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
prerouting = { rules = ["-i wan0 -p tcp --dport 8080 -j DNAT --to-destination 192.0.2.10:80"] }
`,
  );
  const mac = lab.rLan.mac;
  const a = ADDR.a, b = ADDR.b, r = ADDR.rLan;
  const ip4 = (spec: Parameters<typeof ipv4>[0]) => frame(mac, 0x0800, ipv4(spec));
  // The services on the LAN side parse what they get: a DHCPv4 server and the DNS forwarder.
  const d4 = new Dhcpv4Server(lab.r, lab.rLan, {
    pools: [{ start: parseIpv4("192.0.2.100"), end: parseIpv4("192.0.2.150") }],
    leaseTime: 3600,
    routers: [parseIpv4(r)],
    dnsServers: [parseIpv4(r)],
    domain: "lan.example",
    search: [],
    mtu: null,
    ntpServers: [],
    routes: [],
    options: [],
    reservations: [],
    authoritative: true,
    declineTime: 600,
    conflictProbeMs: 0,
  }, { store: new MemoryLeaseStore(), wallClock: () => lab.clock.now() });
  const fwd = new DnsForwarder(lab.r, [lab.rLan], {
    servers: [parseIpAddress(b)],
    hosts: [{ name: "nas.lan", addresses: [parseIpAddress("192.0.2.20")] }],
    local: ["lan"],
  });
  // TCP: a listener (port 2222; 22 is REJECTed) that takes every connection and closes it, so SYNs (mutated options
  // included) reach the listen path, SYN-ACKs and cookies leave, and handshakes can finish.
  const tl = lab.r.tcp.listen({ port: 2222 });
  tl.onAcceptable = () => {
    for (let c = tl.accept(); c !== null; c = tl.accept()) c.close();
  };
  services.set(lab.r, [d4, fwd]);
  const dhcp = new Uint8Array(300);
  const dn = writeDhcpv4(
    dhcp,
    0,
    { op: 1, xid: 7, chaddr: new Uint8Array([2, 0, 0, 0, 0, 0x0a]) },
    [
      [53, new Uint8Array([1])],
      [55, new Uint8Array([1, 3, 6, 121])],
      [61, new Uint8Array([1, 2, 0, 0, 0, 0, 0x0a])],
    ],
  );
  const dnsQuery = (name: string, type: number) => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id: 9, flags: 0x0100, qd: 1, ar: 1 }).question(name, type).opt(1232, true);
    return w.bytes().slice();
  };
  const inner = ipv4({ src: b, dst: a, protocol: PROTO.UDP, payload: udp(b, a, 53, 40000, 8) });
  const fuzzMac = new Uint8Array([0x02, 0, 0, 0, 0, 0x0a]);
  const arpFrame = (op: number) =>
    frame(op === 1 ? BCAST : mac, 0x0806, arp(op, fuzzMac, a, new Uint8Array(6), r));

  const seeds = [
    frame(
      BCAST,
      0x0800,
      ipv4({
        src: "0.0.0.0",
        dst: "255.255.255.255",
        protocol: PROTO.UDP,
        payload: udp("0.0.0.0", "255.255.255.255", 68, 67, dhcp.subarray(0, dn)),
      }),
    ),
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.UDP,
      payload: udp(a, r, 40000, 53, dnsQuery("www.Example.com", 1)),
    }),
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.UDP,
      payload: udp(a, r, 40001, 53, dnsQuery("nas.lan", 12)),
    }),
    arpFrame(1),
    arpFrame(2),
    ip4({ src: a, dst: b, protocol: PROTO.UDP, payload: udp(a, b, 40000, 53, 32) }),
    ip4({ src: a, dst: r, protocol: PROTO.UDP, payload: udp(a, r, 40000, 9, 8) }),
    ip4({
      src: a,
      dst: b,
      protocol: PROTO.TCP,
      payload: tcp(a, b, { sport: 40001, dport: 80, seq: 1, flags: 2, payload: new Uint8Array(0) }),
    }),
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.TCP,
      payload: tcp(a, r, { sport: 40002, dport: 22, seq: 1, flags: 2, payload: new Uint8Array(0) }),
    }),
    // A Linux-style SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.TCP,
      payload: tcp(a, r, {
        sport: 40003,
        dport: 2222,
        seq: 1000,
        flags: 2,
        options: new Uint8Array([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]),
        payload: new Uint8Array(0),
      }),
    }),
    // Data with a SACK option to the listener's port (no connection: a reset, or a cookie check).
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.TCP,
      payload: tcp(a, r, {
        sport: 40003,
        dport: 2222,
        seq: 1001,
        ack: 1,
        flags: 0x18,
        options: new Uint8Array([1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]),
        payload: new Uint8Array(16),
      }),
    }),
    ip4({ src: a, dst: r, protocol: PROTO.ICMP, payload: echoRequest(1, 1, 24) }),
    ip4({ src: a, dst: b, protocol: PROTO.ICMP, payload: echoRequest(2, 1, 24), ttl: 1 }),
    ip4({ src: a, dst: b, protocol: PROTO.ICMP, payload: icmp(3, 3, 0, inner) }),
    ip4({
      src: a,
      dst: b,
      protocol: PROTO.UDP,
      payload: udp(a, b, 40000, 7, 8),
      options: [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0],
    }),
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.ICMP,
      payload: echoRequest(3, 1, 8),
      options: [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    }),
    ip4({ src: a, dst: r, protocol: PROTO.UDP, payload: udp(a, r, 1, 9, 64), mf: true, id: 7 }),
    ip4({
      src: a,
      dst: r,
      protocol: PROTO.UDP,
      payload: new Uint8Array(32),
      fragOffset: 72,
      id: 7,
    }),
  ];
  return {
    name: "ipv4 router",
    stack: lab.r,
    clock: lab.clock,
    nic: lab.rLan,
    seeds,
    forget: forgetter(lab),
  };
}

function v6Target(): Target {
  const lab = routerLab6();
  firewallFrom(
    lab.r,
    `
[firewall.ipv6.filter]
input = { rules = ["-m conntrack --ctstate INVALID -j DROP", "-p tcp --dport 22 -j REJECT"] }
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -j ACCEPT",
] }
`,
  );
  const mac = lab.rLan.mac;
  const a = ADDR6.a, b = ADDR6.b, r = ADDR6.rLan;
  const f6 = (spec: Parameters<typeof ip6>[0], dst = mac) => frame(dst, 0x86dd, ip6(spec));
  const d6 = new Dhcpv6Server(lab.r, lab.rLan, {
    pools: [{ start: parseIpv6("2001:db8:1::100"), end: parseIpv6("2001:db8:1::1ff") }],
    pdPools: [{ prefix: parseIpv6("2001:db8:100::"), prefixLen: 48, delegatedLen: 56 }],
    preferredLifetime: 3600,
    validLifetime: 7200,
    dnsServers: [parseIpv6(r)],
    domains: ["lan.example"],
    rapidCommit: true,
    preference: 0,
    declineTime: 600,
  }, { store: new MemoryLeaseStore(), wallClock: () => lab.clock.now() });
  const sol = new Dhcpv6Writer(new Uint8Array(256));
  sol.header(1, 0x123456).option(1, duidLl(new Uint8Array([2, 0, 0, 0, 0, 0x0a])));
  sol.open(8).u16(0).close().option(14);
  sol.open(6).u16(23).u16(24).close();
  sol.open(3).u32(1).u32(0).u32(0).close();
  sol.open(25).u32(2).u32(0).u32(0).open(26).u32(0).u32(0).u8(56).raw(new Uint8Array(16)).close();
  sol.close();
  const solicit = sol.bytes().slice();
  // A UDP datagram 546 -> 547 with the SOLICIT (the checksum is fixed below).
  const u6 = new Uint8Array(8 + solicit.length);
  new DataView(u6.buffer).setUint16(0, 546);
  new DataView(u6.buffer).setUint16(2, 547);
  new DataView(u6.buffer).setUint16(4, u6.length);
  u6.set(solicit, 8);
  const solicitFrame = f6(
    { src: ADDR6.aLL, dst: "ff02::1:2", proto: NH.UDP, payload: u6 },
    new Uint8Array([0x33, 0x33, 0, 1, 0, 2]),
  );
  fixChecksums(solicitFrame);
  services.set(lab.r, [d6]);
  const sn = [0x33, 0x33, 0xff, 0, 0, 1];
  const seeds = [
    solicitFrame,
    f6({ src: a, dst: b, proto: NH.UDP, payload: udp6(a, b, 40000, 53, 32) }),
    f6({ src: a, dst: r, proto: NH.UDP, payload: udp6(a, r, 40000, 9, 8) }),
    f6({ src: a, dst: r, proto: NH.ICMP6, payload: echo6(a, r) }),
    f6({ src: a, dst: b, proto: NH.ICMP6, payload: echo6(a, b), hopLimit: 1 }),
    f6({ src: a, dst: r, proto: NH.UDP, payload: udp6(a, r, 1, 9), ext: [hbh(), destOpts()] }),
    f6({
      src: a,
      dst: r,
      proto: NH.UDP,
      payload: udp6(a, r, 1, 9),
      ext: [destOpts(...unknownOption(2))],
    }),
    f6({ src: a, dst: r, proto: NH.UDP, payload: udp6(a, r, 1, 9), ext: [routing(0, 1)] }),
    f6({ src: a, dst: r, proto: NH.UDP, payload: udp6(a, r, 1, 9, 64), ext: [frag(0, true, 5)] }),
    f6({ src: a, dst: r, proto: NH.UDP, payload: new Uint8Array(40), ext: [frag(72, false, 5)] }),
    f6(
      {
        src: a,
        dst: "ff02::1:ff00:1",
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(a, "ff02::1:ff00:1", r, { slla: new Uint8Array([2, 0, 0, 0, 0, 0x0a]) }),
      },
      new Uint8Array(sn),
    ),
    f6({
      src: ADDR6.aLL,
      dst: "ff02::2",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: icmp6(ADDR6.aLL, "ff02::2", T6.RS, 0, 0, new Uint8Array(llaOption(1, mac))),
    }, new Uint8Array([0x33, 0x33, 0, 0, 0, 2])),
    f6({
      src: b,
      dst: a,
      proto: NH.ICMP6,
      payload: icmp6(
        b,
        a,
        T6.TOO_BIG,
        0,
        1280,
        ip6({ src: a, dst: b, proto: 17, payload: udp6(a, b, 1, 2) }),
      ),
    }),
  ];
  return {
    name: "ipv6 router",
    stack: lab.r,
    clock: lab.clock,
    nic: lab.rLan,
    seeds,
    forget: forgetter(lab),
  };
}

/** Fix the IPv4 header checksum and the transport checksum of `f` where they can be found. */
function fixChecksums(f: Uint8Array): void {
  if (f.length < 14) return;
  const et = (f[12]! << 8) | f[13]!;
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  if (et === 0x0800 && f.length >= 34) {
    const hl = (f[14]! & 0x0f) << 2;
    if (hl < 20 || 14 + hl > f.length) return;
    v.setUint16(24, 0);
    v.setUint16(24, internetChecksum(f, 14, hl));
    if ((v.getUint16(20) & 0x3fff) !== 0) return; // a fragment: no whole transport header
    const total = Math.min(v.getUint16(16), f.length - 14);
    const l4 = 14 + hl, len = total - hl;
    if (len < 8) return;
    const proto = f[23]!;
    const at = proto === 17 ? 6 : proto === 6 ? 16 : proto === 1 ? 2 : -1;
    if (at < 0 || at + 2 > len) return;
    v.setUint16(l4 + at, 0);
    const ph = proto === 1 ? 0 : ipv4PseudoHeaderSum(v.getUint32(26), v.getUint32(30), proto, len);
    v.setUint16(l4 + at, finishChecksum(onesSum(f, l4, len, ph)));
  } else if (et === 0x86dd && f.length >= 54) {
    const end = Math.min(54 + v.getUint16(18), f.length);
    const u = new Ipv6UpperLayer().find(f, 14, end);
    if (u.truncated || u.fragment !== 0 || u.offset >= end) return;
    const proto = u.proto;
    const at = proto === 17 ? 6 : proto === 6 ? 16 : proto === 58 ? 2 : -1;
    const len = end - u.offset;
    if (at < 0 || at + 2 > len) return;
    v.setUint16(u.offset + at, 0);
    const ph = ipv6PseudoHeaderSum(f, 22, 38, proto, len);
    v.setUint16(u.offset + at, finishChecksum(onesSum(f, u.offset, len, ph)));
  }
}

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xfe, 0xff];

/** One mutation of `seed`, chosen by `rnd`. */
export function mutate(seed: Uint8Array, rnd: SeededRandom): Uint8Array {
  let f = seed.slice();
  const n = 1 + (rnd.uint32() % 4);
  for (let k = 0; k < n; k++) {
    const kind = rnd.uint32() % 6;
    // Headers are where the parsers are: bias positions to the first 80 bytes.
    const pos = 12 +
      (rnd.uint32() % Math.max(1, Math.min(f.length - 12, rnd.uint32() % 2 ? 80 : 1500)));
    if (kind === 0 && pos < f.length) f[pos]! ^= 1 << (rnd.uint32() % 8);
    else if (kind === 1 && pos < f.length) f[pos] = BOUNDARY[rnd.uint32() % BOUNDARY.length]!;
    else if (kind === 2 && pos < f.length) f[pos] = rnd.uint32() & 0xff;
    else if (kind === 3) f = f.slice(0, Math.max(14, pos));
    else if (kind === 4) {
      const extra = new Uint8Array(rnd.uint32() % 64);
      for (let i = 0; i < extra.length; i++) extra[i] = rnd.uint32() & 0xff;
      const g = new Uint8Array(f.length + extra.length);
      g.set(f);
      g.set(extra, f.length);
      f = g;
    } else if (pos + 1 < f.length) {
      // A 16-bit field (lengths, ports, offsets) to a boundary or one off.
      const w = [0, 1, 0xffff, f.length - 14, f.length - 13, 0x8000][rnd.uint32() % 6]!;
      f[pos] = (w >> 8) & 0xff;
      f[pos + 1] = w & 0xff;
    }
  }
  if (rnd.uint32() % 4 !== 0) fixChecksums(f);
  return f;
}

/** What went wrong, reproducible from the seed and the frame. */
export interface FuzzFailure {
  target: string;
  seed: number;
  index: number;
  /** The failing frame in hex ("" for a failure found when the timers ran out). */
  frameHex: string;
  error: string;
  /** What `replay` returns when it meets the same failure (see `failureSignature`). */
  signature: string;
  /** The target's last events up to the failure (frames and clock advances), for `reproduce`. */
  history: FuzzEvent[];
}

/** What a run did. */
export interface FuzzReport {
  frames: number;
  ms: number;
  failure: FuzzFailure | null;
  /** Counters of deep paths the frames reached (name → value), to show they got past the checks. */
  reached: Record<string, number>;
}

const dhcp4 = (s: Stack) =>
  (services.get(s) ?? []).find((x) => x instanceof Dhcpv4Server) as Dhcpv4Server | undefined;
const dhcp6 = (s: Stack) =>
  (services.get(s) ?? []).find((x) => x instanceof Dhcpv6Server) as Dhcpv6Server | undefined;
const dns = (s: Stack) =>
  (services.get(s) ?? []).find((x) => x instanceof DnsForwarder) as DnsForwarder | undefined;
/** The services each target runs (they are not in `stack.services`: no config built them). */
const services = new WeakMap<Stack, object[]>();

function reached(v4: Stack, v6: Stack): Record<string, number> {
  const s4 = v4.stats, s6 = v6.stats;
  return {
    "v4 forwarded": s4.ipv4.forwarding.packets,
    "v4 delivered": s4.ipv4.packetsDelivered,
    "v4 ICMP errors sent": s4.icmpv4.errorsSent,
    "v4 options dropped": s4.ipv4.optionsDropped,
    "v4 firewall drops": v4.firewall?.stats.dropped ?? 0,
    "v4 conntrack entries made": v4.firewall?.conntrack.stats.inserted ?? 0,
    "v4 ARP answered": s4.arp.requestsAnswered,
    "v6 forwarded": s6.ipv6.forwarding.packets,
    "v6 delivered": s6.ipv6.packetsDelivered,
    "v6 ICMPv6 errors sent": s6.icmpv6.errorsSent,
    "v6 options dropped": s6.ipv6.optionsDropped,
    "v6 NDP received": s6.ndp.messagesReceived,
    "DHCPv4 DISCOVERs read": dhcp4(v4)?.stats.discoverReceived ?? 0,
    "DNS queries read": dns(v4)?.stats.queriesReceived ?? 0,
    "TCP SYNs to a listener (SYN-ACKs and cookies)": s4.tcp.passiveOpens + s4.tcp.synCookiesSent,
    "DHCPv6 SOLICITs read": dhcp6(v6)?.stats.solicitReceived ?? 0,
  };
}

/** One thing that happened to a target: a frame delivered, or the clock advanced. */
export type FuzzEvent = { frame: Uint8Array } | { advance: number };

/** A reproducer as saved: the events to replay on a fresh target, frames in hex. */
export type SavedEvent = { frameHex: string } | { advance: number };

/** The targets, in the order frames alternate between them. */
const TARGETS: readonly (() => Target)[] = [v4Target, v6Target];

/** Names of the targets, in the order `Fuzzer` alternates between them. */
export const TARGET_NAMES = ["ipv4 router", "ipv6 router"] as const;

/** How many recent events per target a `Fuzzer` keeps for the reproducer. */
const HISTORY = 4096;

function freshTarget(name: string): Target {
  const k = TARGET_NAMES.indexOf(name as typeof TARGET_NAMES[number]);
  if (k < 0) throw new Error(`no fuzz target named ${JSON.stringify(name)}`);
  const t = TARGETS[k]!();
  t.clock.advance(5_000);
  return t;
}

const scratch = new PacketBuffer(HEADROOM + 1600 + 64);

function deliver(t: Target, f: Uint8Array): void {
  const len = Math.min(f.length, 1600);
  scratch.data.set(f.subarray(0, len), HEADROOM);
  scratch.setFrame(HEADROOM, len);
  t.nic.deliverFrame(scratch);
}

/** Run every queue and timer (reassembly, neighbors, conntrack, DHCP) of `t` out. */
function drainTarget(t: Target): void {
  for (let k = 0; k < 200; k++) t.clock.advance(10_000);
}

/**
 * What identifies a failure, so a replay can tell it found the same one:
 * the error's first line and the innermost stack frame (file and line), or
 * the kind of leak.
 */
export function failureSignature(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const lines = (e.stack ?? e.message).split("\n");
  const at = lines.find((l) => l.trimStart().startsWith("at ")) ?? "";
  return `${lines[0]} ${at.trim()}`;
}

const LEAK = "buffers still held after every timer ran out";

/**
 * Replay `events` on a fresh target named `name` and return the failure
 * signature it ends in (an exception, or held buffers once its timers ran
 * out), or null if none.
 */
export function replay(name: string, events: readonly FuzzEvent[]): string | null {
  const t = freshTarget(name);
  const base = t.stack.pool.inUse();
  try {
    for (const e of events) "frame" in e ? deliver(t, e.frame) : t.clock.advance(e.advance);
    drainTarget(t);
  } catch (e) {
    return failureSignature(e);
  }
  return t.stack.pool.inUse() > base ? LEAK : null;
}

/**
 * A reproducer as small as the minimiser can make it, and how it was found.
 * The failure is first tried from the failing frame alone on a fresh stack
 * (`"frame"`); if the stack's earlier state was needed, from the last
 * `HISTORY` events of that target (`"history"`), shrunk by `minimiseEvents`
 * and then its last frame by `minimiseFrame`. If neither reproduces it
 * (`"seed"`), the seed and frame index still do: the event sequence of a
 * `Fuzzer` depends on its seed alone.
 */
export function reproduce(
  name: string,
  history: readonly FuzzEvent[],
  signature: string,
): { kind: "frame" | "history" | "seed"; events: FuzzEvent[] } {
  const same = (ev: readonly FuzzEvent[]) => replay(name, ev) === signature;
  const last = history.findLastIndex((e) => "frame" in e);
  const lastFrame = last >= 0 ? (history[last] as { frame: Uint8Array }).frame : null;
  const shrinkLast = (ev: FuzzEvent[]): FuzzEvent[] => {
    const j = ev.findLastIndex((e) => "frame" in e);
    if (j < 0) return ev;
    const f = minimiseFrame(
      (ev[j] as { frame: Uint8Array }).frame,
      (g) => same([...ev.slice(0, j), { frame: g }, ...ev.slice(j + 1)]),
      { maxTries: 2048 },
    );
    return [...ev.slice(0, j), { frame: f }, ...ev.slice(j + 1)];
  };
  if (lastFrame !== null && signature !== LEAK && same([{ frame: lastFrame }])) {
    return { kind: "frame", events: shrinkLast([{ frame: lastFrame }]) };
  }
  if (same(history)) {
    return { kind: "history", events: shrinkLast(minimiseEvents(history, same)) };
  }
  return { kind: "seed", events: lastFrame === null ? [] : [{ frame: lastFrame }] };
}

/** Events in the form they are saved in. */
export function saveEvents(events: readonly FuzzEvent[]): SavedEvent[] {
  return events.map((e) => "frame" in e ? { frameHex: toHex(e.frame) } : e);
}

/** Saved events back in the form `replay` takes. */
export function loadEvents(saved: readonly SavedEvent[]): FuzzEvent[] {
  return saved.map((e) =>
    "frameHex" in e
      ? { frame: new Uint8Array((e.frameHex.match(/../g) ?? []).map((h) => parseInt(h, 16))) }
      : e
  );
}

function toHex(f: Uint8Array): string {
  return [...f].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The fuzzer with its targets kept: `run` may be called again and again on
 * the same two routers (the long campaign does, so its heap samples show
 * whether state piles up), and `settle` runs their timers out and checks
 * that every buffer came back. Which frames it sends, and when the clock
 * moves, depend only on the seed and the number of frames sent so far.
 */
export class Fuzzer {
  readonly seed: number;
  /** Frames sent so far (the index of the next one). */
  frames = 0;
  #rnd: SeededRandom;
  #targets: Target[];
  #baseline: number[];
  #history: FuzzEvent[][];

  constructor(seed: number) {
    this.seed = seed;
    this.#rnd = new SeededRandom(seed);
    this.#targets = TARGET_NAMES.map(freshTarget);
    this.#baseline = this.#targets.map((t) => t.stack.pool.inUse());
    this.#history = this.#targets.map(() => []);
  }

  #record(k: number, e: FuzzEvent): void {
    const h = this.#history[k]!;
    h.push(e);
    if (h.length > 2 * HISTORY) h.splice(0, h.length - HISTORY);
  }

  #fail(k: number, e: unknown, frameHex: string): FuzzFailure {
    const t = this.#targets[k]!;
    return {
      target: t.name,
      seed: this.seed,
      index: this.frames,
      frameHex,
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
      signature: failureSignature(e),
      history: this.#history[k]!.slice(-HISTORY),
    };
  }

  /** Send frames until `frames` more were sent or `ms` passed (whichever first), or one fails. */
  run(limits: { frames?: number; ms?: number }): FuzzFailure | null {
    const rnd = this.#rnd;
    const end = this.frames + (limits.frames ?? Infinity);
    const maxMs = limits.ms ?? Infinity;
    const t0 = performance.now();
    for (
      ;
      this.frames < end && (this.frames & 255 || performance.now() - t0 < maxMs);
      this.frames++
    ) {
      const i = this.frames;
      const k = i & 1;
      const t = this.#targets[k]!;
      const s = t.seeds[rnd.uint32() % t.seeds.length]!;
      const f = rnd.uint32() % 16 === 0 ? s : mutate(s, rnd);
      this.#record(k, { frame: f });
      try {
        deliver(t, f);
        if ((i & 63) === 63) {
          const ms = rnd.uint32() % 2000;
          this.#record(k, { advance: ms });
          t.clock.advance(ms);
        }
      } catch (e) {
        const failure = this.#fail(k, e, toHex(f));
        this.frames++;
        return failure;
      }
    }
    return null;
  }

  /**
   * Run every queue and timer out, check that each target's pool is back at
   * its baseline, and trim the pools as an idle stack does.
   */
  settle(): FuzzFailure | null {
    for (let k = 0; k < this.#targets.length; k++) {
      const t = this.#targets[k]!;
      for (let n = 0; n < 200; n++) this.#record(k, { advance: 10_000 });
      try {
        drainTarget(t);
      } catch (e) {
        return this.#fail(k, e, "");
      }
      t.forget();
      const held = t.stack.pool.inUse() - this.#baseline[k]!;
      if (held > 0) {
        const f = this.#fail(k, new Error(`${held} ${LEAK}`), "");
        return { ...f, signature: LEAK };
      }
      // The stack's own idle release, twice: the first trim ends the window
      // whose peak it keeps, the second lets go every free buffer above the
      // floor. What the pool then holds is what the stack holds on to, not
      // the free list of the last burst.
      t.stack.pool.trim();
      t.stack.pool.trim();
    }
    return null;
  }

  /** Counters of deep paths the frames reached so far. */
  reached(): Record<string, number> {
    return reached(this.#targets[0]!.stack, this.#targets[1]!.stack);
  }
}

/**
 * Run mutated frames into both routers until `frames` or `ms` is reached
 * (whichever first), advancing the clock now and then so queues, timers and
 * reassembly run, and at the end until everything has timed out. A fresh
 * `Fuzzer`: the same seed gives the same frames.
 */
export function fuzz(seed: number, limits: { frames?: number; ms?: number }): FuzzReport {
  const t0 = performance.now();
  const fz = new Fuzzer(seed);
  const failure = fz.run(limits) ?? fz.settle();
  return { frames: fz.frames, ms: performance.now() - t0, failure, reached: fz.reached() };
}
