/**
 * The DHCPv4 server on a memory link with a manual clock: a scripted
 * client on the far end sends hand-built frames and reads the server's
 * replies off the wire (Ethernet and IPv4 checked with the independent
 * readers of _packets.ts).
 */
import assert from "node:assert/strict";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import {
  Dhcpv4Server,
  type Dhcpv4ServerSettings,
  type LeaseRecord,
  type LeaseStore,
  ManualClock,
  MemoryLeaseStore,
  Stack,
} from "../../../stack/mod.ts";
import {
  decodeClasslessRoutes,
  decodeIpv4List,
  decodeUint,
  Dhcpv4Message,
  Dhcpv4MessageType as T,
  Dhcpv4Option as O,
  type Dhcpv4OptionEntry,
  type Dhcpv4Options,
  encodeU32,
  formatIpv4,
  PacketBuffer,
  parseIpv4,
  writeDhcpv4,
} from "../../../stack/wire/mod.ts";
import { HEADROOM } from "../../../stack/wire/packet_buffer.ts";
import { haveTshark, pcap, tshark } from "../wire/_pcap.ts";
import { arp, eth, ipv4, isArp, PROTO, readArp, readIpv4, udp } from "../../topology/_packets.ts";

const SERVER = parseIpv4("192.0.2.1");
const ip = parseIpv4;

function settings(over: Partial<Dhcpv4ServerSettings> = {}): Dhcpv4ServerSettings {
  return {
    pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.103") }],
    leaseTime: 3600,
    routers: [SERVER],
    dnsServers: [ip("192.0.2.53"), ip("198.51.100.53")],
    domain: "lan.example",
    search: ["lan.example", "example.org"],
    mtu: 1400,
    ntpServers: [],
    routes: [{ prefix: ip("203.0.113.0"), prefixLen: 24, router: ip("192.0.2.254") }],
    options: [],
    reservations: [],
    authoritative: true,
    declineTime: 600,
    conflictProbeMs: 0,
    ...over,
  };
}

interface Reply {
  type: number;
  ethDst: string;
  ipSrc: string;
  ipDst: string;
  yiaddr: string;
  ciaddr: string;
  giaddr: string;
  dport: number;
  xid: number;
  flags: number;
  opts: Dhcpv4Options;
}

