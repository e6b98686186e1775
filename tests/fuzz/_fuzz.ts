/**
 * A seeded fuzzer for the datapath: mutated frames of every kind tapir
 * parses (ARP; IPv4 UDP, TCP, ICMP, options, fragments, ICMP errors; IPv6
 * UDP, TCP, ICMPv6, NDP, MLD, extension headers, fragments; DHCP) go
 * straight into the NICs of three targets on manual clocks: an IPv4 router
 * with conntrack, MASQUERADE and filter rules, a DHCPv4 server and the DNS
 * forwarder; an IPv6 router with a stateful filter and a DHCPv6 server;
 * and a host (forwarding off, SLAAC, DHCPv4 and DHCPv6 clients, a UDP
 * socket, a TCP listener and one established TCP connection per family to
 * a raw peer). Most mutations get their checksums fixed afterwards so they
 * reach the deep paths, not only the checksum test. The host's seeds into
 * its connections and to its DHCP clients are built from their state when
 * picked (sequence numbers, timestamps, transaction ids), so mutated
 * segments start in the window.
 *
 * It asserts what bad input must never do: throw out of the stack, or
 * hold on to buffers (the pool is back where it started once the clock
 * has run the queues and timers out). Everything is reproducible from the
 * seed.
 *
 * `fuzz()` runs on fresh targets; a `Fuzzer` keeps its targets for as long
 * as it is used (the long campaign of `main.ts`, which samples the heap).
 * A failure carries the target's last events; `reproduce` turns them into
 * a minimised reproducer that fails the same way on a fresh stack, from
 * the failing frame alone when that is enough, else from the shrunk list
 * of recent frames and clock steps.
 *
 * @module
 */
import {
  Dhcpv4Client,
  Dhcpv4Server,
  Dhcpv6Client,
  Dhcpv6Server,
  DnsForwarder,
  ManualClock,
  MemoryLeaseStore,
  SeededRandom,
  Stack,
  type TcpConnection,
  TcpState,
  type UdpEndpoint,
} from "../../stack/mod.ts";
import { DnsWriter } from "../../stack/wire/dns.ts";
import { Dhcpv6Writer, duidLl } from "../../stack/wire/dhcpv6.ts";
import {
  type Dhcpv4OptionEntry,
  encodeClasslessRoutes,
  encodeIpv4List,
  encodeU32,
  writeDhcpv4,
} from "../../stack/wire/dhcpv4.ts";
import {
  formatIpv4,
  formatIpv6,
  parseIpAddress,
  parseIpv4,
  parseIpv6,
} from "../../stack/wire/ip_address.ts";
import {
  TcpFlags,
  tcpOptionsLen,
  type TcpOptionsOut,
  writeTcpOptions,
} from "../../stack/wire/tcp.ts";
import type { Nic } from "../../stack/mod.ts";
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
import { ADDR, Hub, type HubPort, RawHost, rawMac, routerLab } from "../topology/_topology.ts";
import { arp, echoRequest, icmp, ipv4, pattern, PROTO, tcp, udp } from "../topology/_packets.ts";
import {
  ADDR6,
  checksum6,
  destOpts,
  echo6,
  frag,
  fragments,
  hbh,
  icmp6,
  ip6,
  llaOption,
  na,
  NH,
  ns,
  routerAlert,
  routerLab6,
  routing,
  T6,
  udp6,
  unknownOption,
} from "../topology/_topology6.ts";
import { firewallFrom } from "../stack/firewall/_fw.ts";
import { type SegSpec, tcpBytes } from "../stack/transport/_tcp_peer.ts";

/** One place frames go in: the NIC of a router or of the host, with its seeds. */
export interface Target {
  name: string;
  stack: Stack;
  clock: ManualClock;
  nic: Nic;
  /** Frames (Ethernet included) to mutate. */
  seeds: Uint8Array[];
  /**
   * Seeds built when picked, from the stack's state as it is then (the
   * sequence numbers of a live TCP connection, a DHCP client's current
   * transaction id). Reading that state changes nothing, so the frames
   * still depend only on the seed and the frames sent before.
   */
  live?: (() => Uint8Array)[];
  /**
   * Called before each frame this target gets, in a run and in a replay
   * alike: keeps long-lived state going (reads what a connection received,
   * writes more, opens a connection again once one died). What it does
   * depends only on the stack's state, so a replay of the same events does
   * the same.
   */
  tend?: () => void;
  /**
   * Empty what the test topology records (the hubs' frame logs, the raw
   * hosts' received lists): harness state, not the stack's, that would
   * otherwise grow for as long as the fuzzer runs.
   */
  forget: () => void;
  /** Counters of deep paths the frames reached (name → value). */
  reached: () => Record<string, number>;
}

/** A `forget` for a lab with two hubs and two raw hosts. */
function forgetter(lab: { lan: Hub; wan: Hub; a: RawHost; b: RawHost }): () => void {
  return () => {
    for (const h of [lab.lan, lab.wan]) h.log.length = 0;
    for (const r of [lab.a, lab.b]) r.received.length = 0;
  };
}

