/**
 * IPv4 forwarding through a router (RFC 1812 §5.2–5.3): TTL, rewrite,
 * routes and route types, MTU (RFC 1191), fragmentation, redirects,
 * options on forwarded packets (RFC 791 §3.1), and ECMP.
 */
import assert from "node:assert/strict";
import { formatMac, parseIpv4 } from "../../stack/wire/mod.ts";
import { ping } from "../../stack/mod.ts";
import {
  ADDR,
  addRoute,
  assertDelta,
  hostLab,
  RawHost,
  rawMac,
  type RouterLab,
  routerLab,
  type RouterLabOptions,
  settle,
  watch,
} from "./_topology.ts";
import {
  eth,
  expectIcmp,
  expectIpv4,
  ipv4,
  type Ipv4Spec,
  isIpv4,
  PROTO,
  udp,
} from "./_packets.ts";

/** A UDP packet from a to `dst` (b by default). */
function packet(spec: Partial<Ipv4Spec> & { len?: number; sport?: number } = {}): Uint8Array {
  const src = spec.src ?? ADDR.a;
  const dst = spec.dst ?? ADDR.b;
  const len = spec.len ?? 60;
  const hl = 20 + (((spec.options?.length ?? 0) + 3) & ~3);
  return ipv4({
    src,
    dst,
    protocol: PROTO.UDP,
    id: 0x1234,
    payload: udp(src, dst, spec.sport ?? 40000, 9, len - hl - 8),
    ...spec,
  });
}

Deno.test("forwarding rewrites TTL, checksum and Ethernet addresses", async (t) => {
  await t.step("TTL drops by exactly 1, checksum valid, the rest unchanged", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const orig = packet({ ttl: 64, len: 200 });
    lab.a.sendIp(orig);
    lab.clock.advance(0);
    const [f] = lab.b.ipv4();
    assert.ok(f !== undefined, "b received the packet");
    const ip = expectIpv4(f, { ttl: 63, src: ADDR.a, dst: ADDR.b, totalLength: 200, id: 0x1234 });
    const want = orig.slice();
    want[8] = 63;
    want.set(ip.bytes.subarray(10, 12), 10);
    assert.deepEqual(ip.bytes, want, "only TTL and checksum changed");
    assertDelta(d(), { "ipv4.forwarding.packets": 1 });
  });

  await t.step("Ethernet source is r's egress MAC, destination the next hop's", () => {
    const lab = routerLab();
    lab.a.sendIp(packet());
    lab.clock.advance(0);
    const e = eth(lab.b.ipv4()[0]!);
    assert.equal(e.src, formatMac(lab.rWan.mac));
    assert.equal(e.dst, formatMac(lab.b.mac));
  });

  await t.step("TTL 2 is forwarded with TTL 1", () => {
    const lab = routerLab();
    lab.a.sendIp(packet({ ttl: 2 }));
    lab.clock.advance(0);
    expectIpv4(lab.b.ipv4()[0]!, { ttl: 1 });
  });

  await t.step("TTL 1 gets Time Exceeded code 0 quoting the packet", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const orig = packet({ ttl: 1 });
    lab.a.sendIp(orig);
    lab.clock.advance(0);
    assert.equal(lab.b.ipv4().length, 0);
    const m = expectIcmp(lab.a.icmp()[0]!, { type: 11, code: 0, rest: 0, src: ADDR.rLan });
    assert.deepEqual(m.body, orig);
    assertDelta(d(), { "ipv4.forwarding.ttlExceeded": 1, "ipv4.forwarding.packets": 0 });
  });

  await t.step("TTL 0 gets Time Exceeded too", () => {
    const lab = routerLab();
    lab.a.sendIp(packet({ ttl: 0 }));
    lab.clock.advance(0);
    expectIcmp(lab.a.icmp()[0]!, { type: 11, code: 0 });
  });
});

interface RouteCase {
  name: string;
  /** Routes to add on r before sending to 203.0.113.5. */
  setup: (lab: RouterLab) => void;
  /** Expected ICMP (type, code) at a, or null for none. */
  icmp: [number, number] | null;
  counters: Record<string, number>;
}

