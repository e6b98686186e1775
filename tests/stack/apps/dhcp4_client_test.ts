/**
 * The DHCPv4 client on a memory link with a manual clock: against a
 * scripted server on the far end (hand-built replies, every client message
 * read off the wire with the independent readers of _packets.ts), and
 * against tapir's own server.
 */
import assert from "node:assert/strict";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { applyConfig } from "../../../config/reload.ts";
import { controlAnswer, type LeaseRow } from "../../../cmd/control.ts";
import { formatLeases } from "../../../cmd/_show_text.ts";
import { renderMetrics } from "../../../cmd/metrics.ts";
import {
  Dhcpv4Client,
  type Dhcpv4ClientSettings,
  Dhcpv4Server,
  ManualClock,
  MemoryLeaseStore,
  SeededRandom,
  Stack,
} from "../../../stack/mod.ts";
import {
  decodeUint,
  Dhcpv4Message,
  Dhcpv4MessageType as T,
  Dhcpv4Option as O,
  type Dhcpv4OptionEntry,
  type Dhcpv4Options,
  encodeClasslessRoutes,
  encodeIpv4List,
  encodeU32,
  formatIpv4,
  PacketBuffer,
  parseIpv4,
  writeDhcpv4,
} from "../../../stack/wire/mod.ts";
import { HEADROOM } from "../../../stack/wire/packet_buffer.ts";
import { arp, eth, ipv4, isArp, PROTO, readArp, readIpv4, udp } from "../../topology/_packets.ts";

const ip = parseIpv4;
const SERVER = "198.51.100.1";
const SERVER_MAC = new Uint8Array([2, 0, 0, 0, 9, 1]);
const CLIENT_MAC = new Uint8Array([2, 0, 0, 0, 0, 1]);

interface Sent {
  at: number;
  type: number;
  ethDst: string;
  ipSrc: string;
  ipDst: string;
  ciaddr: string;
  xid: number;
  flags: number;
  secs: number;
  opts: Dhcpv4Options;
}

interface Probe {
  at: number;
  senderIp: string;
  targetIp: string;
}