const FUZZ_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x0a]);

function frame(
  dst: Uint8Array,
  etherType: number,
  payload: Uint8Array,
  src: Uint8Array = FUZZ_MAC,
): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
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
  const s4 = lab.r.stats, fw = lab.r.firewall;
  return {
    name: "ipv4 router",
    stack: lab.r,
    clock: lab.clock,
    nic: lab.rLan,
    seeds,
    forget: forgetter(lab),
    reached: () => ({
      "v4 forwarded": s4.ipv4.forwarding.packets,
      "v4 delivered": s4.ipv4.packetsDelivered,
      "v4 ICMP errors sent": s4.icmpv4.errorsSent,
      "v4 options dropped": s4.ipv4.optionsDropped,
      "v4 firewall drops": fw?.stats.dropped ?? 0,
      "v4 conntrack entries made": fw?.conntrack.stats.inserted ?? 0,
      "v4 ARP answered": s4.arp.requestsAnswered,
      "DHCPv4 DISCOVERs read": d4.stats.discoverReceived,
      "DNS queries read": fwd.stats.queriesReceived,
      "TCP SYNs to a listener (SYN-ACKs and cookies)": s4.tcp.passiveOpens +
        s4.tcp.synCookiesSent,
    }),
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
  const s6 = lab.r.stats;
  return {
    name: "ipv6 router",
    stack: lab.r,
    clock: lab.clock,
    nic: lab.rLan,
    seeds,
    forget: forgetter(lab),
    reached: () => ({
      "v6 forwarded": s6.ipv6.forwarding.packets,
      "v6 delivered": s6.ipv6.packetsDelivered,
      "v6 ICMPv6 errors sent": s6.icmpv6.errorsSent,
      "v6 options dropped": s6.ipv6.optionsDropped,
      "v6 NDP received": s6.ndp.messagesReceived,
      "DHCPv6 SOLICITs read": d6.stats.solicitReceived,
    }),
  };
}

// ------------------------------------------------------------ the host

/** The host target's addresses: h, and the raw peer that is its router, DHCP servers and TCP peer. */
const H4 = "192.0.2.10", P4 = "192.0.2.1";
const H6 = "2001:db8:1::10", P6 = "2001:db8:1::1", PLL = "fe80::1";
const PEER_MAC = rawMac(1);
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);

/**
 * The host's wire. It carries only ARP and NDP to the other ports (the raw
 * peer answers the host's ARP requests and solicitations, so the peer stays
 * resolved); every other frame the host writes ends here, after its DHCP
 * transaction id, if it has one, is noted: the servers' replies among the
 * seeds carry the client's current one.
 */
class HostWire extends Hub {
  xid4 = 0;
  xid6 = 0;

  override carry(from: HubPort, pkt: PacketBuffer): void {
    const d = pkt.data, o = pkt.start, v = pkt.view, len = pkt.end - o;
    const et = len >= 14 ? v.getUint16(o + 12) : 0;
    if (et === 0x0806) return super.carry(from, pkt);
    if (et === 0x0800 && len >= 42 && d[o + 23] === PROTO.UDP) {
      const u = o + 14 + ((d[o + 14]! & 0x0f) << 2);
      if (u + 16 <= pkt.end && v.getUint16(u + 2) === 67) this.xid4 = v.getUint32(u + 12);
    } else if (et === 0x86dd && len >= 66) {
      const nh = d[o + 20], t = d[o + 54]!;
      if (nh === NH.ICMP6 && t >= T6.RS && t <= T6.NA) return super.carry(from, pkt);
      if (nh === NH.UDP && v.getUint16(o + 56) === 547) this.xid6 = v.getUint32(o + 62) & 0xffffff;
    }
  }
}

/** One of the host's TCP connections to the raw peer, kept open by `tend`. */
interface ConnSlot {
  family: 4 | 6;
  peerPort: number;
  /** The peer's initial sequence number (the IPv4 one wraps past 2^32 within 256 bytes). */
  peerIss: number;
  conn: TcpConnection | null;
  /** tend() calls since the connection left ESTABLISHED, or since the last try to open one. */
  sick: number;
  /** Segments taken, bytes received in order and bytes ACKed by the peer, of the connections replaced. */
  done: [number, number, number];
}

/** A frame-building seed that is rebuilt only when `key` changes. */
function memo(key: () => number, build: (k: number) => Uint8Array): () => Uint8Array {
  let k = NaN, f: Uint8Array = new Uint8Array(0);
  return () => {
    const n = key();
    if (n !== k) {
      k = n;
      f = build(n);
    }
    return f;
  };
}

const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

/** A domain name in DNS wire form. */
function dnsName(name: string): number[] {
  return [...name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]), 0];
}