const ROUTE_CASES: RouteCase[] = [
  {
    name: "no route: Net Unreachable",
    setup: () => {},
    icmp: [3, 0],
    counters: { "ipv4.forwarding.noRoute": 1, "icmpv4.errorsSent": 1 },
  },
  {
    name: "blackhole route: dropped silently",
    setup: (lab) => addRoute(lab.r, null, "203.0.113.0/24", null, "blackhole"),
    icmp: null,
    counters: { "ipv4.forwarding.blackholeDropped": 1, "icmpv4.errorsSent": 0 },
  },
  {
    name: "unreachable route: Net Unreachable",
    setup: (lab) => addRoute(lab.r, null, "203.0.113.0/24", null, "unreachable"),
    icmp: [3, 0],
    counters: { "ipv4.forwarding.unreachableRouteDropped": 1, "icmpv4.errorsSent": 1 },
  },
  {
    name: "prohibit route: Communication Administratively Prohibited (code 13)",
    setup: (lab) => addRoute(lab.r, null, "203.0.113.0/24", null, "prohibit"),
    icmp: [3, 13],
    counters: { "ipv4.forwarding.prohibitRouteDropped": 1, "icmpv4.errorsSent": 1 },
  },
  {
    name: "a more specific blackhole wins over a default route",
    setup: (lab) => {
      addRoute(lab.r, lab.rWan, "0.0.0.0/0", ADDR.b);
      addRoute(lab.r, null, "203.0.113.5/32", null, "blackhole");
    },
    icmp: null,
    counters: { "ipv4.forwarding.blackholeDropped": 1, "ipv4.forwarding.packets": 0 },
  },
  {
    name: "a default route forwards",
    setup: (lab) => addRoute(lab.r, lab.rWan, "0.0.0.0/0", ADDR.b),
    icmp: null,
    counters: { "ipv4.forwarding.packets": 1 },
  },
];

Deno.test("routes and route types", async (t) => {
  for (const c of ROUTE_CASES) {
    await t.step(c.name, () => {
      const lab = routerLab();
      c.setup(lab);
      const d = watch(lab.r);
      const orig = packet({ dst: "203.0.113.5" });
      lab.a.sendIp(orig);
      lab.clock.advance(0);
      lab.clock.advance(0);
      const errs = lab.a.icmp();
      if (c.icmp === null) {
        assert.equal(errs.length, 0, "no ICMP");
      } else {
        assert.equal(errs.length, 1, "one ICMP error");
        const m = expectIcmp(errs[0]!, {
          type: c.icmp[0],
          code: c.icmp[1],
          src: ADDR.rLan,
          dst: ADDR.a,
        });
        assert.deepEqual(m.body, orig, "quotes the packet");
      }
      assertDelta(d(), c.counters);
    });
  }
});

Deno.test("forwarding disabled on the ingress NIC: dropped, counted, no ICMP", () => {
  const lab = routerLab({ lanForwarding: false });
  const d = watch(lab.r);
  lab.a.sendIp(packet());
  lab.a.sendIp(packet({ ttl: 1 }));
  lab.clock.advance(0);
  assert.equal(lab.b.ipv4().length, 0);
  assert.equal(lab.a.icmp().length, 0);
  assertDelta(d(), {
    "ipv4.notForUsDropped": 2,
    "ipv4.forwarding.packets": 0,
    "icmpv4.errorsSent": 0,
  });
});

