/**
 * `deno task bench:soak [--seconds N] [--sample S] [--warmup W] [--stats]`: one
 * router under mixed traffic for `N` seconds of wall time (default 600),
 * with the heap, the RSS and the router's tables sampled every `S` seconds
 * (default 30); the heap must be flat after the warm-up (`W` seconds,
 * default a third of the run, at most 120).
 *
 * In process, on a manual clock that advances `TICK_MS` of virtual time
 * per tick of traffic (virtual time runs as fast as the CPU lets it; both
 * are reported). The router `r` is built from TOML by `buildStack`, as
 * `tapir run` builds it: both families forwarding, conntrack, MASQUERADE on
 * wan0, a filter with policy drop on INPUT and FORWARD, RAs with three
 * prefixes on lan0, `accept_ra` on wan0, a DHCPv4 server on lan0.
 *
 *     lan hub: r:lan0, h1 (stack), dc (stack, DHCP client), gen (raw), churn (raw)
 *     wan hub: r:wan0, isp (stack: echo/discard services, RAs), rogue (raw RAs, scans)
 *
 * What it drives, per virtual second:
 * - forwarding: gen → isp 100 UDP echo + 100 ICMP echo per family (each
 *   UDP from a new source port of 8,192, so flows open and expire) and 400
 *   discard datagrams per family on steady flows; the replies come back;
 * - NAT TCP: h1 opens 10 IPv4 and 5 IPv6 echo connections to isp (a
 *   handshake, 1 KiB each way, FIN both ways), every one from a new port,
 *   through MASQUERADE; gen sends 20 SYNs to a closed port (RST back);
 * - dead ends: 10 datagrams per family to WAN addresses nobody answers
 *   (ARP/NDP resolution fails, host unreachable comes back);
 * - churn: 5 LAN neighbours are born per second (an ARP request and an NS
 *   with SLLA from a new MAC and new addresses, then a datagram per family
 *   each second) and each goes away after 20 s; one in four never answers
 *   the router's ARP or NS;
 * - RAs: r advertises on lan0 (h1 takes SLAAC addresses); isp advertises
 *   two prefixes on the WAN; every 5 s a new router on the WAN advertises
 *   a new prefix (lifetime 60 s), so r's SLAAC addresses and default
 *   routers come and go;
 * - DHCP: dc takes a lease with a new client id, holds it 5 s and releases it;
 * - filtered: every 100 ms rogue sends an IPv4 datagram and a ping to a LAN
 *   host from the WAN (dropped by FORWARD's policy) and an IPv6 SYN to port
 *   23 (rejected with a RST).
 *
 * The lab keeps nothing: the hubs' logs and the raw hosts' received frames
 * are dropped after every tick.
 *
 * At each sample it forces two GCs (the task runs with
 * `--v8-flags=--expose-gc`; one GC leaves freed ArrayBuffers counted in
 * `external`) and records the V8 heap, external memory, RSS, the router's
 * tables and the packet rate. The heap is judged as in `deno task fuzz`:
 * flat when no sample after the warm-up exceeds the warm-up maximum of
 * heap + external by more than 10 %; otherwise the run exits 1. The tables
 * and the RSS are reported, not judged: each is marked "still rising" when
 * its peak in the second half after the warm-up is more than 10 % above its
 * peak in the first half. `--stats` prints the router's counters at the end.
 *
 * @module
 */
import { parseConfig } from "../config/mod.ts";
import { buildStack } from "../config/build.ts";
import { ManualClock, SeededRandom, Stack } from "../stack/mod.ts";
import type { LinkEndpoint, NetworkDispatcher, Nic } from "../stack/mod.ts";
import { Dhcpv4Client, type Dhcpv4Server } from "../stack/apps/dhcp/mod.ts";
import { startLabService, transferProbe } from "../stack/apps/lab_services.ts";
import {
  BROADCAST_MAC,
  formatIpv6,
  HEADROOM,
  ipv6MulticastMac,
  ipv6SolicitedNode,
  PacketBuffer,
  parseIpv4,
  parseIpv6,
} from "../stack/wire/mod.ts";
import { Hub, type HubPort, RawHost } from "../tests/topology/_lab.ts";
import { arp, echoRequest, icmp, ipv4, PROTO, tcp, udp } from "../tests/topology/_packets.ts";
import { checksum6, echo6, icmp6, ip6, na, NH, ns, T6, udp6 } from "../tests/topology/_packets6.ts";