/** A server on lan0 (192.0.2.1/24) and the far end of its wire. */
function lab(
  over: Partial<Dhcpv4ServerSettings> = {},
  store: LeaseStore = new MemoryLeaseStore(),
  clock = new ManualClock(1_000_000),
) {
  const [srvEp, cliEp] = MemoryLink.pair({ clock });
  const stack = new Stack({ clock });
  const nic = stack.addNic(srvEp, { name: "lan0", mac: new Uint8Array([2, 0, 0, 0, 0, 1]) });
  stack.ipv4.addAddress(nic, SERVER, 24);
  const server = new Dhcpv4Server(stack, nic, settings(over), {
    store,
    wallClock: () => clock.now(),
  });
  const replies: Reply[] = [];
  /** Every DHCP frame the server sent, whole, for tshark. */
  const frames: Uint8Array[] = [];
  /** Addresses the clients hold (ACKed to them, or their ciaddr) → the MAC's last byte: they answer ARP. */
  const owned = new Map<string, number>();
  const inject = (frame: Uint8Array) => {
    const pb = new PacketBuffer();
    pb.data.set(frame, HEADROOM);
    pb.setFrame(HEADROOM, frame.length);
    cliEp.writePacket(pb);
  };
  cliEp.attach({
    deliverFrame(p: PacketBuffer) {
      const f = p.data.slice(p.start, p.end);
      const e = eth(f);
      if (isArp(f)) {
        const q = readArp(f);
        const m = owned.get(q.targetIp);
        if (q.op === 1 && m !== undefined) {
          const mac = new Uint8Array([2, 0, 0, 0, 1, m]);
          const frame = new Uint8Array(42);
          frame.set(nic.mac, 0);
          frame.set(mac, 6);
          frame.set([0x08, 0x06], 12);
          frame.set(arp(2, mac, q.targetIp, nic.mac, q.senderIp), 14);
          inject(frame);
        }
        return;
      }
      if (e.type !== 0x0800) return;
      const v4 = readIpv4(f, 14);
      if (v4.protocol !== PROTO.UDP) return;
      const u = v4.payload;
      // To a client (68), or to a relay agent's server port (67).
      const dport = (u[2]! << 8) | u[3]!;
      if (dport !== 68 && dport !== 67) return;
      frames.push(f);
      const m = new Dhcpv4Message(u, 8, u.length - 8);
      const opts = m.options();
      assert.ok(typeof opts !== "string", `reply parses: ${opts}`);
      if (opts.get(O.MESSAGE_TYPE)![0] === T.ACK && m.yiaddr() !== 0) {
        owned.set(formatIpv4(m.yiaddr()), m.chaddr()[5]!);
      }
      replies.push({
        type: opts.get(O.MESSAGE_TYPE)![0]!,
        ethDst: e.dst,
        ipSrc: v4.src,
        ipDst: v4.dst,
        yiaddr: formatIpv4(m.yiaddr()),
        ciaddr: formatIpv4(m.ciaddr()),
        giaddr: formatIpv4(m.giaddr()),
        dport,
        xid: m.xid(),
        flags: m.flags(),
        opts,
      });
    },
  });
  /** Send one client message from `mac` and return the replies it drew. */
  const send = (
    mac: number,
    type: number | null,
    o: {
      xid?: number;
      ciaddr?: string;
      giaddr?: string;
      flags?: number;
      options?: Dhcpv4OptionEntry[];
      srcIp?: string;
      dstIp?: string;
      raw?: Uint8Array;
      op?: number;
      /** Leave the clock alone: the next message arrives in the same burst. */
      noAdvance?: boolean;
    } = {},
  ): Reply[] => {
    const chaddr = new Uint8Array([2, 0, 0, 0, 1, mac]);
    const b = new Uint8Array(600);
    const opts: Dhcpv4OptionEntry[] = type === null
      ? []
      : [[O.MESSAGE_TYPE, new Uint8Array([type])]];
    opts.push(...(o.options ?? []));
    const n = writeDhcpv4(b, 0, {
      op: o.op ?? 1,
      xid: o.xid ?? 0x1000 + mac,
      flags: o.flags ?? 0,
      ciaddr: o.ciaddr !== undefined ? ip(o.ciaddr) : 0,
      giaddr: o.giaddr !== undefined ? ip(o.giaddr) : 0,
      chaddr,
    }, opts);
    const payload = o.raw ?? b.subarray(0, n);
    const src = o.srcIp ?? o.ciaddr ?? "0.0.0.0";
    const dst = o.dstIp ?? "255.255.255.255";
    const pkt = ipv4({ src, dst, protocol: PROTO.UDP, payload: udp(src, dst, 68, 67, payload) });
    const frame = new Uint8Array(14 + pkt.length);
    frame.set(dst === "255.255.255.255" ? [255, 255, 255, 255, 255, 255] : nic.mac);
    frame.set(chaddr, 6);
    frame.set([0x08, 0x00], 12);
    frame.set(pkt, 14);
    if (o.ciaddr !== undefined) owned.set(o.ciaddr, mac);
    if (o.giaddr !== undefined) owned.set(o.giaddr, mac);
    const before = replies.length;
    inject(frame);
    if (!o.noAdvance) clock.advance(5);
    return replies.slice(before);
  };
  const prl = (
    ...codes: number[]
  ): Dhcpv4OptionEntry => [O.PARAMETER_REQUEST_LIST, new Uint8Array(codes)];
  const reqIp = (a: string): Dhcpv4OptionEntry => [O.REQUESTED_ADDRESS, encodeU32(ip(a))];
  const sid: Dhcpv4OptionEntry = [O.SERVER_ID, encodeU32(SERVER)];
  /** DISCOVER → OFFER → REQUEST → ACK; returns the ACK. */
  const dora = (mac: number, extra: Dhcpv4OptionEntry[] = []): Reply => {
    const [offer] = send(mac, T.DISCOVER, { options: extra });
    assert.ok(offer !== undefined && offer.type === T.OFFER, "an OFFER");
    const [ack] = send(mac, T.REQUEST, { options: [...extra, sid, reqIp(offer.yiaddr)] });
    assert.ok(ack !== undefined && ack.type === T.ACK, "an ACK");
    assert.equal(ack.yiaddr, offer.yiaddr);
    return ack;
  };
  return { clock, stack, nic, server, send, dora, prl, reqIp, sid, replies, store, frames, owned };
}

const u32 = (o: Dhcpv4Options, code: number) => decodeUint(o.get(code), 4);
const ips = (o: Dhcpv4Options, code: number) => decodeIpv4List(o.get(code)!)?.map(formatIpv4);