/** A UDP datagram over IPv6 carrying `payload`, with its checksum. */
function udp6Bytes(src: string, dst: string, sport: number, dport: number, payload: Uint8Array) {
  const b = new Uint8Array(8 + payload.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  v.setUint16(4, b.length);
  b.set(payload, 8);
  v.setUint16(6, checksum6(src, dst, NH.UDP, b) || 0xffff);
  return b;
}

const fmt = (a: number | Uint8Array) => typeof a === "number" ? formatIpv4(a) : formatIpv6(a);

/**
 * A host: forwarding off, 192.0.2.10/24 and 2001:db8:1::10/64 on eth0
 * with accept_ra (SLAAC), a DHCPv4 and a DHCPv6 client (IA_NA, IA_PD,
 * Rapid Commit), a UDP echo socket on port 7, a TCP listener on 8080, and
 * one established TCP connection per family to a raw peer on the same hub
 * (its router, DHCP servers and TCP peer). The seeds into the connections
 * and to the DHCP clients are built from their state when picked, so the
 * mutations start from in-window segments and current transaction ids.
 */
function hostTarget(): Target {
  const clock = new ManualClock();
  const lan = new HostWire(clock, "lan");
  const h = new Stack({ clock, random: new SeededRandom(11), hostname: "h" });
  const nic = h.addNic(lan.port("h"), { name: "eth0", ipv6: true });
  h.ipv4.addAddress(nic, parseIpv4(H4), 24);
  h.ipv6.addAddress(nic, parseIpv6(H6), 64);
  h.ra.enableHost(nic);
  const peer = new RawHost(lan.port("p"), PEER_MAC, { ipv4: parseIpv4(P4), ipv6: [P6, PLL] });
  peer.gatewayMac = nic.mac;
  const d4 = new Dhcpv4Client(h, nic, { hostname: "h" });
  const d6 = new Dhcpv6Client(h, nic, {
    iaNa: true,
    iaPd: true,
    prefixHint: 56,
    rapidCommit: true,
  });
  // Keyed as config/build.ts keys them: closed with the stack, their counters in `tapir metrics`.
  h.services.set("dhcp4-client:eth0", d4);
  h.services.set("dhcp6-client:eth0", d6);
  // An echo service: what it sends back is what the ICMP errors among the seeds quote.
  const echo: UdpEndpoint = h.udp.bindSocket({
    port: 7,
    onDatagram: (d) => {
      if (d.srcPort === 0 || d.payloadLength > 1024) return;
      const b = d.buffer.data;
      const to = d.family === 4 ? d.src : b.slice(d.src6Offset, d.src6Offset + 16);
      echo.send(to, d.srcPort, b.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
    },
  });
  const tl = h.tcp.listen({ port: 8080 });
  tl.onAcceptable = () => {
    for (let c = tl.accept(); c !== null; c = tl.accept()) c.close();
  };
  const own = new PacketBuffer(HEADROOM + 1600 + 64);
  const inject = (f: Uint8Array) => deliverTo(nic, f, own);
  const hm = nic.mac;
  const f4 = (p: Parameters<typeof ipv4>[0], dst = hm) => frame(dst, 0x0800, ipv4(p), PEER_MAC);
  const f6 = (p: Parameters<typeof ip6>[0], dst = hm) => frame(dst, 0x86dd, ip6(p), PEER_MAC);

  // The peer's RA: SLLA, MTU, a SLAAC prefix, RDNSS, DNSSL and a Route Information option.
  const raOpts = [
    ...llaOption(1, PEER_MAC),
    ...[5, 1, 0, 0, ...u32(1500)],
    ...[3, 4, 64, 0xc0, ...u32(86_400), ...u32(14_400), 0, 0, 0, 0, ...parseIpv6("2001:db8:1::")],
    ...[25, 3, 0, 0, ...u32(1800), ...parseIpv6(P6)],
    ...(() => {
      const n = dnsName("lan.example");
      const len = Math.ceil((8 + n.length) / 8);
      return [31, len, 0, 0, ...u32(1800), ...n, ...new Array(len * 8 - 8 - n.length).fill(0)];
    })(),
    ...[24, 2, 48, 0x08, ...u32(1800), ...parseIpv6("2001:db8:ff::").subarray(0, 8)],
  ];
  const ra = (lifetime: number, opts: number[]) => {
    const body = new Uint8Array([...u32(30_000), ...u32(1_000), ...opts]);
    const rest = (64 << 24) | (0xc0 << 16) | lifetime;
    const m = icmp6(PLL, "ff02::1", T6.RA, 0, rest, body);
    return f6(
      { src: PLL, dst: "ff02::1", proto: NH.ICMP6, hopLimit: 255, payload: m },
      ALL_NODES_MAC,
    );
  };
  const raSeed = ra(1800, raOpts);
  clock.advance(3_000); // DAD of the link-local and static addresses; an RS and a SOLICIT leave
  inject(raSeed);
  peer.arpFor(parseIpv4(H4));
  peer.solicit(H6);
  clock.advance(1);
  clock.advance(1_000);

  const slots: ConnSlot[] = [
    { family: 4, peerPort: 5001, peerIss: 0xffffff00, conn: null, sick: 0, done: [0, 0, 0] },
    { family: 6, peerPort: 5002, peerIss: 0x7fff0000, conn: null, sick: 0, done: [0, 0, 0] },
  ];
  /** A segment from the peer into `c`'s 4-tuple, built in one piece (it is built per pick). */
  const tcpFrame = (c: TcpConnection, sp: SegSpec): Uint8Array => {
    const ipLen = c.family === 4 ? 20 : 40;
    const ol = sp.opts === undefined ? 0 : tcpOptionsLen(sp.opts);
    const pl = sp.payload?.length ?? 0;
    const f = new Uint8Array(14 + ipLen + 20 + ol + pl);
    const v = new DataView(f.buffer);
    f.set(hm, 0);
    f.set(PEER_MAC, 6);
    if (typeof c.local === "number" && typeof c.remote === "number") {
      v.setUint16(12, 0x0800);
      f[14] = 0x45;
      v.setUint16(16, 20 + 20 + ol + pl);
      v.setUint16(20, 0x4000); // DF
      f[22] = 64;
      f[23] = PROTO.TCP;
      v.setUint32(26, c.remote);
      v.setUint32(30, c.local);
    } else {
      v.setUint16(12, 0x86dd);
      f[14] = 0x60;
      v.setUint16(18, 20 + ol + pl);
      f[20] = NH.TCP;
      f[21] = 64;
      f.set(c.remote as Uint8Array, 22);
      f.set(c.local as Uint8Array, 38);
    }
    const t = 14 + ipLen;
    v.setUint16(t, sp.sport);
    v.setUint16(t + 2, sp.dport);
    v.setUint32(t + 4, sp.seq >>> 0);
    v.setUint32(t + 8, (sp.ack ?? 0) >>> 0);
    f[t + 12] = ((20 + ol) >> 2) << 4;
    f[t + 13] = sp.flags;
    v.setUint16(t + 14, sp.window ?? 65535);
    if (sp.opts !== undefined) writeTcpOptions(f, t + 20, sp.opts);
    if (sp.payload !== undefined) f.set(sp.payload, t + 20 + ol);
    fixChecksums(f);
    return f;
  };
  /** The host opens a connection and the peer answers the SYN; null when that failed. */
  const open = (sl: ConnSlot): TcpConnection | null => {
    const remote = sl.family === 4 ? parseIpv4(P4) : parseIpv6(P6);
    let c: TcpConnection;
    try {
      c = h.tcp.connect({ remote, port: sl.peerPort });
    } catch (e) {
      // The frames can take the route or the source address away (a mutated DHCP
      // lease or RA); the socket API then refuses, as Deno.connect would.
      if (e instanceof Deno.errors.AddrNotAvailable || e instanceof Deno.errors.AddrInUse) {
        return null;
      }
      throw e;
    }
    const opts: TcpOptionsOut = { mss: 1460, wscale: 7, sackPermitted: true };
    if (sl.family === 6) opts.ts = { val: 1_000, ecr: c.tsValue() };
    const flags = TcpFlags.SYN | TcpFlags.ACK;
    inject(tcpFrame(c, {
      sport: sl.peerPort,
      dport: c.localPort,
      seq: sl.peerIss,
      ack: (c.iss + 1) >>> 0,
      flags,
      opts,
    }));
    if (c.state !== TcpState.ESTABLISHED) {
      c.abort();
      return null;
    }
    c.setNoDelay(true);
    return c;
  };
  const sink = new Uint8Array(65_536);
  const chunk = pattern(3_000);
  const tend = () => {
    for (const sl of slots) {
      const c = sl.conn;
      if (c !== null && c.state === TcpState.ESTABLISHED) {
        // An application that reads now and then (the window moves) and keeps data in flight.
        sl.sick = 0;
        if (c.readable > 16_384) c.read(sink);
        if (c.sendRing.length < 4_096) c.write(chunk);
        continue;
      }
      // Half-closed or closing: let some frames meet that state, then replace it.
      if (c !== null && c.state !== TcpState.CLOSED && ++sl.sick < 32) continue;
      if (c !== null) {
        sl.done[0] += c.segmentsReceived;
        sl.done[1] += c.bytesReceived;
        sl.done[2] += c.bytesAcked;
        if (c.state !== TcpState.CLOSED) c.abort();
        sl.conn = null;
        sl.sick = 0;
      }
      if (sl.sick++ % 64 === 0) sl.conn = open(sl);
    }
  };
  tend();

  // Seeds into a live connection: its sequence numbers, window and timestamps as they are now.
  const { ACK, PSH, FIN, RST, SYN } = TcpFlags;
  const fallback = f4({
    src: P4,
    dst: H4,
    protocol: PROTO.TCP,
    payload: tcp(P4, H4, {
      sport: 5001,
      dport: 40000,
      seq: 1,
      ack: 1,
      flags: ACK,
      payload: pattern(8),
    }),
  });
  const seg = (
    sl: ConnSlot,
    flags: number,
    o: {
      /** Sequence number relative to RCV.NXT. */
      seq?: number;
      /** What it acknowledges: SND.UNA (a duplicate ACK), SND.NXT, or SND.UNA + n. */
      ack?: "una" | "nxt" | number;
      len?: number;
      window?: number;
      /** One new block above SND.UNA, a D-SACK block and another, or three blocks. */
      sack?: "new" | "dsack" | "three";
    } = {},
  ) =>
  (): Uint8Array => {
    const c = sl.conn;
    if (c === null) return fallback;
    const opts: TcpOptionsOut = {};
    // PAWS: the peer's clock runs on from TS.Recent (RFC 7323 §5.3).
    if (c.tsOk) opts.ts = { val: (c.tsRecent + 1) >>> 0, ecr: c.tsValue() };
    const una = c.sndUna, nxt = c.sndNxt;
    if (o.sack === "new") {
      const out = (nxt - una) >>> 0;
      opts.sack = [(una + (out > c.mss ? c.mss : out >>> 1)) >>> 0, nxt];
      opts.sackCount = 1;
    } else if (o.sack === "dsack") {
      opts.sack = [(c.rcvNxt - 100) >>> 0, c.rcvNxt, (una + 1) >>> 0, nxt];
      opts.sackCount = 2;
    } else if (o.sack === "three") {
      const q = ((nxt - una) >>> 0) >>> 3;
      opts.sack = [una + 6 * q, nxt, una + 4 * q, una + 5 * q, una + 2 * q, una + 3 * q]
        .map((x) => x >>> 0);
      opts.sackCount = 3;
    }
    return tcpFrame(c, {
      sport: c.remotePort,
      dport: c.localPort,
      seq: (c.rcvNxt + (o.seq ?? 0)) >>> 0,
      ack: o.ack === "nxt" ? nxt : typeof o.ack === "number" ? (una + o.ack) >>> 0 : una,
      flags,
      window: o.window ?? 1024,
      opts,
      payload: o.len === undefined ? undefined : pattern(o.len),
    });
  };
  /** An ICMP error from the peer (as a router) quoting `c`'s segment at SND.UNA. */
  const icmpAbout = (sl: ConnSlot, tooBig: boolean) => (): Uint8Array => {
    const c = sl.conn;
    if (c === null) return fallback;
    const src = fmt(c.local), dst = fmt(c.remote);
    const q = tcpBytes(c.family, src, dst, {
      sport: c.localPort,
      dport: c.remotePort,
      seq: c.sndUna,
      ack: c.rcvNxt,
      flags: ACK,
      payload: pattern(16),
    });
    if (c.family === 4) {
      const quoted = ipv4({ src, dst, protocol: PROTO.TCP, payload: q, df: true });
      const m = tooBig ? icmp(3, 4, 1200, quoted) : icmp(3, 1, 0, quoted);
      return f4({ src: P4, dst: src, protocol: PROTO.ICMP, payload: m });
    }
    const quoted = ip6({ src, dst, proto: NH.TCP, payload: q });
    const m = tooBig
      ? icmp6(P6, src, T6.TOO_BIG, 0, 1280, quoted)
      : icmp6(P6, src, T6.DEST_UNREACH, 3, 0, quoted);
    return f6({ src: P6, dst: src, proto: NH.ICMP6, payload: m });
  };
  // The IPv4 connection also gets the segments that end it (FIN, an exact RST), so it is
  // replaced now and then; the IPv6 one lives on, and its state (SACK scoreboard, RTO
  // backoff, PMTU, window) grows old.
  const connSeeds = (sl: ConnSlot, ending: boolean) => [
    seg(sl, PSH | ACK, { len: 100 }),
    seg(sl, PSH | ACK, { len: 100, ack: "nxt" }),
    seg(sl, ACK, { ack: "nxt" }),
    seg(sl, ACK, { sack: "new" }),
    seg(sl, ACK, { ack: "nxt", sack: "dsack" }),
    seg(sl, PSH | ACK, { seq: 1000, len: 200 }),
    seg(sl, PSH | ACK, { seq: -50, len: 1400, ack: 1 }),
    seg(sl, FIN | PSH | ACK, { seq: 1300, len: 50 }),
    seg(sl, ACK, { sack: "three" }),
    seg(sl, ACK, { window: 0 }),
    seg(sl, RST, { seq: 10 }),
    seg(sl, SYN, {}),
    ...(ending ? [seg(sl, FIN | ACK, { ack: "nxt" }), seg(sl, RST | ACK, { ack: "nxt" })] : []),
    icmpAbout(sl, true),
    icmpAbout(sl, false),
  ];

  // DHCP server replies to the clients' current exchange.
  const yiaddr = parseIpv4("192.0.2.100"), p4 = parseIpv4(P4);
  const dhcp4Reply = (type: number) =>
    memo(() => lan.xid4, (xid) => {
      const b = new Uint8Array(576);
      const opts: Dhcpv4OptionEntry[] = type === 6
        ? [[53, new Uint8Array([6])], [54, encodeU32(p4)]]
        : [
          [53, new Uint8Array([type])],
          [54, encodeU32(p4)],
          // Short times: the client renews and rebinds again and again during a run.
          [51, encodeU32(60)],
          [58, encodeU32(30)],
          [59, encodeU32(52)],
          [1, encodeU32(0xffffff00)],
          [3, encodeIpv4List([p4])],
          [6, encodeIpv4List([p4])],
          [15, new TextEncoder().encode("lan.example")],
          [26, new Uint8Array([0x05, 0xdc])],
          [121, encodeClasslessRoutes([{ prefix: 0x0a000000, prefixLen: 8, router: p4 }])],
        ];
      const n = writeDhcpv4(b, 0, {
        op: 2,
        xid,
        flags: 0x8000,
        yiaddr: type === 6 ? 0 : yiaddr,
        siaddr: p4,
        chaddr: hm,
      }, opts);
      const bc = "255.255.255.255";
      return f4(
        { src: P4, dst: bc, protocol: PROTO.UDP, payload: udp(P4, bc, 67, 68, b.subarray(0, n)) },
        BCAST,
      );
    });
  const hLL = formatIpv6(h.ipv6.linkLocalOf(nic)!);
  const dhcp6Reply = (type: number, rapid: boolean) =>
    memo(() => lan.xid6, (xid) => {
      const w = new Dhcpv6Writer(new Uint8Array(512));
      w.header(type, xid).option(1, d6.duid).option(2, duidLl(PEER_MAC));
      if (rapid) w.option(14);
      w.open(7).u8(255).close();
      w.open(3).u32(d6.iaid).u32(30).u32(48);
      w.open(5).raw(parseIpv6("2001:db8:1::100")).u32(60).u32(120).close().close();
      w.open(25).u32(d6.iaid).u32(30).u32(48);
      w.open(26).u32(60).u32(120).u8(56).raw(parseIpv6("2001:db8:100::")).close().close();
      w.open(23).raw(parseIpv6(P6)).close();
      w.open(24).raw(new Uint8Array(dnsName("lan.example"))).close();
      const payload = udp6Bytes(PLL, hLL, 547, 546, w.bytes().slice());
      return f6({ src: PLL, dst: hLL, proto: NH.UDP, payload });
    });

  const live = [
    ...connSeeds(slots[0]!, true),
    ...connSeeds(slots[1]!, false),
    dhcp4Reply(2),
    dhcp4Reply(5),
    dhcp4Reply(6),
    dhcp6Reply(2, false),
    dhcp6Reply(7, true),
  ];

  const udpQuote4 = ipv4({
    src: H4,
    dst: P4,
    protocol: PROTO.UDP,
    payload: udp(H4, P4, 7, 40000, 8),
  });
  const udpQuote6 = ip6({ src: H6, dst: P6, proto: NH.UDP, payload: udp6(H6, P6, 7, 40000, 8) });
  const frag4 = udp(P4, H4, 40000, 7, 64);
  const frag6 = fragments({
    src: P6,
    dst: H6,
    proto: NH.UDP,
    payload: udp6(P6, H6, 40000, 7, 64),
    id: 77,
    cuts: [0, 48],
  });
  const hostSn = "ff02::1:ff00:10";
  const snMac = new Uint8Array([0x33, 0x33, 0xff, 0, 0, 0x10]);
  const redirectBody = new Uint8Array([
    0,
    0,
    0,
    0,
    ...parseIpv6("fe80::2"),
    ...parseIpv6("2001:db8:99::1"),
    ...llaOption(2, rawMac(2)),
  ]);
  const mldQuery = new Uint8Array(24); // MLDv2 general query: max response 1000, QRV 2, QQIC 125
  mldQuery[0] = 0x03;
  mldQuery[1] = 0xe8;
  mldQuery[20] = 2;
  mldQuery[21] = 125;
  const seeds = [
    raSeed,
    ra(0, [
      ...llaOption(1, PEER_MAC),
      ...[3, 4, 64, 0xc0, ...u32(7200), ...u32(0), 0, 0, 0, 0],
      ...parseIpv6("2001:db8:1::"),
    ]),
    f6({
      src: P6,
      dst: hostSn,
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: ns(P6, hostSn, H6, { slla: PEER_MAC }),
    }, snMac),
    f6(
      { src: "::", dst: hostSn, proto: NH.ICMP6, hopLimit: 255, payload: ns("::", hostSn, H6) },
      snMac,
    ),
    f6({
      src: P6,
      dst: H6,
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: na(P6, H6, P6, { s: true, o: true, tlla: PEER_MAC }),
    }),
    f6({
      src: PLL,
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: na(PLL, "ff02::1", PLL, { o: true, tlla: PEER_MAC }),
    }, ALL_NODES_MAC),
    f6({
      src: PLL,
      dst: H6,
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: icmp6(PLL, H6, T6.REDIRECT, 0, 0, redirectBody.subarray(4)),
    }),
    f6({
      src: PLL,
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 1,
      ext: [hbh(...routerAlert(0))],
      payload: icmp6(PLL, "ff02::1", T6.MLD_QUERY, 0, 1000 << 16, mldQuery.subarray(4)),
    }, ALL_NODES_MAC),
    f4({ src: P4, dst: H4, protocol: PROTO.ICMP, payload: echoRequest(5, 1, 24) }),
    f4({
      src: P4,
      dst: H4,
      protocol: PROTO.ICMP,
      payload: echoRequest(5, 2, 8),
      options: [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0],
    }),
    f6({ src: P6, dst: H6, proto: NH.ICMP6, payload: echo6(P6, H6) }),
    f6(
      { src: PLL, dst: "ff02::1", proto: NH.ICMP6, payload: echo6(PLL, "ff02::1") },
      ALL_NODES_MAC,
    ),
    f4({ src: P4, dst: H4, protocol: PROTO.UDP, payload: udp(P4, H4, 40000, 7, 32) }),
    f4({ src: P4, dst: H4, protocol: PROTO.UDP, payload: udp(P4, H4, 40000, 9, 8) }),
    f4({
      src: P4,
      dst: "192.0.2.255",
      protocol: PROTO.UDP,
      payload: udp(P4, "192.0.2.255", 40000, 7, 8),
    }, BCAST),
    f6({ src: P6, dst: H6, proto: NH.UDP, payload: udp6(P6, H6, 40000, 7, 32) }),
    f6({ src: P6, dst: H6, proto: NH.UDP, payload: udp6(P6, H6, 40000, 9, 8) }),
    f6({
      src: P6,
      dst: H6,
      proto: NH.UDP,
      payload: udp6(P6, H6, 40000, 7),
      ext: [hbh(), destOpts(...unknownOption(0))],
    }),
    f4({
      src: P4,
      dst: H4,
      protocol: PROTO.TCP,
      payload: tcp(P4, H4, {
        sport: 40010,
        dport: 8080,
        seq: 1000,
        flags: SYN,
        options: new Uint8Array([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]),
        payload: new Uint8Array(0),
      }),
    }),
    f4({
      src: P4,
      dst: H4,
      protocol: PROTO.TCP,
      payload: tcp(P4, H4, { sport: 40011, dport: 8080, seq: 1001, ack: 1, payload: pattern(16) }),
    }),
    f4({
      src: P4,
      dst: H4,
      protocol: PROTO.TCP,
      payload: tcp(P4, H4, {
        sport: 40012,
        dport: 81,
        seq: 1,
        flags: SYN,
        payload: new Uint8Array(0),
      }),
    }),
    f6({
      src: P6,
      dst: H6,
      proto: NH.TCP,
      payload: tcpBytes(6, P6, H6, {
        sport: 40013,
        dport: 8080,
        seq: 5000,
        flags: SYN,
        opts: { mss: 1440, wscale: 7, sackPermitted: true, ts: { val: 9, ecr: 0 } },
      }),
    }),
    f4({ src: P4, dst: H4, protocol: PROTO.UDP, payload: frag4.subarray(0, 48), mf: true, id: 77 }),
    f4({
      src: P4,
      dst: H4,
      protocol: PROTO.UDP,
      payload: frag4.subarray(48),
      fragOffset: 48,
      id: 77,
    }),
    ...frag6.map((p) => frame(hm, 0x86dd, p, PEER_MAC)),
    frame(BCAST, 0x0806, arp(1, PEER_MAC, P4, new Uint8Array(6), H4), PEER_MAC),
    frame(BCAST, 0x0806, arp(2, PEER_MAC, P4, BCAST, P4), PEER_MAC),
    // Another host on the addresses the DHCP servers hand out (the clients' conflict checks).
    frame(BCAST, 0x0806, arp(2, rawMac(3), "192.0.2.100", BCAST, "192.0.2.100"), rawMac(3)),
    frame(
      ALL_NODES_MAC,
      0x86dd,
      ip6({
        src: "2001:db8:1::100",
        dst: "ff02::1",
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: na("2001:db8:1::100", "ff02::1", "2001:db8:1::100", { o: true, tlla: rawMac(3) }),
      }),
      rawMac(3),
    ),
    f4({ src: P4, dst: H4, protocol: PROTO.ICMP, payload: icmp(3, 3, 0, udpQuote4) }),
    f6({
      src: P6,
      dst: H6,
      proto: NH.ICMP6,
      payload: icmp6(P6, H6, T6.DEST_UNREACH, 4, 0, udpQuote6),
    }),
  ];
  const sum = (i: 0 | 1 | 2) =>
    slots.reduce((n, sl) => {
      const c = sl.conn;
      const now = c === null
        ? 0
        : i === 0
        ? c.segmentsReceived
        : i === 1
        ? c.bytesReceived
        : c.bytesAcked;
      return n + sl.done[i] + now;
    }, 0);
  const s = h.stats;
  return {
    name: "host",
    stack: h,
    clock,
    nic,
    seeds,
    live,
    tend,
    forget: () => {
      lan.log.length = 0;
      peer.received.length = 0;
    },
    reached: () => ({
      "host TCP segments into its connections": sum(0),
      "host TCP bytes received in order": sum(1),
      "host TCP bytes the peer ACKed": sum(2),
      "host TCP out-of-order segments queued": s.tcp.outOfOrderQueued,
      "host TCP resets taken and challenge ACKs sent": s.tcp.resetsReceived +
        s.tcp.challengeAcksSent,
      "host TCP active opens (the connections to the peer)": s.tcp.activeOpens,
      "host TCP SYNs to its listener": s.tcp.passiveOpens + s.tcp.synCookiesSent,
      "host RAs accepted": h.ra.stats.advertisementsAccepted,
      "host NDP received": s.ndp.messagesReceived,
      "host DHCPv4 client replies taken": d4.stats.offersReceived + d4.stats.acksReceived +
        d4.stats.naksReceived,
      "host DHCPv6 client replies taken": d6.stats.advertisesReceived + d6.stats.repliesReceived,
      "host UDP delivered": s.udp.datagramsReceived,
      "host ICMP errors sent": s.icmpv4.errorsSent + s.icmpv6.errorsSent,
      "host ICMP errors received": s.icmpv4.errorsReceived + s.icmpv6.errorsReceived,
      "host packets reassembled": s.ipv4.packetsReassembled + s.ipv6.packetsReassembled,
      "host echo requests answered": s.icmpv4.echoRequestsAnswered +
        s.icmpv6.echoRequestsAnswered,
      "host ARP answered": s.arp.requestsAnswered,
    }),
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

/** One thing that happened to a target: a frame delivered, or the clock advanced. */
export type FuzzEvent = { frame: Uint8Array } | { advance: number };

/** A reproducer as saved: the events to replay on a fresh target, frames in hex. */
export type SavedEvent = { frameHex: string } | { advance: number };

/** The targets, in the order frames alternate between them. */
const TARGETS: readonly (() => Target)[] = [v4Target, v6Target, hostTarget];

/** Names of the targets, in the order `Fuzzer` alternates between them. */
export const TARGET_NAMES = ["ipv4 router", "ipv6 router", "host"] as const;

/** How many recent events per target a `Fuzzer` keeps for the reproducer. */
const HISTORY = 4096;

export function freshTarget(name: string): Target {
  const k = TARGET_NAMES.indexOf(name as typeof TARGET_NAMES[number]);
  if (k < 0) throw new Error(`no fuzz target named ${JSON.stringify(name)}`);
  const t = TARGETS[k]!();
  t.clock.advance(5_000);
  return t;
}

const scratch = new PacketBuffer(HEADROOM + 1600 + 64);

function deliverTo(nic: Nic, f: Uint8Array, buf: PacketBuffer): void {
  const len = Math.min(f.length, 1600);
  buf.data.set(f.subarray(0, len), HEADROOM);
  buf.setFrame(HEADROOM, len);
  nic.deliverFrame(buf);
}

export function deliver(t: Target, f: Uint8Array): void {
  deliverTo(t.nic, f, scratch);
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
    for (const e of events) {
      if ("frame" in e) {
        t.tend?.();
        deliver(t, e.frame);
      } else {
        t.clock.advance(e.advance);
      }
    }
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
 * the same two routers and host (the long campaign does, so its heap
 * samples show whether state piles up), and `settle` runs their timers out
 * and checks that every buffer came back. Frames go to the targets in
 * turn. Which frames it sends, and when the clock moves, depend only on
 * the seed and the number of frames sent so far (the host's `tend` and
 * live seeds read and keep only the stack's own state).
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
      const k = i % this.#targets.length;
      const t = this.#targets[k]!;
      const j = rnd.uint32() % (t.seeds.length + (t.live?.length ?? 0));
      let f: Uint8Array | null = null;
      try {
        t.tend?.();
        const s = j < t.seeds.length ? t.seeds[j]! : t.live![j - t.seeds.length]!();
        f = rnd.uint32() % 16 === 0 ? s : mutate(s, rnd);
        this.#record(k, { frame: f });
        deliver(t, f);
        if ((i & 63) === 63) {
          const ms = rnd.uint32() % 2000;
          this.#record(k, { advance: ms });
          t.clock.advance(ms);
        }
      } catch (e) {
        // Thrown by tend(): a replay meets it before this frame, whatever the frame is.
        if (f === null) this.#record(k, { frame: new Uint8Array(0) });
        const failure = this.#fail(k, e, f === null ? "" : toHex(f));
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
    return Object.assign({}, ...this.#targets.map((t) => t.reached()));
  }
}

/**
 * Run mutated frames into the three targets in turn (a third of the frames
 * each) until `frames` or `ms` is reached (whichever first), advancing the
 * clock now and then so queues, timers and reassembly run, and at the end
 * until everything has timed out. A fresh `Fuzzer`: the same seed gives
 * the same frames.
 */
export function fuzz(seed: number, limits: { frames?: number; ms?: number }): FuzzReport {
  const t0 = performance.now();
  const fz = new Fuzzer(seed);
  const failure = fz.run(limits) ?? fz.settle();
  return { frames: fz.frames, ms: performance.now() - t0, failure, reached: fz.reached() };
}