/** A client on wan0 and a scripted server at the far end of its wire. */
function lab(settings: Partial<Dhcpv4ClientSettings> = {}, start = 1_000_000) {
  const clock = new ManualClock(start);
  const [cliEp, srvEp] = MemoryLink.pair({ clock });
  const stack = new Stack({ clock, random: new SeededRandom(7) });
  const nic = stack.addNic(cliEp, { name: "wan0", mac: CLIENT_MAC });
  const sent: Sent[] = [];
  const probes: Probe[] = [];
  /** The target of every ARP request the client sent. */
  const arpAsked: string[] = [];
  /** Addresses some other host on the wire answers ARP for. */
  const squatted = new Set<string>();
  /** When set, called for each client message; returns the replies to inject. */
  let script: ((m: Sent) => Uint8Array[]) | null = null;
  const inject = (frame: Uint8Array) => {
    const pb = new PacketBuffer();
    pb.data.set(frame, HEADROOM);
    pb.setFrame(HEADROOM, frame.length);
    srvEp.writePacket(pb);
  };
  (srvEp as MemoryEndpoint).attach({
    deliverFrame(p: PacketBuffer) {
      const f = p.data.slice(p.start, p.end);
      const e = eth(f);
      if (isArp(f)) {
        const q = readArp(f);
        if (q.op !== 1) return;
        arpAsked.push(q.targetIp);
        if (q.senderIp === "0.0.0.0") probes.push({ at: clock.now(), ...q });
        // The server answers for itself; a squatter for an address it took.
        if (squatted.has(q.targetIp) || q.targetIp === SERVER) {
          const mac = q.targetIp === SERVER ? SERVER_MAC : new Uint8Array([2, 0, 0, 0, 7, 7]);
          const frame = new Uint8Array(42);
          frame.set(CLIENT_MAC, 0);
          frame.set(mac, 6);
          frame.set([0x08, 0x06], 12);
          frame.set(arp(2, mac, q.targetIp, CLIENT_MAC, q.senderIp), 14);
          inject(frame);
        }
        return;
      }
      if (e.type !== 0x0800) return;
      const v4 = readIpv4(f, 14);
      if (v4.protocol !== PROTO.UDP) return;
      const u = v4.payload;
      if (((u[2]! << 8) | u[3]!) !== 67) return;
      const m = new Dhcpv4Message(u, 8, u.length - 8);
      const opts = m.options();
      assert.ok(typeof opts !== "string", `client message parses: ${opts}`);
      const s: Sent = {
        at: clock.now(),
        type: opts.get(O.MESSAGE_TYPE)![0]!,
        ethDst: e.dst,
        ipSrc: v4.src,
        ipDst: v4.dst,
        ciaddr: formatIpv4(m.ciaddr()),
        xid: m.xid(),
        flags: m.flags(),
        secs: m.secs(),
        opts,
      };
      sent.push(s);
      for (const r of script?.(s) ?? []) inject(r);
    },
  });
  /** A server reply (OFFER/ACK/NAK) to `to`, broadcast. */
  const reply = (
    to: Sent,
    type: number,
    o: {
      yiaddr?: string;
      server?: string;
      options?: Dhcpv4OptionEntry[];
      xid?: number;
      mangle?: (dhcp: Uint8Array) => void;
    } = {},
  ): Uint8Array => {
    const b = new Uint8Array(600);
    const server = o.server ?? SERVER;
    const opts: Dhcpv4OptionEntry[] = [
      [O.MESSAGE_TYPE, new Uint8Array([type])],
      [O.SERVER_ID, encodeU32(ip(server))],
      ...(o.options ?? []),
    ];
    const n = writeDhcpv4(b, 0, {
      op: 2,
      xid: o.xid ?? to.xid,
      flags: to.flags,
      yiaddr: o.yiaddr !== undefined ? ip(o.yiaddr) : 0,
      chaddr: CLIENT_MAC,
    }, opts);
    o.mangle?.(b);
    const dst = "255.255.255.255";
    const pkt = ipv4({
      src: server,
      dst,
      protocol: PROTO.UDP,
      payload: udp(server, dst, 67, 68, b.subarray(0, n)),
    });
    const frame = new Uint8Array(14 + pkt.length);
    frame.set([255, 255, 255, 255, 255, 255]);
    frame.set(SERVER_MAC, 6);
    frame.set([0x08, 0x00], 12);
    frame.set(pkt, 14);
    return frame;
  };
  const leaseOpts = (leaseTime = 3600, extra: Dhcpv4OptionEntry[] = []): Dhcpv4OptionEntry[] => [
    [O.SUBNET_MASK, encodeU32(ip("255.255.255.0"))],
    [O.ROUTER, encodeIpv4List([ip(SERVER)])],
    [O.DNS_SERVERS, encodeIpv4List([ip("198.51.100.53")])],
    [O.LEASE_TIME, encodeU32(leaseTime)],
    ...extra,
  ];
  /** A server that offers and ACKs `addr`. */
  const serve = (addr = "198.51.100.20", leaseTime = 3600, extra: Dhcpv4OptionEntry[] = []) => {
    script = (m) => {
      if (m.type === T.DISCOVER) {
        return [reply(m, T.OFFER, { yiaddr: addr, options: leaseOpts(leaseTime, extra) })];
      }
      if (m.type === T.REQUEST) {
        return [reply(m, T.ACK, { yiaddr: addr, options: leaseOpts(leaseTime, extra) })];
      }
      return [];
    };
  };
  const client = () => {
    const c = new Dhcpv4Client(stack, nic, { hostname: "gw1", ...settings });
    clock.advance(0);
    return c;
  };
  const routes = () =>
    stack.ipv4.routes.routes().filter((r) => r.source === "dhcp").map((r) =>
      `${formatIpv4(r.prefix)}/${r.prefixLen}${
        r.gateway !== null ? ` via ${formatIpv4(r.gateway)}` : ""
      } metric ${r.metric}`
    ).sort();
  const addresses = () =>
    (stack.ipv4.nicState(nic)?.addresses ?? []).map((a) =>
      `${formatIpv4(a.address)}/${a.prefixLen}`
    );
  return {
    clock,
    stack,
    nic,
    sent,
    probes,
    arpAsked,
    squatted,
    reply,
    leaseOpts,
    serve,
    client,
    routes,
    addresses,
    setScript: (s: ((m: Sent) => Uint8Array[]) | null) => (script = s),
  };
}