Deno.test("MTU and fragmentation on forwarding", async (t) => {
  await t.step("DF set and too big: Fragmentation Needed with the next-hop MTU", () => {
    const lab = routerLab({ wanMtu: 1280 });
    const d = watch(lab.r);
    const orig = packet({ len: 1400, df: true });
    lab.a.sendIp(orig);
    lab.clock.advance(0);
    assert.equal(lab.b.ipv4().length, 0);
    // RFC 1191 §4: the next-hop MTU in the low 16 bits, the high 16 unused (0).
    const m = expectIcmp(lab.a.icmp()[0]!, { type: 3, code: 4, rest: 1280, src: ADDR.rLan });
    assert.deepEqual(m.body, orig.subarray(0, 548));
    assertDelta(d(), { "ipv4.forwarding.packetTooBig": 1, "ipv4.forwarding.packets": 0 });
  });

  await t.step("DF set and exactly the MTU: forwarded", () => {
    const lab = routerLab({ wanMtu: 1280 });
    lab.a.sendIp(packet({ len: 1280, df: true }));
    lab.clock.advance(0);
    expectIpv4(lab.b.ipv4()[0]!, { totalLength: 1280, df: true });
    assert.equal(lab.a.icmp().length, 0);
  });

  for (const mtu of [576, 1280]) {
    await t.step(`DF clear and too big for MTU ${mtu}: fragments on the wire`, () => {
      const lab = routerLab({ wanMtu: mtu });
      const d = watch(lab.r);
      const orig = packet({ len: 1400, ttl: 10 });
      lab.a.sendIp(orig);
      lab.clock.advance(0);
      const frags = lab.b.ipv4().map((f) => expectIpv4(f, { ttl: 9, id: 0x1234, df: false }));
      assert.ok(frags.length >= 2, "fragmented");
      let payload = new Uint8Array(0);
      for (const [i, ip] of frags.entries()) {
        assert.ok(ip.totalLength <= mtu, `fragment ${i} fits the MTU`);
        assert.equal(ip.mf, i !== frags.length - 1, `MF of fragment ${i}`);
        assert.equal(ip.fragOffset, payload.length, `offset of fragment ${i}`);
        if (i !== frags.length - 1) assert.equal(ip.payload.length % 8, 0);
        const p = new Uint8Array(payload.length + ip.payload.length);
        p.set(payload);
        p.set(ip.payload, payload.length);
        payload = p;
      }
      assert.deepEqual(payload, orig.subarray(20), "the fragments carry the original payload");
      assert.equal(lab.wan.frames("r").every((f) => f.bytes.length <= mtu + 14), true);
      assertDelta(d(), {
        "ipv4.forwarding.packets": 1,
        "ipv4.packetsFragmented": 1,
        "ipv4.fragmentsCreated": frags.length,
      });
    });
  }

  await t.step("fragmenting a packet with Record Route: the first fragment keeps it", () => {
    const lab = routerLab({ wanMtu: 576 });
    lab.a.sendIp(packet({ len: 1400, options: RR_EMPTY }));
    lab.clock.advance(0);
    const frags = lab.b.ipv4().map((f) => expectIpv4(f, { ttl: 63 }));
    assert.ok(frags.length >= 3);
    assert.deepEqual(
      [...frags[0]!.header.subarray(20)],
      [7, 11, 8, 198, 51, 100, 1, 0, 0, 0, 0, 0],
      "recorded, then copied into the first fragment",
    );
    // RFC 791 §3.1: Record Route's copied flag is 0, so later fragments drop it.
    for (const ip of frags.slice(1)) assert.equal(ip.headerLen, 20);
  });

  for (const mtu of [576, 1280]) {
    await t.step(`ping -s 1400 across a ${mtu}-byte link gets replies`, async () => {
      const lab = hostLab({ wanMtu: mtu });
      const res = await settle(lab.clock, ping(lab.h1, { dst: parseIpv4(ADDR.b), size: 1400 }));
      assert.equal(res.received, 3);
      assert.deepEqual(res.replies.map((r) => r.bytes), [1408, 1408, 1408]);
      const wan = lab.wan.log.filter((f) => isIpv4(f.bytes));
      assert.ok(wan.length >= 12, "requests and replies crossed the WAN as fragments");
      for (const f of wan) {
        const ip = expectIpv4(f.bytes);
        assert.ok(ip.totalLength <= mtu, `${f.from}: ${ip.totalLength} ≤ ${mtu}`);
      }
    });
  }
});

/** A second router r2 (192.0.2.2) on a's LAN; r routes 203.0.113.0/24 via it. */
function redirectLab(opts: RouterLabOptions = {}): RouterLab & { r2: RawHost } {
  const lab = routerLab(opts);
  const r2 = new RawHost(lab.lan.port("r2"), rawMac(0x22), parseIpv4("192.0.2.2"));
  r2.gatewayMac = lab.rLan.mac;
  r2.arpFor(parseIpv4(ADDR.rLan));
  lab.clock.advance(0);
  lab.clock.advance(0);
  addRoute(lab.r, lab.rLan, "203.0.113.0/24", "192.0.2.2");
  lab.a.clear();
  r2.clear();
  return { ...lab, r2 };
}