Deno.test("dhcp4 server: DORA hands out the first pool address with the configured options", () => {
  const t = lab();
  const [offer] = t.send(1, T.DISCOVER, { options: [t.prl(1, 3, 6, 15, 119, 121, 26)] });
  assert.ok(offer);
  assert.equal(offer.type, T.OFFER);
  assert.equal(offer.yiaddr, "192.0.2.100");
  // RFC 2131 §4.1: no broadcast flag, no ciaddr → to yiaddr at chaddr, without ARP.
  assert.equal(offer.ethDst, "02:00:00:00:01:01");
  assert.equal(offer.ipDst, "192.0.2.100");
  assert.equal(offer.ipSrc, "192.0.2.1");
  assert.equal(offer.xid, 0x1001);
  const o = offer.opts;
  assert.equal(u32(o, O.SERVER_ID), SERVER);
  assert.equal(u32(o, O.LEASE_TIME), 3600);
  assert.equal(u32(o, O.RENEWAL_TIME), 1800);
  assert.equal(u32(o, O.REBINDING_TIME), 3150);
  assert.deepEqual(ips(o, O.SUBNET_MASK), ["255.255.255.0"]);
  assert.deepEqual(ips(o, O.BROADCAST_ADDRESS), ["192.0.2.255"]);
  assert.deepEqual(ips(o, O.ROUTER), ["192.0.2.1"]);
  assert.deepEqual(ips(o, O.DNS_SERVERS), ["192.0.2.53", "198.51.100.53"]);
  assert.equal(new TextDecoder().decode(o.get(O.DOMAIN_NAME)), "lan.example");
  assert.equal(decodeUint(o.get(O.INTERFACE_MTU), 2), 1400);
  // RFC 3397 wire form, uncompressed.
  assert.deepEqual(
    [...o.get(O.DOMAIN_SEARCH)!],
    [
      3,
      ..."lan".split("").map((c) => c.charCodeAt(0)),
      7,
      ..."example".split("").map((c) => c.charCodeAt(0)),
      0,
      7,
      ..."example".split("").map((c) => c.charCodeAt(0)),
      3,
      111,
      114,
      103,
      0,
    ],
  );
  // RFC 3442: the configured route and the default route via the router.
  assert.deepEqual(decodeClasslessRoutes(o.get(O.CLASSLESS_ROUTES)!), [
    { prefix: ip("203.0.113.0"), prefixLen: 24, router: ip("192.0.2.254") },
    { prefix: 0, prefixLen: 0, router: SERVER },
  ]);
  assert.equal(t.server.leases().length, 0, "an OFFER writes nothing");
  const [ack] = t.send(1, T.REQUEST, { options: [t.sid, t.reqIp("192.0.2.100")] });
  assert.ok(ack);
  assert.equal(ack.type, T.ACK);
  assert.equal(ack.yiaddr, "192.0.2.100");
  assert.equal(ack.opts.get(O.CLASSLESS_ROUTES), undefined, "121 only when asked for");
  const [l] = t.server.leases();
  assert.ok(l);
  assert.equal(l.address, "192.0.2.100");
  assert.equal(l.mac, "02:00:00:00:01:01");
  assert.equal(l.state, "bound");
  assert.equal(l.expires, t.clock.now() - 5 + 3600_000);
  assert.deepEqual(
    (t.store as MemoryLeaseStore).records.get("192.0.2.100")?.state,
    "bound",
    "the store has the lease",
  );
  assert.equal(t.server.stats.offersSent, 1);
  assert.equal(t.server.stats.acksSent, 1);
});

Deno.test("dhcp4 server: the BROADCAST flag and a NAK go to 255.255.255.255 at ff:ff:ff:ff:ff:ff", () => {
  const t = lab();
  const [offer] = t.send(1, T.DISCOVER, { flags: 0x8000 });
  assert.ok(offer);
  assert.equal(offer.ethDst, "ff:ff:ff:ff:ff:ff");
  assert.equal(offer.ipDst, "255.255.255.255");
  assert.equal(offer.flags, 0x8000);
  // INIT-REBOOT with an address of another network: NAK, broadcast.
  const [nak] = t.send(2, T.REQUEST, { options: [t.reqIp("198.51.100.7")] });
  assert.ok(nak);
  assert.equal(nak.type, T.NAK);
  assert.equal(nak.ethDst, "ff:ff:ff:ff:ff:ff");
  assert.equal(nak.ipDst, "255.255.255.255");
  assert.equal(nak.yiaddr, "0.0.0.0");
  assert.equal(nak.opts.get(O.LEASE_TIME), undefined);
  assert.equal(t.server.stats.naksSent, 1);
});