Deno.test("DHCPv4 client: DORA, conflict check, then the address, prefix, default route and DNS", () => {
  const t = lab();
  t.serve();
  const c = t.client();
  const [d, r] = t.sent;
  assert.ok(d !== undefined && r !== undefined);
  assert.equal(d.type, T.DISCOVER);
  // From 0.0.0.0 to the limited broadcast, BROADCAST flag set (RFC 2131 §4.1).
  assert.deepEqual([d.ipSrc, d.ipDst, d.ethDst, d.flags], [
    "0.0.0.0",
    "255.255.255.255",
    "ff:ff:ff:ff:ff:ff",
    0x8000,
  ]);
  assert.ok(d.opts.get(O.PARAMETER_REQUEST_LIST)!.includes(O.CLASSLESS_ROUTES));
  assert.equal(new TextDecoder().decode(d.opts.get(O.HOSTNAME)), "gw1");
  // SELECTING → REQUEST with the offer's address and server identifier, same xid.
  assert.equal(r.type, T.REQUEST);
  assert.equal(r.xid, d.xid);
  assert.equal(decodeUint(r.opts.get(O.REQUESTED_ADDRESS), 4), ip("198.51.100.20"));
  assert.equal(decodeUint(r.opts.get(O.SERVER_ID), 4), ip(SERVER));
  assert.equal(r.ciaddr, "0.0.0.0");
  // The ACK starts the conflict check: probes from 0.0.0.0, one second apart; no address yet.
  assert.equal(c.state, "probing");
  assert.deepEqual(t.addresses(), []);
  t.clock.advance(1000);
  assert.equal(c.state, "probing");
  t.clock.advance(1000);
  assert.equal(c.state, "bound");
  assert.deepEqual(t.probes.map((p) => [p.at - t.probes[0]!.at, p.senderIp, p.targetIp]), [
    [0, "0.0.0.0", "198.51.100.20"],
    [1000, "0.0.0.0", "198.51.100.20"],
  ]);
  assert.deepEqual(t.addresses(), ["198.51.100.20/24"]);
  assert.deepEqual(t.routes(), ["0.0.0.0/0 via 198.51.100.1 metric 1024"]);
  assert.deepEqual(c.lease?.dnsServers.map(formatIpv4), ["198.51.100.53"]);
  assert.equal(c.stats.acksReceived, 1);
  c.close();
});

Deno.test("DHCPv4 client: another host answers ARP for the offered address → DECLINE, 10 s, start over", () => {
  const t = lab();
  let offer = "198.51.100.20";
  t.setScript((m) => {
    if (m.type === T.DISCOVER) {
      return [t.reply(m, T.OFFER, { yiaddr: offer, options: t.leaseOpts() })];
    }
    if (m.type === T.REQUEST) {
      const a = formatIpv4(decodeUint(m.opts.get(O.REQUESTED_ADDRESS), 4)!);
      return [t.reply(m, T.ACK, { yiaddr: a, options: t.leaseOpts() })];
    }
    return [];
  });
  t.squatted.add("198.51.100.20");
  const c = t.client();
  assert.equal(c.state, "declined");
  const decline = t.sent.find((s) => s.type === T.DECLINE)!;
  assert.equal(decodeUint(decline.opts.get(O.REQUESTED_ADDRESS), 4), ip("198.51.100.20"));
  assert.equal(decodeUint(decline.opts.get(O.SERVER_ID), 4), ip(SERVER));
  assert.deepEqual(t.addresses(), [], "a declined address is never configured");
  offer = "198.51.100.21";
  t.clock.advance(9_999);
  assert.equal(t.sent.filter((s) => s.type === T.DISCOVER).length, 1, "no DISCOVER within 10 s");
  t.clock.advance(1);
  assert.equal(t.sent.filter((s) => s.type === T.DISCOVER).length, 2);
  t.clock.advance(2000);
  assert.equal(c.state, "bound");
  assert.deepEqual(t.addresses(), ["198.51.100.21/24"]);
  assert.equal(c.stats.declinesSent, 1);
  c.close();
});

Deno.test("DHCPv4 client: DISCOVER retransmitted at 4, 8, 16, 32, 64, 64 s (±1 s)", () => {
  const t = lab();
  const c = t.client();
  t.clock.advance(250_000);
  const at = t.sent.filter((s) => s.type === T.DISCOVER).map((s) => s.at);
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  const nominal = [4000, 8000, 16000, 32000, 64000, 64000];
  assert.ok(gaps.length >= nominal.length, `gaps ${gaps}`);
  nominal.forEach((n, i) =>
    assert.ok(Math.abs(gaps[i]! - n) <= 1000, `gap ${i}: ${gaps[i]} vs ${n}`)
  );
  // One exchange: the xid stays, secs counts from its start.
  assert.equal(new Set(t.sent.map((s) => s.xid)).size, 1);
  assert.ok(t.sent.at(-1)!.secs >= 120);
  c.close();
});