/** Virtual milliseconds per tick of traffic. */
const TICK_MS = 10;
/** How much the post-GC heap may grow over its warm-up maximum and still be called flat. */
const HEAP_GROWTH = 0.10;

function arg(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : def;
}

const seconds = arg("--seconds", 600);
const sampleS = arg("--sample", 30);
const warmupS = arg("--warmup", Math.min(120, Math.floor(seconds / 3)));
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("no gc(): heap samples are not after a full GC (run with --v8-flags=--expose-gc)");
}

const MB = 1024 * 1024;
const mb = (n: number) => (n / MB).toFixed(1);

// ------------------------------------------------------------ the configs

const R_TOML = `
[router]
hostname = "r"
forwarding = { ipv4 = true, ipv6 = true }

[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "10.1.0.1/16", "2001:db8:1::1/64"]
[interface.ra]
enabled = true
interval = "3s..10s"
prefixes = [
  { prefix = "2001:db8:1::/64" },
  { prefix = "2001:db8:11::/64", valid_lifetime = "3600s", preferred_lifetime = "1800s" },
  { prefix = "2001:db8:12::/64", autonomous = false },
]
rdnss = ["2001:db8:1::1"]
[interface.dhcp]
pools = ["192.0.2.100-192.0.2.199"]
lease_time = "120s"

[[interface]]
name = "wan0"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
accept_ra = true

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.254"

[firewall.filter]
input = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-m conntrack --ctstate INVALID -j DROP",
  "-i lan0 -p udp --sport 68 --dport 67 -j ACCEPT",
  "-p icmpv6 -j ACCEPT",
  "-i lan0 -p icmp -j ACCEPT",
] }
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-m conntrack --ctstate INVALID -j DROP",
  "-i lan0 -o wan0 -j ACCEPT",
  "-p icmpv6 --icmpv6-type packet-too-big -j ACCEPT",
  "-i wan0 -p tcp --dport 23 -j REJECT --reject-with tcp-reset",
] }

[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;

const ISP_TOML = `
[router]
hostname = "isp"
forwarding = { ipv4 = false, ipv6 = true }

[[interface]]
name = "eth0"
addresses = ["198.51.100.254/24", "2001:db8:2::fe/64"]
[interface.ra]
enabled = true
interval = "3s..10s"
prefixes = [{ prefix = "2001:db8:2::/64" }, { prefix = "2001:db8:22::/64" }]