Deno.test("ICMP redirects (RFC 1812 §5.2.7.2)", async (t) => {
  await t.step("a packet leaving by the NIC it came in on: redirect, and still forwarded", () => {
    const lab = redirectLab();
    const d = watch(lab.r);
    const orig = packet({ dst: "203.0.113.5" });
    lab.a.sendIp(orig);
    lab.clock.advance(0);
    const m = expectIcmp(lab.a.icmp()[0]!, {
      type: 5,
      code: 1, // redirect for the host
      rest: parseIpv4("192.0.2.2"),
      src: ADDR.rLan,
      dst: ADDR.a,
    });
    assert.deepEqual(m.body, orig, "quotes the packet");
    const [f] = lab.r2.ipv4();
    assert.ok(f !== undefined, "forwarded to r2");
    expectIpv4(f, { ttl: 63, dst: "203.0.113.5" });
    assert.equal(eth(f).dst, formatMac(lab.r2.mac));
    assert.equal(eth(f).src, formatMac(lab.rLan.mac));
    assertDelta(d(), { "ipv4.forwarding.redirectsSent": 1, "ipv4.forwarding.packets": 1 });
  });

  await t.step("no redirect with sendRedirects=false; still forwarded", () => {
    const lab = redirectLab({ sendRedirects: false });
    const d = watch(lab.r);
    lab.a.sendIp(packet({ dst: "203.0.113.5" }));
    lab.clock.advance(0);
    assert.equal(lab.a.icmp().length, 0);
    assert.equal(lab.r2.ipv4().length, 1);
    assertDelta(d(), { "ipv4.forwarding.redirectsSent": 0, "ipv4.forwarding.packets": 1 });
  });

  await t.step("no redirect when the packet leaves by another NIC", () => {
    const lab = redirectLab();
    lab.a.sendIp(packet());
    lab.clock.advance(0);
    assert.equal(lab.a.icmp().length, 0);
    assert.equal(lab.b.ipv4().length, 1);
  });
});