Deno.test("DHCPv4 client: a REQUEST unanswered four times starts over with a new xid", () => {
  const t = lab();
  t.setScript((m) =>
    m.type === T.DISCOVER
      ? [t.reply(m, T.OFFER, { yiaddr: "198.51.100.20", options: t.leaseOpts() })]
      : []
  );
  const c = t.client();
  const first = t.sent[0]!.xid;
  t.clock.advance(4 * 70_000);
  const types = t.sent.map((s) => s.type);
  assert.deepEqual(types.slice(0, 6), [
    T.DISCOVER,
    T.REQUEST,
    T.REQUEST,
    T.REQUEST,
    T.REQUEST,
    T.DISCOVER,
  ]);
  assert.notEqual(t.sent[5]!.xid, first);
  c.close();
});

Deno.test("DHCPv4 client: RENEW at T1 unicast to the server, REBIND at T2 broadcast, expiry removes the lease", () => {
  const t = lab({ probes: 0 });
  t.serve("198.51.100.20", 1000);
  const c = t.client();
  assert.equal(c.state, "bound");
  const boundAt = t.clock.now();
  t.setScript(null); // the server goes silent
  t.clock.advance(499_999);
  assert.equal(c.state, "bound");
  t.clock.advance(1);
  assert.equal(c.state, "renewing");
  const renew = t.sent.at(-1)!;
  assert.equal(renew.type, T.REQUEST);
  // §4.4.5 RENEWING: ciaddr set, unicast from it to the server, no server id or requested address.
  assert.deepEqual([renew.ciaddr, renew.ipSrc, renew.ipDst, renew.flags], [
    "198.51.100.20",
    "198.51.100.20",
    SERVER,
    0,
  ]);
  assert.equal(renew.opts.get(O.SERVER_ID), undefined);
  assert.equal(renew.opts.get(O.REQUESTED_ADDRESS), undefined);
  // T2 = 875 s: 375 s in RENEWING, a retry after half of it (187.5 s ≥ 60 s).
  t.clock.advance(187_500);
  assert.equal(t.sent.filter((s) => s.type === T.REQUEST && s.ipDst === SERVER).length, 2);
  t.clock.advance(875_000 - 500_000 - 187_500);
  assert.equal(c.state, "rebinding");
  const rebind = t.sent.at(-1)!;
  assert.deepEqual([rebind.ciaddr, rebind.ipSrc, rebind.ipDst, rebind.ethDst], [
    "198.51.100.20",
    "198.51.100.20",
    "255.255.255.255",
    "ff:ff:ff:ff:ff:ff",
  ]);
  assert.deepEqual(t.addresses(), ["198.51.100.20/24"], "the address stays until the lease ends");
  t.clock.advance(1_000_000 - 875_000 - 1);
  assert.equal(c.state, "rebinding");
  t.clock.advance(1);
  assert.equal(t.clock.now() - boundAt, 1_000_000);
  assert.equal(c.state, "selecting");
  assert.deepEqual(t.addresses(), []);
  assert.deepEqual(t.routes(), []);
  assert.equal(c.stats.leasesExpired, 1);
  // The new DISCOVER asks for the old address back.
  assert.equal(decodeUint(t.sent.at(-1)!.opts.get(O.REQUESTED_ADDRESS), 4), ip("198.51.100.20"));
  c.close();
});

Deno.test("DHCPv4 client: an ACK in RENEWING extends the lease; T1/T2 from options 58/59", () => {
  const t = lab({ probes: 0 });
  const extra: Dhcpv4OptionEntry[] = [[O.RENEWAL_TIME, encodeU32(100)], [
    O.REBINDING_TIME,
    encodeU32(200),
  ]];
  t.serve("198.51.100.20", 1000, extra);
  const c = t.client();
  t.clock.advance(100_000);
  // The scripted server answered the RENEW: bound again, a new lease from now.
  assert.equal(c.state, "bound");
  assert.equal(c.lease!.start, t.clock.now());
  assert.equal(c.expires, t.clock.now() + 1_000_000);
  assert.deepEqual(t.addresses(), ["198.51.100.20/24"]);
  assert.equal(c.stats.acksReceived, 2);
  c.close();
});