Deno.test("dhcp4 server: clients get distinct addresses; a full pool stays silent and counts", () => {
  const t = lab();
  const got = new Set<string>();
  for (let mac = 1; mac <= 4; mac++) got.add(t.dora(mac).yiaddr);
  assert.deepEqual([...got].sort(), [
    "192.0.2.100",
    "192.0.2.101",
    "192.0.2.102",
    "192.0.2.103",
  ]);
  assert.deepEqual(t.send(5, T.DISCOVER), []);
  assert.equal(t.server.stats.poolExhaustedDropped, 1);
  // An outstanding OFFER holds its address from others too.
  const t2 = lab({ pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.100") }] });
  assert.equal(t2.send(1, T.DISCOVER)[0]?.yiaddr, "192.0.2.100");
  assert.deepEqual(t2.send(2, T.DISCOVER), [], "held by the offer to mac 1");
  t2.clock.advance(60_000);
  assert.equal(t2.send(2, T.DISCOVER)[0]?.yiaddr, "192.0.2.100", "the hold ends after 60 s");
});

Deno.test("dhcp4 server: renew (unicast), rebind (broadcast) and expiry with reclaim", () => {
  const t = lab({ pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.100") }] });
  t.dora(1);
  t.clock.advance(1800_000); // T1
  const [renew] = t.send(1, T.REQUEST, {
    ciaddr: "192.0.2.100",
    dstIp: "192.0.2.1",
  });
  assert.ok(renew);
  assert.equal(renew.type, T.ACK);
  // RFC 2131 §4.1: ciaddr set → unicast to ciaddr, resolved by ARP as any unicast.
  assert.equal(renew.ipDst, "192.0.2.100");
  assert.equal(renew.ethDst, "02:00:00:00:01:01");
  assert.equal(renew.yiaddr, "192.0.2.100");
  assert.equal(t.server.leases()[0]!.expires, t.clock.now() - 5 + 3600_000);
  t.clock.advance(3150_000); // T2 of the renewed lease
  const [rebind] = t.send(1, T.REQUEST, { ciaddr: "192.0.2.100" }); // REBINDING: broadcast
  assert.equal(rebind?.type, T.ACK);
  assert.equal(rebind?.ipDst, "192.0.2.100");
  assert.equal(t.server.stats.acksSent, 3);
  // Let it expire; another client takes the only address.
  t.clock.advance(3600_000);
  assert.equal(t.server.activeLeases(), 0);
  const ack = t.dora(2);
  assert.equal(ack.yiaddr, "192.0.2.100");
  // The old client renewing now is refused.
  const [nak] = t.send(1, T.REQUEST, { ciaddr: "192.0.2.100", dstIp: "192.0.2.1" });
  assert.equal(nak?.type, T.NAK);
});

Deno.test("dhcp4 server: INIT-REBOOT: ACK for the client's own address, NAK for another's", () => {
  const t = lab();
  const a1 = t.dora(1).yiaddr;
  const a2 = t.dora(2).yiaddr;
  assert.equal(t.send(1, T.REQUEST, { options: [t.reqIp(a1)] })[0]?.type, T.ACK);
  assert.equal(t.send(1, T.REQUEST, { options: [t.reqIp(a2)] })[0]?.type, T.NAK);
  // Authoritative: a client we have no record of, asking for a free pool address, is ACKed.
  assert.equal(t.send(9, T.REQUEST, { options: [t.reqIp("192.0.2.103")] })[0]?.type, T.ACK);
  // Non-authoritative: silence for a client with no record (RFC 2131 §4.3.2).
  const q = lab({ authoritative: false });
  assert.deepEqual(q.send(9, T.REQUEST, { options: [q.reqIp("192.0.2.103")] }), []);
  assert.equal(q.server.stats.unknownClientDropped, 1);
});

Deno.test("dhcp4 server: a client that selected another server frees its offer", () => {
  const t = lab({ pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.100") }] });
  t.send(1, T.DISCOVER);
  const other: Dhcpv4OptionEntry = [O.SERVER_ID, encodeU32(ip("192.0.2.9"))];
  assert.deepEqual(t.send(1, T.REQUEST, { options: [other, t.reqIp("192.0.2.100")] }), []);
  assert.equal(t.server.stats.otherServerSelected, 1);
  assert.equal(t.send(2, T.DISCOVER)[0]?.yiaddr, "192.0.2.100");
});

Deno.test("dhcp4 server: DECLINE keeps the address out for decline_time; RELEASE keeps affinity", () => {
  const t = lab({ pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.101") }] });
  const a = t.dora(1).yiaddr;
  assert.deepEqual(t.send(1, T.DECLINE, { options: [t.sid, t.reqIp(a)] }), []);
  assert.equal(t.server.leases().find((l) => l.address === a)?.state, "declined");
  // The declining client gets the other address; nobody gets the declined one.
  assert.equal(t.dora(1).yiaddr, "192.0.2.101");
  assert.deepEqual(t.send(3, T.DISCOVER), []);
  t.clock.advance(600_000);
  assert.equal(t.send(3, T.DISCOVER)[0]?.yiaddr, a, "back in the pool after decline_time");
  // RELEASE of the client's lease: the record stays, the client gets it back.
  assert.deepEqual(t.send(1, T.RELEASE, { ciaddr: "192.0.2.101", options: [t.sid] }), []);
  assert.equal(t.server.leases().find((l) => l.address === "192.0.2.101")?.state, "released");
  assert.equal(t.dora(1).yiaddr, "192.0.2.101");
  // A RELEASE from a client that does not hold the address changes nothing.
  t.send(7, T.RELEASE, { ciaddr: "192.0.2.101", options: [t.sid] });
  assert.equal(t.server.leases().find((l) => l.address === "192.0.2.101")?.state, "bound");
  assert.equal(t.server.stats.unknownClientDropped, 1);
});

Deno.test("dhcp4 server: INFORM gets the options, no lease, unicast to ciaddr", () => {
  const t = lab();
  const [ack] = t.send(1, T.INFORM, { ciaddr: "192.0.2.50", dstIp: "192.0.2.1" });
  assert.ok(ack);
  assert.equal(ack.ipDst, "192.0.2.50");
  assert.equal(ack.ethDst, "02:00:00:00:01:01");
  assert.equal(t.server.leases().length, 0);
  // With the broadcast flag the ACK is seen at once.
  const [b] = t.send(1, T.INFORM, { ciaddr: "192.0.2.50", flags: 0x8000 });
  assert.ok(b);
  assert.equal(b.type, T.ACK);
  assert.equal(b.yiaddr, "0.0.0.0");
  assert.equal(b.ciaddr, "192.0.2.50");
  assert.equal(b.opts.get(O.LEASE_TIME), undefined);
  assert.deepEqual(ips(b.opts, O.ROUTER), ["192.0.2.1"]);
});

Deno.test("dhcp4 server: reservations by MAC and by client id; reserved addresses are not pooled", () => {
  const cid = new Uint8Array([1, 2, 0, 0, 0, 1, 9]);
  const t = lab({
    pools: [{ start: ip("192.0.2.100"), end: ip("192.0.2.103") }],
    reservations: [
      { mac: "02:00:00:00:01:05", clientId: null, address: ip("192.0.2.100"), hostname: "printer" },
      { mac: null, clientId: "01:02:00:00:00:01:09", address: ip("192.0.2.103"), hostname: null },
    ],
  });
  assert.equal(t.dora(1).yiaddr, "192.0.2.101", "100 is reserved for another");
  const r = t.dora(5);
  assert.equal(r.yiaddr, "192.0.2.100");
  assert.equal(t.server.leases().find((l) => l.address === "192.0.2.100")?.hostname, "printer");
  const byId = t.dora(9, [[O.CLIENT_ID, cid]]);
  assert.equal(byId.yiaddr, "192.0.2.103");
  // RFC 6842: the client identifier is echoed.
  assert.deepEqual([...byId.opts.get(O.CLIENT_ID)!], [...cid]);
  // A reserved client asking for another address is NAKed.
  assert.equal(t.send(5, T.REQUEST, { options: [t.reqIp("192.0.2.102")] })[0]?.type, T.NAK);
});

Deno.test("dhcp4 server: custom options are sent when asked for, or always with always_send", () => {
  const t = lab({
    options: [
      { code: 66, value: new TextEncoder().encode("tftp.example"), alwaysSend: false },
      { code: 252, value: new TextEncoder().encode("http://wpad/"), alwaysSend: true },
      { code: 6, value: new Uint8Array([192, 0, 2, 9]), alwaysSend: true },
    ],
  });
  const [plain] = t.send(1, T.DISCOVER);
  assert.equal(plain?.opts.get(66), undefined);
  assert.equal(new TextDecoder().decode(plain?.opts.get(252)), "http://wpad/");
  assert.deepEqual(
    ips(plain!.opts, O.DNS_SERVERS),
    ["192.0.2.9"],
    "a custom option replaces a built-in one",
  );
  const [asked] = t.send(1, T.DISCOVER, { options: [t.prl(66)] });
  assert.equal(new TextDecoder().decode(asked?.opts.get(66)), "tftp.example");
});

Deno.test("dhcp4 server: malformed and unsupported messages are dropped with one counter each", () => {
  const t = lab();
  const s = t.server.stats;
  const good = new Uint8Array(300);
  writeDhcpv4(good, 0, { op: 1, xid: 1, chaddr: new Uint8Array([2, 0, 0, 0, 1, 1]) }, [
    [O.MESSAGE_TYPE, new Uint8Array([T.DISCOVER])],
  ]);
  const cases: [string, Uint8Array, keyof typeof s][] = [
    ["short", good.slice(0, 200), "malformedDropped"],
    [
      "no magic cookie",
      (() => {
        const b = good.slice();
        b[236] = 0;
        return b;
      })(),
      "malformedDropped",
    ],
    [
      "an option running past the end",
      (() => {
        const b = good.slice(0, 244);
        b.set([53, 1, 1, 12], 240);
        return b;
      })(),
      "malformedDropped",
    ],
    [
      "an overlong option length",
      (() => {
        const b = good.slice();
        b.set([12, 200], 243);
        return b.slice(0, 300);
      })(),
      "malformedDropped",
    ],
    [
      "a bad overload value",
      (() => {
        const b = good.slice();
        b.set([52, 1, 7, 255], 243);
        return b;
      })(),
      "malformedDropped",
    ],
  ];
  for (const [what, raw, counter] of cases) {
    const before = { ...s };
    assert.deepEqual(t.send(1, T.DISCOVER, { raw }), [], what);
    assert.equal(s[counter], before[counter] + 1, what);
    const changed = Object.keys(s).filter((k) =>
      s[k as keyof typeof s] !== before[k as keyof typeof s]
    );
    assert.deepEqual(changed, [counter], `${what}: exactly one counter`);
  }
  assert.deepEqual(t.send(1, null), []);
  assert.equal(s.noMessageTypeDropped, 1);
  assert.deepEqual(t.send(1, T.OFFER), []);
  assert.equal(s.unknownMessageTypeDropped, 1);
  assert.deepEqual(t.send(1, T.DISCOVER, { op: 2 }), []);
  assert.equal(s.notRequestDropped, 1);
  assert.deepEqual(t.send(1, T.DISCOVER, { giaddr: "198.51.100.1" }), []);
  assert.equal(s.relayOtherSubnetDropped, 1);
  assert.deepEqual(t.send(1, T.REQUEST), []);
  assert.equal(s.requestWithoutAddressDropped, 1);
  // Option overload done right is read: option 53 in `file`.
  const ov = new Uint8Array(300);
  writeDhcpv4(ov, 0, { op: 1, xid: 1, chaddr: new Uint8Array([2, 0, 0, 0, 1, 1]) }, [
    [O.OVERLOAD, new Uint8Array([1])],
  ]);
  ov.set([53, 1, T.DISCOVER, 255], 108);
  assert.equal(t.send(1, T.DISCOVER, { raw: ov })[0]?.type, T.OFFER);
});

Deno.test("dhcp4 server: a restarted server keeps its leases and offers no address twice", () => {
  const clock = new ManualClock(1_000_000);
  const store = new MemoryLeaseStore();
  const t = lab({}, store, clock);
  const a1 = t.dora(1).yiaddr, a2 = t.dora(2).yiaddr;
  t.server.close();
  t.stack.close();
  const u = lab({}, store, clock);
  assert.equal(u.server.leases().length, 2);
  // The old clients renew their addresses; a new one gets a third.
  assert.equal(u.send(1, T.REQUEST, { options: [u.reqIp(a1)] })[0]?.type, T.ACK);
  assert.equal(u.send(2, T.REQUEST, { options: [u.reqIp(a2)] })[0]?.type, T.ACK);
  const a3 = u.dora(3).yiaddr;
  assert.ok(![a1, a2].includes(a3), `${a3} is new`);
});

Deno.test("dhcp4 server: no ACK leaves when the lease cannot be written", () => {
  const failing: LeaseStore = {
    load: () => [],
    commit: (_r: LeaseRecord) => {
      throw new Error("disk full");
    },
    sync: () => {},
    close: () => {},
  };
  const t = lab({}, failing);
  const [offer] = t.send(1, T.DISCOVER);
  assert.ok(offer);
  assert.deepEqual(t.send(1, T.REQUEST, { options: [t.sid, t.reqIp(offer.yiaddr)] }), []);
  assert.equal(t.server.stats.leaseWriteFailedDropped, 1);
  assert.equal(t.server.stats.acksSent, 0);
  assert.equal(t.server.leases().length, 0);
});

/** A store that logs what it was asked to do, and whose sync can fail. */
class LoggingStore extends MemoryLeaseStore {
  log: string[] = [];
  failSync = false;
  override commit(r: LeaseRecord): void {
    this.log.push(`commit ${r.address}`);
    super.commit(r);
  }
  override sync(): void {
    this.log.push("sync");
    if (this.failSync) throw new Error("I/O error");
  }
}

Deno.test("dhcp4 server: group commit — a burst of REQUESTs is one store sync, and no ACK leaves before it", () => {
  const store = new LoggingStore();
  const t = lab({}, store);
  const offers = [1, 2, 3].map((m) => t.send(m, T.DISCOVER)[0]!);
  // Three REQUESTs arrive in one burst (one clock turn), as a poll batch brings them.
  for (const [i, m] of [1, 2, 3].entries()) {
    t.send(m, T.REQUEST, { options: [t.sid, t.reqIp(offers[i]!.yiaddr)], noAdvance: true });
  }
  assert.equal(t.replies.filter((r) => r.type === T.ACK).length, 0, "held until the sync");
  t.clock.advance(1);
  assert.deepEqual(store.log, [
    "commit 192.0.2.100",
    "commit 192.0.2.101",
    "commit 192.0.2.102",
    "sync",
  ]);
  assert.equal(t.replies.filter((r) => r.type === T.ACK).length, 3);
  assert.equal(t.server.stats.acksSent, 3);
  // A sync that fails: the ACK never leaves, and is counted.
  store.failSync = true;
  const o4 = t.send(4, T.DISCOVER)[0]!;
  assert.deepEqual(t.send(4, T.REQUEST, { options: [t.sid, t.reqIp(o4.yiaddr)] }), []);
  assert.equal(t.server.stats.leaseWriteFailedDropped, 1);
  assert.equal(t.server.stats.acksSent, 3);
});

const CI = Deno.env.get("CI") === "true";
const tsharkFound = await haveTshark();

Deno.test({
  name: "dhcp4 server: tshark dissects every message the server builds, none malformed",
  ignore: !tsharkFound && !CI,
  async fn() {
    assert.equal(tsharkFound, true, "tshark is required under CI=true");
    const t = lab({
      options: [{ code: 66, value: new TextEncoder().encode("tftp.example"), alwaysSend: true }],
      ntpServers: [ip("192.0.2.123")],
    });
    const cid: Dhcpv4OptionEntry = [O.CLIENT_ID, new Uint8Array([1, 2, 0, 0, 0, 1, 1])];
    t.dora(1, [t.prl(1, 3, 6, 15, 26, 42, 119, 121), cid]); // OFFER, ACK
    t.send(2, T.REQUEST, { options: [t.reqIp("198.51.100.7")] }); // NAK
    t.send(3, T.INFORM, { ciaddr: "192.0.2.77", flags: 0x8000 }); // ACK without a lease
    assert.equal(t.frames.length, 4);
    const dir = await Deno.makeTempDir({ prefix: "tapir_dhcp4_" });
    try {
      await Deno.writeFile(`${dir}/d.pcap`, pcap(t.frames));
      const checks = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"];
      const types = await tshark([
        "-r",
        `${dir}/d.pcap`,
        ...checks,
        "-T",
        "fields",
        "-e",
        "dhcp.option.dhcp",
        "-e",
        "dhcp.option.classless_static_route",
      ]);
      const rows = types.trim().split("\n").map((l) => l.split("\t"));
      assert.deepEqual(rows.map((r) => r[0]), ["2", "5", "6", "5"]);
      assert.ok(rows[0]![1]!.length > 0, `option 121 dissected: ${types}`);
      const bad = await tshark([
        "-r",
        `${dir}/d.pcap`,
        ...checks,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= warning",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "_ws.expert.message",
      ]);
      assert.equal(bad.trim(), "", `tshark found problems:\n${bad}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** examples/gateway.toml built on memory links; a DISCOVER on lan0's wire; the OFFERs seen. */
function gatewayOffers(edit: (text: string) => string): { offers: string[]; leaseFile: string } {
  const clock = new ManualClock(1_000_000);
  const text = edit(
    Deno.readTextFileSync(new URL("../../../examples/gateway.toml", import.meta.url)),
  );
  const config = parseConfig(text);
  const far = new Map<string, MemoryEndpoint>();
  const built = buildStack(config, {
    clock,
    openLink: (iface) => {
      const [mine, theirs] = MemoryLink.pair({ clock });
      far.set(iface.name, theirs);
      return mine;
    },
  });
  const offers: string[] = [];
  const lan = far.get("lan0")!;
  lan.attach({
    deliverFrame(p: PacketBuffer) {
      const f = p.data.slice(p.start, p.end);
      if (eth(f).type !== 0x0800) return;
      const v4 = readIpv4(f, 14);
      const u = v4.payload;
      if (v4.protocol !== PROTO.UDP || ((u[2]! << 8) | u[3]!) !== 68) return;
      const m = new Dhcpv4Message(u, 8, u.length - 8);
      const o = m.options();
      if (typeof o !== "string" && o.get(O.MESSAGE_TYPE)?.[0] === T.OFFER) {
        offers.push(`${formatIpv4(m.yiaddr())} from ${v4.src}`);
      }
    },
  });
  clock.advance(5000);
  const b = new Uint8Array(300);
  writeDhcpv4(b, 0, { op: 1, xid: 7, chaddr: new Uint8Array([2, 0, 0, 0, 0, 0x10]) }, [
    [O.MESSAGE_TYPE, new Uint8Array([T.DISCOVER])],
  ]);
  const pkt = ipv4({
    src: "0.0.0.0",
    dst: "255.255.255.255",
    protocol: PROTO.UDP,
    payload: udp("0.0.0.0", "255.255.255.255", 68, 67, b),
  });
  const frame = new Uint8Array(14 + pkt.length);
  frame.set([255, 255, 255, 255, 255, 255, 2, 0, 0, 0, 0, 0x10, 8, 0]);
  frame.set(pkt, 14);
  const pb = new PacketBuffer();
  pb.data.set(frame, HEADROOM);
  pb.setFrame(HEADROOM, frame.length);
  lan.writePacket(pb);
  clock.advance(10);
  built.stack.close();
  return { offers, leaseFile: config.interfaces[1]!.dhcp.leaseFile };
}

Deno.test("gateway.toml: its default-drop INPUT lets DHCP in; the reservation is offered", () => {
  const { offers, leaseFile } = gatewayOffers((t) => t);
  assert.deepEqual(offers, ["192.0.2.110 from 192.0.2.1"]);
  assert.equal(leaseFile, "/var/lib/tapir/lan0.dhcp4.leases");
  // Without its udp 67 rule the same DISCOVER is dropped by the INPUT policy.
  const without = gatewayOffers((t) => {
    const cut = t.replace('  "-i lan0 -p udp --sport 68 --dport 67 -j ACCEPT",\n', "");
    assert.notEqual(cut, t, "gateway.toml's DHCP rule changed");
    return cut;
  });
  assert.deepEqual(without.offers, []);
});

Deno.test("DHCPv4 server: through a relay agent on the LAN — replies to giaddr:67, option 82 echoed, NAK broadcast-flagged", () => {
  const t = lab();
  const relay = "192.0.2.250";
  const rai: Dhcpv4OptionEntry = [
    O.RELAY_AGENT_INFO,
    new Uint8Array([1, 4, 0x65, 0x74, 0x68, 0x30]),
  ];
  const [offer] = t.send(7, T.DISCOVER, {
    giaddr: relay,
    srcIp: relay,
    dstIp: "192.0.2.1",
    options: [rai],
  });
  assert.ok(offer !== undefined && offer.type === T.OFFER);
  assert.deepEqual([offer.ipDst, offer.dport, offer.giaddr, offer.ipSrc], [
    relay,
    67,
    relay,
    "192.0.2.1",
  ]);
  assert.notEqual(offer.yiaddr, relay, "the relay's own address is never offered");
  // RFC 3046: echoed, and as the last option.
  assert.deepEqual(offer.opts.get(O.RELAY_AGENT_INFO), rai[1]);
  assert.equal([...offer.opts.keys()].at(-1), O.RELAY_AGENT_INFO);
  const [ack] = t.send(7, T.REQUEST, {
    giaddr: relay,
    srcIp: relay,
    dstIp: "192.0.2.1",
    options: [t.sid, t.reqIp(offer.yiaddr), rai],
  });
  assert.ok(ack !== undefined && ack.type === T.ACK);
  assert.deepEqual([ack.ipDst, ack.dport, ack.yiaddr], [relay, 67, offer.yiaddr]);
  const [nak] = t.send(8, T.REQUEST, {
    giaddr: relay,
    srcIp: relay,
    dstIp: "192.0.2.1",
    options: [t.reqIp("198.51.100.7")],
  });
  assert.ok(nak !== undefined && nak.type === T.NAK);
  assert.deepEqual([nak.ipDst, nak.dport, nak.flags & 0x8000], [relay, 67, 0x8000]);
  assert.equal(t.server.stats.relayOtherSubnetDropped, 0);
  t.server.close();
});

Deno.test("dhcp4 server: an address is ARP-probed before its first OFFER; one another host answers for is skipped and kept out", () => {
  const t = lab({ conflictProbeMs: 500 });
  // A host squats on the first pool address without a lease.
  t.owned.set("192.0.2.100", 0x77);
  assert.deepEqual(t.send(1, T.DISCOVER), []);
  t.clock.advance(500);
  const offers = t.replies.filter((r) => r.type === T.OFFER);
  assert.deepEqual(offers.map((o) => o.yiaddr), ["192.0.2.101"]);
  assert.equal(t.server.stats.conflictProbesSent, 2);
  assert.equal(t.server.stats.conflictsDetected, 1);
  const squat = t.server.leases().find((l) => l.address === "192.0.2.100")!;
  assert.equal(squat.state, "declined");
  assert.equal(squat.mac, "02:00:00:00:01:77");
  // The client's retransmitted DISCOVER: the same address at once, no new probe.
  const [again] = t.send(1, T.DISCOVER);
  assert.equal(again?.yiaddr, "192.0.2.101");
  assert.equal(t.server.stats.conflictProbesSent, 2);
  // Another client while .100 is out of the pools: .102, probed.
  assert.deepEqual(t.send(2, T.DISCOVER), []);
  t.clock.advance(500);
  assert.equal(t.replies.at(-1)!.yiaddr, "192.0.2.102");
  assert.equal(t.server.stats.conflictProbesSent, 3);
});

Deno.test("dhcp4 server: no probe for the client's own address, a reservation, or with conflict_probe = 0", () => {
  const t = lab({
    conflictProbeMs: 500,
    reservations: [{
      mac: "02:00:00:00:01:05",
      clientId: null,
      address: ip("192.0.2.103"),
      hostname: null,
    }],
  });
  // Reserved: offered at once.
  const [r] = t.send(5, T.DISCOVER);
  assert.equal(r?.yiaddr, "192.0.2.103");
  assert.equal(t.server.stats.conflictProbesSent, 0);
  // A lease, released, asked for again after the probe's freshness ran out: its own, no probe.
  t.send(1, T.DISCOVER);
  t.clock.advance(500);
  const offer = t.replies.at(-1)!;
  t.send(1, T.REQUEST, { options: [t.sid, t.reqIp(offer.yiaddr)] });
  t.send(1, T.RELEASE, { ciaddr: offer.yiaddr });
  t.clock.advance(120_000);
  const before = t.server.stats.conflictProbesSent;
  const [back] = t.send(1, T.DISCOVER);
  assert.equal(back?.yiaddr, offer.yiaddr);
  assert.equal(t.server.stats.conflictProbesSent, before);
  // Off: at once.
  const off = lab({ conflictProbeMs: 0 });
  assert.equal(off.send(1, T.DISCOVER)[0]?.yiaddr, "192.0.2.100");
  assert.equal(off.server.stats.conflictProbesSent, 0);
});

Deno.test("DHCPv4 server: an off-link subnet behind a relay router — served from relay_subnets, router = giaddr, reply routed to the relay", () => {
  const t = lab({
    relaySubnets: [{
      prefix: ip("203.0.113.0"),
      prefixLen: 24,
      pools: [{ start: ip("203.0.113.100"), end: ip("203.0.113.101") }],
      routers: [],
    }],
  });
  // The relay router: 192.0.2.254 on the LAN, 203.0.113.1 on the subnet it relays for.
  t.stack.ipv4.routes.add({
    prefix: ip("203.0.113.0"),
    prefixLen: 24,
    type: "unicast",
    nicId: t.nic.id,
    gateway: ip("192.0.2.254"),
    metric: 0,
    source: "static",
  });
  t.owned.set("192.0.2.254", 0xfe);
  const via = { giaddr: "203.0.113.1", srcIp: "192.0.2.254", dstIp: "192.0.2.1" };
  const [offer] = t.send(9, T.DISCOVER, { ...via, options: [t.prl(1, 3)] });
  assert.ok(offer !== undefined && offer.type === T.OFFER);
  assert.deepEqual([offer.yiaddr, offer.ipDst, offer.dport, offer.giaddr], [
    "203.0.113.100",
    "203.0.113.1",
    67,
    "203.0.113.1",
  ]);
  assert.deepEqual(ips(offer.opts, O.ROUTER), ["203.0.113.1"]);
  assert.equal(u32(offer.opts, O.SUBNET_MASK), ip("255.255.255.0"));
  assert.equal(u32(offer.opts, O.SERVER_ID), SERVER);
  const [ack] = t.send(9, T.REQUEST, { ...via, options: [t.sid, t.reqIp(offer.yiaddr)] });
  assert.ok(ack !== undefined && ack.type === T.ACK);
  assert.equal(ack.yiaddr, "203.0.113.100");
  // A client on the LAN itself still gets the interface's pool; an address of the
  // relayed subnet asked for directly is not on its network.
  assert.equal(t.send(1, T.DISCOVER)[0]?.yiaddr, "192.0.2.100");
  const [nak] = t.send(2, T.REQUEST, { options: [t.reqIp("203.0.113.101")] });
  assert.equal(nak?.type, T.NAK);
  // A relay for a subnet served nowhere: dropped, counted.
  assert.deepEqual(t.send(3, T.DISCOVER, { ...via, giaddr: "198.51.100.1" }), []);
  assert.equal(t.server.stats.relayOtherSubnetDropped, 1);
  t.server.close();
});

Deno.test("[interface.dhcp] relay_subnets reaches the server's settings", () => {
  const c = parseConfig(
    `[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\n` +
      `relay_subnets = [{ subnet = "203.0.113.0/24", pools = ["203.0.113.100-203.0.113.150"], router = "203.0.113.1" }]\n`,
  );
  assert.deepEqual(c.interfaces[0]!.dhcp.settings.relaySubnets, [{
    prefix: ip("203.0.113.0"),
    prefixLen: 24,
    pools: [{ start: ip("203.0.113.100"), end: ip("203.0.113.150") }],
    routers: [ip("203.0.113.1")],
  }]);
});