// RFC 791 §3.1 option bytes.
const RR_EMPTY = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0]; // Record Route, room for 2
const RR_FULL = [7, 7, 8, 192, 0, 2, 99]; // Record Route, 1 slot, already used
const TS_EMPTY = [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // Timestamp, flag 0, room for 2

interface OptionCase {
  name: string;
  options: number[];
  /** Expected options on the forwarded packet (computed from the router's state), or null: dropped. */
  forwarded: ((lab: RouterLab) => number[]) | null;
  /** Parameter Problem pointer when dropped. */
  pointer?: number;
}

const OPTION_CASES: OptionCase[] = [
  {
    name: "Record Route: egress address appended, pointer advanced",
    options: RR_EMPTY,
    forwarded: () => [7, 11, 8, 198, 51, 100, 1, 0, 0, 0, 0, 0],
  },
  {
    name: "Record Route already full: left unchanged",
    options: RR_FULL,
    forwarded: () => [...RR_FULL, 0],
  },
  {
    name: "Timestamp (flag 0): one entry of ms since midnight, pointer advanced",
    options: TS_EMPTY,
    forwarded: (lab) => {
      const ts = lab.clock.now() % 86_400_000;
      return [68, 12, 9, 0, ts >>> 24, (ts >>> 16) & 255, (ts >>> 8) & 255, ts & 255, 0, 0, 0, 0];
    },
  },
  {
    name: "Record Route with pointer 3: Parameter Problem at the pointer byte (22)",
    options: [7, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0],
    forwarded: null,
    pointer: 22,
  },
  {
    name: "an option longer than the header: Parameter Problem at its type byte (20)",
    options: [7, 40, 4, 0],
    forwarded: null,
    pointer: 20,
  },
  {
    name: "Timestamp with an undefined flag (2): Parameter Problem at the flags byte (23)",
    options: [68, 12, 5, 2, 0, 0, 0, 0, 0, 0, 0, 0],
    forwarded: null,
    pointer: 23,
  },
];

Deno.test("IPv4 options on forwarded packets", async (t) => {
  for (const c of OPTION_CASES) {
    await t.step(c.name, () => {
      const lab = routerLab();
      lab.clock.advance(12_345_678); // a recognisable timestamp
      lab.a.clear();
      lab.b.clear();
      const d = watch(lab.r);
      const orig = packet({ options: c.options, ttl: 30 });
      lab.a.sendIp(orig);
      const sentAt = lab.clock.now();
      lab.clock.advance(0);
      if (c.forwarded !== null) {
        const [f] = lab.b.ipv4();
        assert.ok(f !== undefined, "forwarded");
        const ip = expectIpv4(f, { ttl: 29 });
        const want = c.forwarded({ ...lab, clock: { now: () => sentAt } as never });
        assert.deepEqual([...ip.header.subarray(20)], want, "options");
        assert.deepEqual(ip.payload, orig.subarray(ip.headerLen), "payload unchanged");
        assert.equal(lab.a.icmp().length, 0);
      } else {
        assert.equal(lab.b.ipv4().length, 0, "not forwarded");
        const m = expectIcmp(lab.a.icmp()[0]!, {
          type: 12,
          code: 0,
          rest: (c.pointer! << 24) >>> 0,
          src: ADDR.rLan,
        });
        assert.deepEqual(m.body.subarray(0, orig.length), orig.subarray(0, m.body.length));
        assertDelta(d(), { "ipv4.optionsDropped": 1 });
      }
    });
  }
});

/** Two next hops n1, n2 on the WAN and an ECMP route via both. */
function ecmpLab(): RouterLab & { n1: RawHost; n2: RawHost } {
  const lab = routerLab();
  const n1 = new RawHost(lab.wan.port("n1"), rawMac(0x31), parseIpv4("198.51.100.2"));
  const n2 = new RawHost(lab.wan.port("n2"), rawMac(0x32), parseIpv4("198.51.100.3"));
  for (const n of [n1, n2]) n.arpFor(parseIpv4(ADDR.rWan));
  lab.clock.advance(0);
  lab.clock.advance(0);
  addRoute(lab.r, lab.rWan, "203.0.113.0/24", "198.51.100.2");
  addRoute(lab.r, lab.rWan, "203.0.113.0/24", "198.51.100.3");
  n1.clear();
  n2.clear();
  return { ...lab, n1, n2 };
}

Deno.test("ECMP spreads flows over equal-cost next hops", async (t) => {
  await t.step("1000 flows (UDP source ports) use both next hops, each ≥ 30%", () => {
    const lab = ecmpLab();
    for (let i = 0; i < 1000; i++) {
      lab.a.sendIp(packet({ dst: "203.0.113.7", sport: 10_000 + i }));
      if (i % 100 === 99) lab.clock.advance(0);
    }
    lab.clock.advance(0);
    const c1 = lab.n1.ipv4().length;
    const c2 = lab.n2.ipv4().length;
    assert.equal(c1 + c2, 1000, "every flow forwarded");
    assert.ok(c1 >= 300 && c2 >= 300, `split ${c1}/${c2}`);
    assert.equal(lab.b.ipv4().length, 0);
  });

  await t.step("one flow always takes the same next hop", () => {
    const lab = ecmpLab();
    for (let k = 0; k < 8; k++) {
      lab.n1.clear();
      lab.n2.clear();
      for (let i = 0; i < 20; i++) lab.a.sendIp(packet({ dst: "203.0.113.7", sport: 5000 + k }));
      lab.clock.advance(0);
      const c1 = lab.n1.ipv4().length;
      const c2 = lab.n2.ipv4().length;
      assert.ok((c1 === 20 && c2 === 0) || (c1 === 0 && c2 === 20), `flow ${k}: ${c1}/${c2}`);
    }
  });

  await t.step("both fragments of a datagram take the same next hop", () => {
    const lab = ecmpLab();
    for (let k = 0; k < 16; k++) {
      lab.n1.clear();
      lab.n2.clear();
      const whole = packet({ dst: "203.0.113.7", len: 1700, sport: 6000 + k });
      // Split by hand: the first fragment carries the UDP ports, the second does not.
      const base = { src: ADDR.a, dst: "203.0.113.7", protocol: PROTO.UDP, id: 100 + k };
      lab.a.sendIp(ipv4({ ...base, mf: true, payload: whole.subarray(20, 20 + 1200) }));
      lab.a.sendIp(ipv4({ ...base, fragOffset: 1200, payload: whole.subarray(20 + 1200) }));
      lab.clock.advance(0);
      const c1 = lab.n1.ipv4().length;
      const c2 = lab.n2.ipv4().length;
      // Linux's flow dissector hashes no ports for any fragment, first included.
      assert.ok((c1 === 2 && c2 === 0) || (c1 === 0 && c2 === 2), `datagram ${k}: ${c1}/${c2}`);
    }
  });
});