Deno.test("DHCPv4 client: a NAK in RENEWING drops the address and starts over", () => {
  const t = lab({ probes: 0 });
  t.serve("198.51.100.20", 1000);
  const c = t.client();
  t.setScript((m) => (m.type === T.REQUEST && m.ciaddr !== "0.0.0.0") ? [t.reply(m, T.NAK)] : []);
  t.clock.advance(500_000);
  assert.equal(c.state, "selecting");
  assert.deepEqual(t.addresses(), []);
  assert.equal(c.stats.naksReceived, 1);
  assert.equal(t.sent.at(-1)!.type, T.DISCOVER);
  c.close();
});

Deno.test("DHCPv4 client: RFC 3442 routes replace option 3; a router off the subnet gets an on-link host route", () => {
  const t = lab({ probes: 0, routeMetric: 50 });
  const routes = encodeClasslessRoutes([
    { prefix: ip("203.0.113.0"), prefixLen: 24, router: ip("198.51.100.254") },
    { prefix: 0, prefixLen: 0, router: ip("192.0.2.1") },
  ]);
  t.serve("198.51.100.20", 3600, [[O.CLASSLESS_ROUTES, routes]]);
  const c = t.client();
  assert.deepEqual(t.routes(), [
    "0.0.0.0/0 via 192.0.2.1 metric 50",
    "192.0.2.1/32 metric 50",
    "203.0.113.0/24 via 198.51.100.254 metric 50",
  ]);
  c.close();
  assert.deepEqual(t.routes(), []);
});

Deno.test("DHCPv4 client: replies for others, malformed and unusable ones are dropped and counted", () => {
  const t = lab({ probes: 0 });
  t.setScript((m) => {
    if (m.type !== T.DISCOVER) return [];
    const cookie = t.reply(m, T.OFFER, {
      yiaddr: "198.51.100.20",
      options: t.leaseOpts(),
      mangle: (b) => (b[236] = 0), // the magic cookie
    });
    return [
      t.reply(m, T.OFFER, { yiaddr: "198.51.100.20", options: t.leaseOpts(), xid: m.xid + 1 }),
      cookie,
      t.reply(m, T.OFFER, { yiaddr: "198.51.100.20", options: [] }), // no lease time
      t.reply(m, T.ACK, { yiaddr: "198.51.100.20", options: t.leaseOpts() }), // not asked for
    ];
  });
  const c = t.client();
  assert.equal(c.state, "selecting");
  assert.deepEqual(
    [
      c.stats.notOursDropped,
      c.stats.malformedDropped,
      c.stats.unusableDropped,
      c.stats.unexpectedDropped,
    ],
    [1, 1, 1, 1],
  );
  c.close();
});

Deno.test("DHCPv4 client: close RELEASEs the lease to the server and removes it", () => {
  const t = lab({ probes: 0 });
  t.serve();
  const c = t.client();
  c.close();
  t.clock.advance(0);
  const rel = t.sent.at(-1)!;
  assert.equal(rel.type, T.RELEASE);
  assert.deepEqual([rel.ciaddr, rel.ipDst], ["198.51.100.20", SERVER]);
  // Straight to the MAC the ACK came from: no ARP that a closing stack would not wait for.
  assert.equal(rel.ethDst, "02:00:00:00:09:01");
  assert.ok(!t.arpAsked.includes(SERVER));
  assert.equal(decodeUint(rel.opts.get(O.SERVER_ID), 4), ip(SERVER));
  assert.deepEqual(t.addresses(), []);
  assert.equal(c.state, "stopped");
});