[[route]]
to = "2001:db8:1::/48"
via = "2001:db8:2::1"
`;

const H1_TOML = `
[router]
hostname = "h1"
[[interface]]
name = "eth0"
addresses = ["192.0.2.10/24", "2001:db8:1::10/64"]
accept_ra = true
[[route]]
to = "0.0.0.0/0"
via = "192.0.2.1"
`;

// ------------------------------------------------------------ the lab

const clock = new ManualClock();
const lan = new Hub(clock, "lan");
const wan = new Hub(clock, "wan");
const portOf = (hub: Hub, name: string) => () => hub.port(name);

const r = buildStack(parseConfig(R_TOML), {
  clock,
  random: new SeededRandom(2),
  openLink: (i) => i.name === "lan0" ? lan.port("r") : wan.port("r"),
}).stack;
const rLan = r.nicByName("lan0")!;
const rWan = r.nicByName("wan0")!;
const isp = buildStack(parseConfig(ISP_TOML), {
  clock,
  random: new SeededRandom(3),
  openLink: portOf(wan, "isp"),
}).stack;
const h1 = buildStack(parseConfig(H1_TOML), {
  clock,
  random: new SeededRandom(1),
  openLink: portOf(lan, "h1"),
}).stack;
for (const type of ["echo", "discard"] as const) {
  isp.services.set(type, startLabService(isp, { type, udp: true }));
}
const dc = new Stack({ clock, random: new SeededRandom(4), hostname: "dc" });
const dcNic = dc.addNic(lan.port("dc"), { name: "eth0" });

const GEN4 = "192.0.2.20", GEN6 = "2001:db8:1::20";
const ISP4 = "198.51.100.254", ISP6 = "2001:db8:2::fe";
const gen = new RawHost(lan.port("gen"), new Uint8Array([2, 0, 0, 0, 0, 0x20]), {
  ipv4: parseIpv4(GEN4),
  ipv6: [GEN6, "fe80::20"],
});
gen.gatewayMac = rLan.mac;
const rogue = new RawHost(wan.port("rogue"), new Uint8Array([2, 0, 0, 0, 0, 0x30]), {
  ipv4: parseIpv4("198.51.100.30"),
  ipv6: ["2001:db8:2::30", "fe80::30"],
});
rogue.gatewayMac = rWan.mac;

/** Write one Ethernet frame from `port`. */
function sendFrame(
  port: LinkEndpoint,
  dst: Uint8Array,
  src: Uint8Array,
  etherType: number,
  payload: Uint8Array,
): void {
  const len = Math.max(14 + payload.length, 60);
  const b = new PacketBuffer(HEADROOM + len + 64);
  b.setFrame(HEADROOM, len);
  b.data.set(dst, HEADROOM);
  b.data.set(src, HEADROOM + 6);
  b.view.setUint16(HEADROOM + 12, etherType);
  b.data.set(payload, HEADROOM + 14);
  port.writePacket(b);
}

// ------------------------------------------------------------ LAN churn

/** A short-lived LAN neighbour of the churn. */
interface Peer {
  n: number;
  mac: Uint8Array;
  v4: string;
  v6: string;
  mute: boolean;
  dies: number;
}

/**
 * Many short-lived hosts behind one hub port: each has its own MAC and
 * addresses, and (unless mute) answers ARP requests and Neighbor
 * Solicitations for them while it lives.
 */
class Churn implements NetworkDispatcher {
  readonly port: HubPort;
  readonly alive = new Map<number, Peer>();
  readonly by4 = new Map<number, Peer>();
  readonly by6 = new Map<string, Peer>();
  born = 0;

  constructor(hub: Hub) {
    this.port = hub.port("churn");
    this.port.attach(this);
  }

  deliverFrame(pkt: PacketBuffer): void {
    const d = pkt.data, o = pkt.start;
    const type = (d[o + 12]! << 8) | d[o + 13]!;
    if (type === 0x0806) {
      if (((d[o + 20]! << 8) | d[o + 21]!) !== 1) return;
      const tpa = pkt.view.getUint32(o + 38);
      const p = this.by4.get(tpa);
      if (p === undefined || p.mute) return;
      const sha = d.slice(o + 22, o + 28), spa = pkt.view.getUint32(o + 28);
      sendFrame(this.port, sha, p.mac, 0x0806, arp(2, p.mac, tpa, sha, spa));
      return;
    }
    // An NS: IPv6, ICMPv6 (no extension headers), type 135.
    if (type !== 0x86dd || d[o + 20] !== NH.ICMP6 || d[o + 54] !== T6.NS) return;
    const p = this.by6.get(formatIpv6(d.subarray(o + 62, o + 78)));
    if (p === undefined || p.mute) return;
    const src = formatIpv6(d.subarray(o + 22, o + 38));
    if (src === "::") return;
    sendFrame(
      this.port,
      d.slice(o + 6, o + 12),
      p.mac,
      0x86dd,
      ip6({
        src: p.v6,
        dst: src,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: na(p.v6, src, p.v6, { s: true, o: true, tlla: p.mac }),
      }),
    );
  }

  /** A new neighbour: it asks for the router by ARP and by NS (with its SLLA). */
  birth(now: number): void {
    const n = 1 + (this.born++ % 65_000);
    const p: Peer = {
      n,
      mac: new Uint8Array([2, 1, 0, 0, n >> 8, n & 0xff]),
      v4: `10.1.${n >> 8}.${n & 0xff}`,
      v6: `2001:db8:1:0:c::${n.toString(16)}`,
      mute: n % 4 === 0,
      dies: now + 20_000,
    };
    this.alive.set(n, p);
    this.by4.set(parseIpv4(p.v4), p);
    this.by6.set(formatIpv6(parseIpv6(p.v6)), p);
    sendFrame(
      this.port,
      BROADCAST_MAC,
      p.mac,
      0x0806,
      arp(1, p.mac, p.v4, new Uint8Array(6), "10.1.0.1"),
    );
    const target = "2001:db8:1::1";
    const sn = formatIpv6(ipv6SolicitedNode(parseIpv6(target)));
    sendFrame(
      this.port,
      ipv6MulticastMac(parseIpv6(sn)),
      p.mac,
      0x86dd,
      ip6({
        src: p.v6,
        dst: sn,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(p.v6, sn, target, { slla: p.mac }),
      }),
    );
  }

  /** Each live neighbour sends one datagram per family to isp's echo; the dead go away. */
  chatter(now: number): void {
    for (const p of this.alive.values()) {
      if (p.dies <= now) {
        this.alive.delete(p.n);
        this.by4.delete(parseIpv4(p.v4));
        this.by6.delete(formatIpv6(parseIpv6(p.v6)));
        continue;
      }
      const sport = 40_000 + (p.n % 1000);
      sendFrame(
        this.port,
        rLan.mac,
        p.mac,
        0x0800,
        ipv4({
          src: p.v4,
          dst: ISP4,
          protocol: PROTO.UDP,
          payload: udp(p.v4, ISP4, sport, 7, 32),
        }),
      );
      sendFrame(
        this.port,
        rLan.mac,
        p.mac,
        0x86dd,
        ip6({ src: p.v6, dst: ISP6, proto: NH.UDP, payload: udp6(p.v6, ISP6, sport, 7, 32) }),
      );
    }
  }
}
const churn = new Churn(lan);

// ------------------------------------------------------------ WAN routers

/** A Router Advertisement from a new router `fe80::1:n` with prefix 2001:db8:100:n::/64. */
function rogueRa(n: number): void {
  const src = `fe80::1:${n.toString(16)}`;
  const body = new Uint8Array(8 + 32);
  const v = new DataView(body.buffer);
  // Reachable time and retrans timer 0 (unspecified), then a Prefix Information option.
  body[8] = 3;
  body[9] = 4;
  body[10] = 64;
  body[11] = 0xc0; // L and A
  v.setUint32(12, 60); // valid lifetime, s
  v.setUint32(16, 30); // preferred lifetime, s
  body.set(parseIpv6(`2001:db8:100:${(n & 0xffff).toString(16)}::`), 24);
  // cur hop limit 64, no flags, router lifetime 30 s.
  const rest = (64 << 24) | 30;
  const mac = new Uint8Array([2, 3, 0, 0, (n >> 8) & 0xff, n & 0xff]);
  sendFrame(
    rogue.port,
    ipv6MulticastMac(parseIpv6("ff02::1")),
    mac,
    0x86dd,
    ip6({
      src,
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: icmp6(src, "ff02::1", T6.RA, 0, rest, body),
    }),
  );
}

// ------------------------------------------------------------ TCP and DHCP

let tcpInFlight = 0, tcpDone = 0, tcpFailed = 0;

function startTcp(hostname: string): void {
  if (tcpInFlight >= 32) return;
  tcpInFlight++;
  transferProbe(h1, { hostname, port: 7, service: "echo", bytes: 1024, timeoutMs: 10_000 })
    .then((t) => t.outcome === "complete" && t.received === 1024 ? tcpDone++ : tcpFailed++)
    .catch(() => tcpFailed++)
    .finally(() => tcpInFlight--);
}

let dhcp: Dhcpv4Client | null = null;
let dhcpStarted = 0, dhcpBound = 0, dhcpLeases = 0;

/** Start a client with a new client id, or release the lease after 5 s (or give up after 30 s). */
function dhcpStep(now: number): void {
  if (dhcp !== null) {
    const held = dhcp.lease !== null;
    if (held && dhcpBound === 0) dhcpBound = now;
    if ((held && now - dhcpBound >= 5000) || now - dhcpStarted >= 30_000) {
      if (held) dhcpLeases++;
      dhcp.close();
      dhcp = null;
    }
    return;
  }
  const id = new Uint8Array(7);
  id[0] = 0xff;
  new DataView(id.buffer).setUint32(3, dhcpLeases + Math.floor(now));
  dhcp = new Dhcpv4Client(dc, dcNic, { clientId: id, probes: 0 });
  dhcpStarted = now;
  dhcpBound = 0;
}

// ------------------------------------------------------------ one tick

const ROGUE6 = "2001:db8:2::30";

/** A TCP SYN from port 40000 + `i` % 4096 to port 23, with its IPv6 checksum. */
function syn6(src: string, dst: string, i: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint16(0, 40_000 + (i % 4096));
  v.setUint16(2, 23);
  v.setUint32(4, i >>> 0);
  b[12] = 5 << 4;
  b[13] = 0x02;
  v.setUint16(14, 65535);
  v.setUint16(16, checksum6(src, dst, NH.TCP, b));
  return b;
}

let tick = 0;
const DEAD4 = (k: number) => `198.51.100.${100 + (k % 100)}`;
const DEAD6 = (k: number) => `2001:db8:2::dead:${(k % 1000).toString(16)}`;

function trafficTick(): void {
  const now = clock.now();
  const i = tick++;
  // Forwarding through NAT (IPv4) and plain (IPv6): echo from a new port each tick, pings.
  const sport = 20_000 + (i % 8192);
  gen.sendIp(
    ipv4({ src: GEN4, dst: ISP4, protocol: PROTO.UDP, payload: udp(GEN4, ISP4, sport, 7, 64) }),
  );
  gen.send(ip6({ src: GEN6, dst: ISP6, proto: NH.UDP, payload: udp6(GEN6, ISP6, sport, 7, 64) }));
  gen.sendIp(
    ipv4({
      src: GEN4,
      dst: ISP4,
      protocol: PROTO.ICMP,
      payload: echoRequest(i & 0xfff, i & 0xffff, 56),
    }),
  );
  gen.send(
    ip6({
      src: GEN6,
      dst: ISP6,
      proto: NH.ICMP6,
      payload: echo6(GEN6, ISP6, i & 0xfff, i & 0xffff, 56),
    }),
  );
  // Steady flows to discard.
  for (let k = 0; k < 4; k++) {
    gen.sendIp(
      ipv4({
        src: GEN4,
        dst: ISP4,
        protocol: PROTO.UDP,
        payload: udp(GEN4, ISP4, 5000 + k, 9, 512),
      }),
    );
    gen.send(
      ip6({ src: GEN6, dst: ISP6, proto: NH.UDP, payload: udp6(GEN6, ISP6, 5000 + k, 9, 512) }),
    );
  }
  if (i % 5 === 0) {
    // A SYN to a closed port: isp answers with a RST (through NAT).
    gen.sendIp(ipv4({
      src: GEN4,
      dst: ISP4,
      protocol: PROTO.TCP,
      payload: tcp(GEN4, ISP4, {
        sport: 30_000 + (i % 4096),
        dport: 23,
        seq: i,
        flags: 0x02,
        payload: new Uint8Array(0),
      }),
    }));
  }
  if (i % 10 === 0) {
    const k = i / 10;
    // Nobody answers for these: resolution fails, host unreachable comes back.
    gen.sendIp(ipv4({
      src: GEN4,
      dst: DEAD4(k),
      protocol: PROTO.UDP,
      payload: udp(GEN4, DEAD4(k), 6000, 9, 32),
    }));
    gen.send(ip6({
      src: GEN6,
      dst: DEAD6(k),
      proto: NH.UDP,
      payload: udp6(GEN6, DEAD6(k), 6000, 9, 32),
    }));
    // From the WAN to the LAN: FORWARD's policy drops them.
    rogue.sendIp(ipv4({
      src: "198.51.100.30",
      dst: GEN4,
      protocol: PROTO.UDP,
      payload: udp("198.51.100.30", GEN4, 6000, 9, 32),
    }));
    rogue.send(ip6({ src: ROGUE6, dst: GEN6, proto: NH.TCP, payload: syn6(ROGUE6, GEN6, i) }));
    rogue.sendIp(ipv4({
      src: "198.51.100.30",
      dst: GEN4,
      protocol: PROTO.ICMP,
      payload: icmp(8, 0, i & 0xffff, new Uint8Array(8)),
    }));
    startTcp(ISP4);
    if (i % 20 === 0) startTcp(ISP6);
  }
  if (i % 20 === 0) churn.birth(now);
  if (i % 100 === 0) {
    churn.chatter(now);
    dhcpStep(now);
  }
  if (i % 500 === 0) rogueRa(i / 500);
}

// ------------------------------------------------------------ sampling

interface Sample {
  s: number;
  virtualS: number;
  frames: number;
  pps: number;
  /** V8 heap in use plus ArrayBuffer memory outside it, after two full GCs. */
  heap: number;
  js: number;
  external: number;
  rss: number;
  tables: Record<string, number>;
}

/** Frames written to the hubs so far (every frame of the run crosses one). */
function framesSoFar(): number {
  let n = 0;
  for (const h of [lan, wan]) for (const p of h.ports) n += p.stats.tx;
  return n;
}

function neighbors(nic: Nic, family: 4 | 6): number {
  const st = family === 4 ? r.ipv4.nicState(nic) : r.ipv6.nicState(nic);
  return st?.neighbors.size ?? 0;
}

/** The sizes of the router's tables (and of the hosts' TCP tables). */
function tables(): Record<string, number> {
  const fw = r.firewall!;
  const dhcpServer = r.services.get("dhcp4:lan0") as Dhcpv4Server | undefined;
  return {
    ct4: fw.conntrack.size,
    ct6: fw.conntrack6.size,
    arp: neighbors(rLan, 4) + neighbors(rWan, 4),
    ndp: neighbors(rLan, 6) + neighbors(rWan, 6),
    "pool made": r.pool.made(),
    "pool used": r.pool.inUse(),
    tcp: h1.tcp.size + isp.tcp.size,
    "wan addrs": r.ipv6.nicState(rWan)?.addresses.length ?? 0,
    routes6: r.ipv6.routes.size,
    leases: dhcpServer?.leases().length ?? 0,
  };
}

const t0 = performance.now();
const until = t0 + seconds * 1000;
const samples: Sample[] = [];
let lastFrames = 0, lastT = t0;

function sample(now: number): Sample {
  // Twice: V8 sweeps freed ArrayBuffers lazily, so right after one full GC
  // `external` still counts the buffers it just found dead.
  gc?.();
  gc?.();
  const m = Deno.memoryUsage();
  const frames = framesSoFar();
  const s: Sample = {
    s: (now - t0) / 1000,
    virtualS: clock.now() / 1000,
    frames,
    pps: (frames - lastFrames) / Math.max(1e-3, (now - lastT) / 1000),
    heap: m.heapUsed + m.external,
    js: m.heapUsed,
    external: m.external,
    rss: m.rss,
    tables: tables(),
  };
  lastFrames = frames;
  lastT = now;
  return s;
}

const COLS = [
  "ct4",
  "ct6",
  "arp",
  "ndp",
  "pool made",
  "pool used",
  "tcp",
  "wan addrs",
  "routes6",
  "leases",
];

function header(): string {
  return "| wall s | virtual s | frames/s | JS heap MB | external MB | heap+ext MB | RSS MB | " +
    COLS.join(" | ") + " |\n|" + "---|".repeat(7 + COLS.length);
}

function row(s: Sample): string {
  return `| ${s.s.toFixed(0)} | ${s.virtualS.toFixed(0)} | ${s.pps.toFixed(0)} | ${mb(s.js)} | ${
    mb(s.external)
  } | ${mb(s.heap)} | ${mb(s.rss)} | ` + COLS.map((c) => s.tables[c]).join(" | ") + " |";
}

// ------------------------------------------------------------ the run

console.log(
  `soak: ${seconds} s, sample every ${sampleS} s, warm-up ${warmupS} s, ${TICK_MS} ms virtual per tick`,
);
console.log(header());
let nextSample = 0;
while (true) {
  const now = performance.now();
  if (now - t0 >= nextSample || now >= until) {
    const s = sample(now);
    samples.push(s);
    console.log(row(s));
    nextSample = now - t0 + sampleS * 1000;
    if (now >= until) break;
  }
  for (let k = 0; k < 100; k++) {
    trafficTick();
    clock.advance(TICK_MS);
    // The lab's own records: what the hubs logged and the raw hosts received.
    lan.log.length = 0;
    wan.log.length = 0;
    gen.clear();
    rogue.clear();
    // Let the probes' promises run between ticks.
    for (let j = 0; j < 8; j++) await Promise.resolve();
  }
}

const secs = (performance.now() - t0) / 1000;
const last = samples.at(-1)!;
console.log(
  `${last.frames} frames in ${secs.toFixed(0)} s wall (${(last.frames / secs).toFixed(0)}/s), ` +
    `${last.virtualS.toFixed(0)} s virtual (${(last.virtualS / secs).toFixed(2)}× wall, ${
      (last.frames / last.virtualS).toFixed(0)
    } frames per virtual s); ` +
    `TCP ${tcpDone} complete, ${tcpFailed} failed; ${churn.born} neighbours born; ` +
    `${dhcpLeases} DHCP leases taken and released`,
);
if (Deno.args.includes("--stats")) console.log(JSON.stringify(r.snapshotStats(), null, 1));
// The first sample is part of the warm-up even if W is 0.
const warm = samples.filter((s, i) => i === 0 || s.s <= warmupS);
const after = samples.filter((s) => !warm.includes(s));
if (after.length === 0) {
  console.log("heap: no sample after the warm-up, not judged (run longer or lower --warmup)");
} else {
  // Tables and RSS are reported, not judged (they swing with the traffic's phase and the
  // machine's load); one whose second half after the warm-up peaks more than 10 % (and 8)
  // above its first half is marked as still rising.
  const half = Math.ceil(after.length / 2);
  const rising = (f: (s: Sample) => number) =>
    after.length >= 2 &&
    Math.max(...after.slice(half).map(f)) >
      Math.max(...after.slice(0, half).map(f)) * (1 + HEAP_GROWTH) + 8;
  for (const c of COLS) {
    const f = (s: Sample) => s.tables[c]!;
    console.log(
      `table ${c}: warm-up max ${Math.max(...warm.map(f))}, after warm-up max ${
        Math.max(...after.map(f))
      }, end ${f(last)}${rising(f) ? " (still rising)" : ""}`,
    );
  }
  const ref = Math.max(...warm.map((s) => s.heap));
  const peak = Math.max(...after.map((s) => s.heap));
  const bound = ref * (1 + HEAP_GROWTH);
  const flat = peak <= bound;
  console.log(
    `heap + external after GC: warm-up max ${mb(ref)} MB, after warm-up max ${mb(peak)} MB, end ${
      mb(last.heap)
    } MB; bound ${mb(bound)} MB (+${HEAP_GROWTH * 100} %): ${flat ? "flat" : "GROWING"}`,
  );
  const rss = (s: Sample) => s.rss / MB;
  console.log(
    `RSS: warm-up max ${mb(Math.max(...warm.map((s) => s.rss)))} MB, after warm-up max ${
      mb(Math.max(...after.map((s) => s.rss)))
    } MB${
      after.length >= 2
        ? ` (first half ${mb(Math.max(...after.slice(0, half).map((s) => s.rss)))}, second half ${
          mb(Math.max(...after.slice(half).map((s) => s.rss)))
        })`
        : ""
    }, end ${mb(last.rss)} MB${rising(rss) ? " (still rising)" : ""}`,
  );
  if (!flat) Deno.exit(1);
}