Deno.test("DHCPv4 client against tapir's server: lease, renewal at T1, release seen by the server", () => {
  const clock = new ManualClock(5_000_000);
  const [a, b] = MemoryLink.pair({ clock });
  const srv = new Stack({ clock });
  const lan = srv.addNic(a, { name: "lan0", mac: new Uint8Array([2, 0, 0, 0, 0, 0xa]) });
  srv.ipv4.addAddress(lan, ip("192.0.2.1"), 24);
  const server = new Dhcpv4Server(srv, lan, {
    pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.199") }],
    leaseTime: 600,
    routers: [ip("192.0.2.1")],
    dnsServers: [ip("192.0.2.53")],
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
  }, { store: new MemoryLeaseStore(), wallClock: () => clock.now() });
  const cli = new Stack({ clock, random: new SeededRandom(3) });
  const wan = cli.addNic(b, { name: "wan0", mac: CLIENT_MAC });
  const c = new Dhcpv4Client(cli, wan, { hostname: "gw1" });
  clock.advance(3000);
  assert.equal(c.state, "bound");
  assert.equal(formatIpv4(c.lease!.address), "192.0.2.100");
  assert.equal(c.lease!.domain, "lan.example");
  assert.deepEqual(server.leases().map((l) => [l.address, l.mac, l.hostname, l.state]), [
    ["192.0.2.100", "02:00:00:00:00:01", "gw1", "bound"],
  ]);
  const firstExpiry = server.leases()[0]!.expires;
  clock.advance(300_000);
  assert.equal(c.state, "bound", "renewed at T1 by unicast");
  assert.ok(server.leases()[0]!.expires > firstExpiry);
  assert.equal(server.stats.acksSent, 2);
  // The kernel-style ping from the server side reaches the leased address.
  assert.ok(cli.ipv4.isLocal(ip("192.0.2.100")));
  c.close();
  clock.advance(10);
  assert.equal(server.leases()[0]!.state, "released");
  server.close();
});

Deno.test('config: addresses = ["dhcp"] leases from a tapir gateway; show, metrics, and a reload that drops it', () => {
  const clock = new ManualClock(2_000_000);
  const [gwEnd, hostEnd] = MemoryLink.pair({ clock });
  const gwConfig = parseConfig(`[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24"]
[interface.dhcp]
pools = ["192.0.2.100-192.0.2.110"]
dns_servers = ["192.0.2.53"]
lease_time = "1h"
`);
  const gw = buildStack(gwConfig, { clock, openLink: () => gwEnd });
  const text = `[router]
hostname = "edge1"
[[interface]]
name = "wan0"
mac = "02:00:00:00:00:02"
addresses = ["dhcp", "2001:db8::5/64"]
[interface.dhcp_client]
route_metric = 100
`;
  const hostConfig = parseConfig(text);
  assert.equal(hostConfig.interfaces[0]!.dhcpClient?.hostname, "edge1");
  const host = buildStack(hostConfig, { clock, openLink: () => hostEnd });
  clock.advance(3000);
  const server = gw.stack.services.get("dhcp4:lan0") as Dhcpv4Server;
  assert.deepEqual(server.leases().map((l) => [l.address, l.hostname, l.state]), [
    ["192.0.2.100", "edge1", "bound"],
  ]);
  const addrs = controlAnswer(host.stack, "addresses") as Record<
    string,
    { addr_info: { local: string; origin: string; valid_lft: number | null }[] }
  >;
  const v4 = addrs.wan0!.addr_info.find((a) => a.local === "192.0.2.100")!;
  assert.equal(v4.origin, "dhcp");
  // The lease counts from the REQUEST, sent just after the start, 3 s ago.
  assert.equal(v4.valid_lft, 3600 - 3);
  const routes = controlAnswer(host.stack, "routes") as {
    to: string;
    via: string | null;
    proto: string;
    metric: number;
  }[];
  assert.deepEqual(
    routes.filter((r) => r.proto === "dhcp").map((r) => [r.to, r.via, r.metric]),
    [["0.0.0.0/0", "192.0.2.1", 100]],
  );
  const rows = controlAnswer(host.stack, "leases") as LeaseRow[];
  assert.deepEqual(rows.map((r) => [r.role, r.address, r.interface]), [
    ["client", "192.0.2.100", "wan0"],
  ]);
  assert.equal(
    formatLeases(rows),
    "0 leases\nclient wan0 192.0.2.100/24 02:00:00:00:00:02 bound server 192.0.2.1 " +
      "router 192.0.2.1 dns 192.0.2.53 lease 3600sec valid_lft 3597sec\n",
  );
  const metrics = renderMetrics(host.stack);
  assert.match(metrics, /tapir_dhcp4_client_acks_received_total\{interface="wan0"\} 1/);
  // A reload that takes "dhcp" out: the client releases and the address goes.
  const r = applyConfig(
    host.stack,
    host.nics,
    hostConfig,
    parseConfig(text.replace('"dhcp", ', "").replace(/\[interface.dhcp_client\][^]*$/, "")),
  );
  assert.ok(r.applied.includes("interface wan0: DHCPv4 client stopped"), r.applied.join("; "));
  clock.advance(10);
  assert.equal(server.leases()[0]!.state, "released");
  assert.equal(host.stack.ipv4.isLocal(ip("192.0.2.100")), false);
  host.stack.close();
  gw.stack.close();
});
