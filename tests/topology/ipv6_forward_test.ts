/**
 * IPv6 forwarding of a router (RFC 8200, RFC 4443, RFC 4861 §8.2, Linux
 * ip6_forward): scope checks, hop limit, route types, Packet Too Big,
 * Hop-by-Hop options en route, Ethernet rewrite, Redirects.
 */
import assert from "node:assert/strict";
import { formatMac, macEqual } from "../../stack/wire/mod.ts";
import { assertDelta, rawMac, watch } from "./_topology.ts";
import {
  ADDR6,
  echo6,
  expectIcmp6,
  hbh,
  type Icmp6Expect,
  ip6,
  type Ip6Spec,
  NH,
  ns,
  RawHost6,
  readIcmp6,
  readIpv6,
  route6,
  type RouterLab6,
  routerLab6,
  type RouterLab6Options,
  T6,
  udp6,
  unknownOption,
} from "./_topology6.ts";

const A = ADDR6.a, B = ADDR6.b, R = ADDR6.rLan;

/** A UDP probe a → b (or as overridden). */
function probe(spec: Partial<Ip6Spec> & { n?: number } = {}): Uint8Array {
  const src = spec.src ?? A, dst = spec.dst ?? B;
  return ip6({
    src,
    dst,
    proto: NH.UDP,
    payload: udp6(src, dst, 40000, 33434, spec.n ?? 32),
    ...spec,
  });
}

interface ForwardCase {
  name: string;
  lab?: RouterLab6Options;
  setup?: (lab: RouterLab6) => void;
  packet: () => Uint8Array;
  /** What a gets back (ICMPv6 other than NDP/MLD). */
  expect: Icmp6Expect[];
  /** Frames b receives (other than NDP/MLD). */
  forwarded: number;
  counters: Record<string, number>;
}

const CASES: ForwardCase[] = [
  {
    name: "a control row: a → b is forwarded",
    packet: () => probe(),
    expect: [],
    forwarded: 1,
    counters: { "ipv6.forwarding.packets": 1, "icmpv6.errorsSent": 0 },
  },
  {
    name: "link-local source: Destination Unreachable code 2 (beyond scope)",
    packet: () => probe({ src: ADDR6.aLL }),
    expect: [{ type: T6.DEST_UNREACH, code: 2, dst: ADDR6.aLL }],
    forwarded: 0,
    counters: { "ipv6.forwarding.linkLocalNotForwarded": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "link-local destination: not forwarded",
    packet: () => probe({ dst: ADDR6.bLL }),
    expect: [],
    forwarded: 0,
    counters: { "ipv6.forwarding.linkLocalNotForwarded": 1, "ipv6.forwarding.packets": 0 },
  },
  {
    name: "hop limit 1: Time Exceeded code 0",
    packet: () => probe({ hopLimit: 1 }),
    expect: [{ type: T6.TIME_EXCEEDED, code: 0, rest: 0, src: R, dst: A }],
    forwarded: 0,
    counters: { "ipv6.forwarding.ttlExceeded": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "hop limit 0: Time Exceeded code 0",
    packet: () => probe({ hopLimit: 0 }),
    expect: [{ type: T6.TIME_EXCEEDED, code: 0 }],
    forwarded: 0,
    counters: { "ipv6.forwarding.ttlExceeded": 1 },
  },
  {
    name: "no route: Destination Unreachable code 0",
    packet: () => probe({ dst: ADDR6.far }),
    expect: [{ type: T6.DEST_UNREACH, code: 0, src: R, dst: A }],
    forwarded: 0,
    counters: { "ipv6.forwarding.noRoute": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "blackhole route: silent",
    setup: (lab) => route6(lab.r, null, "2001:db8:99::/48", null, "blackhole"),
    packet: () => probe({ dst: ADDR6.far }),
    expect: [],
    forwarded: 0,
    counters: { "ipv6.forwarding.blackholeDropped": 1, "icmpv6.errorsSent": 0 },
  },
  {
    name: "unreachable route: Destination Unreachable code 0",
    setup: (lab) => route6(lab.r, null, "2001:db8:99::/48", null, "unreachable"),
    packet: () => probe({ dst: ADDR6.far }),
    expect: [{ type: T6.DEST_UNREACH, code: 0 }],
    forwarded: 0,
    counters: { "ipv6.forwarding.unreachableRouteDropped": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "prohibit route: Destination Unreachable code 1",
    setup: (lab) => route6(lab.r, null, "2001:db8:99::/48", null, "prohibit"),
    packet: () => probe({ dst: ADDR6.far }),
    expect: [{ type: T6.DEST_UNREACH, code: 1 }],
    forwarded: 0,
    counters: { "ipv6.forwarding.prohibitRouteDropped": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "too big for the egress: Packet Too Big with its MTU, never fragmented",
    lab: { wanMtu: 1280 },
    packet: () => probe({ n: 1300 }),
    expect: [{ type: T6.TOO_BIG, code: 0, rest: 1280, src: R, dst: A }],
    forwarded: 0,
    counters: {
      "ipv6.forwarding.packetTooBig": 1,
      "ipv6.fragmentsCreated": 0,
      "icmpv6.errorsSent": 1,
    },
  },
  {
    name: "exactly the egress MTU is forwarded",
    lab: { wanMtu: 1280 },
    packet: () => probe({ n: 1280 - 48 }),
    expect: [],
    forwarded: 1,
    counters: { "ipv6.forwarding.packets": 1 },
  },
  {
    name: "Hop-by-Hop option with action 10 en route: PP code 2 from the router",
    packet: () => probe({ ext: [hbh(...unknownOption(2))] }),
    expect: [{ type: T6.PARAM_PROBLEM, code: 2, rest: 42, src: R, dst: A }],
    forwarded: 0,
    counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "Hop-by-Hop option with action 01 en route: dropped silently",
    packet: () => probe({ ext: [hbh(...unknownOption(1))] }),
    expect: [],
    forwarded: 0,
    counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 0 },
  },
  {
    name: "Hop-by-Hop option with action 00 en route: forwarded",
    packet: () => probe({ ext: [hbh(...unknownOption(0))] }),
    expect: [],
    forwarded: 1,
    counters: { "ipv6.forwarding.packets": 1 },
  },
  {
    name: "a Neighbor Solicitation for another node is never forwarded",
    packet: () =>
      ip6({
        src: A,
        dst: B,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(A, B, B, { slla: rawMac(0x0a) }),
      }),
    expect: [],
    forwarded: 0,
    counters: { "ipv6.forwarding.packets": 0 },
  },
  {
    name: "an MLD report to a unicast address is never forwarded",
    packet: () =>
      ip6({
        src: A,
        dst: B,
        proto: NH.ICMP6,
        hopLimit: 1,
        ext: [hbh(5, 2, 0, 0)],
        payload: new Uint8Array([143, 0, 0, 0, 0, 0, 0, 0]),
      }),
    expect: [],
    forwarded: 0,
    counters: { "ipv6.forwarding.packets": 0, "icmpv6.errorsSent": 0 },
  },
];

Deno.test("IPv6 forwarding: decisions and errors", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const lab = routerLab6(c.lab);
      c.setup?.(lab);
      const d = watch(lab.r);
      lab.a.send(c.packet());
      lab.clock.advance(10);
      const got = lab.a.icmp6NoControl();
      assert.equal(
        got.length,
        c.expect.length,
        `ICMPv6 back to a: ${
          JSON.stringify(got.map((f) => [readIcmp6(f).type, readIcmp6(f).code]))
        }`,
      );
      c.expect.forEach((e, i) => expectIcmp6(got[i]!, e, `message ${i}`));
      assert.equal(lab.b.data().length, c.forwarded, "frames forwarded to b");
      assertDelta(d(), c.counters);
    });
  }
});

Deno.test("IPv6 forwarding: what the forwarded frame looks like", async (t) => {
  await t.step("hop limit decremented by one, Ethernet rewritten, payload untouched", () => {
    const lab = routerLab6();
    const sent = probe({ hopLimit: 7 });
    lab.a.send(sent);
    lab.clock.advance(10);
    const [f] = lab.b.data();
    assert.ok(f !== undefined, "forwarded");
    const ip = readIpv6(f);
    assert.equal(ip.hopLimit, 6);
    assert.equal(formatMac(ip.ethSrc), formatMac(lab.rWan.mac));
    assert.equal(formatMac(ip.ethDst), formatMac(lab.b.mac));
    const expected = sent.slice();
    expected[7] = 6;
    assert.deepEqual(f.subarray(14), expected);
  });
  await t.step("a cold router resolves b with NDP, then forwards the queued packet", () => {
    const lab = routerLab6({ cold: true });
    const d = watch(lab.r);
    lab.a.send(probe());
    lab.clock.advance(10);
    assert.equal(lab.b.nsAnswered, 1);
    assert.equal(lab.b.data().length, 1);
    assertDelta(d(), {
      "ipv6.forwarding.packets": 1,
      "neigh6.wan0.packetsQueued": 1,
      "neigh6.wan0.queuedPacketsSent": 1,
    });
  });
  await t.step("the Time Exceeded quotes the packet as received", () => {
    const lab = routerLab6();
    const sent = probe({ hopLimit: 1 });
    lab.a.send(sent);
    lab.clock.advance(10);
    const m = expectIcmp6(lab.a.icmp6NoControl()[0]!, { type: T6.TIME_EXCEEDED });
    assert.deepEqual(m.body, sent);
    assert.equal(m.ip.hopLimit, 64);
  });
});

Deno.test("IPv6 forwarding: Redirects (RFC 4861 §8.2)", async (t) => {
  const cases = [
    {
      name: "to an on-link destination: Redirect with target = destination, packet still forwarded",
      sendRedirects: true,
      dst: ADDR6.c,
      route: null as string | null,
      target: ADDR6.c,
      warm: true,
    },
    {
      name: "via a better router on the same link: Redirect with target = that router",
      sendRedirects: true,
      dst: "2001:db8:55::1",
      route: "fe80::c",
      target: "fe80::c",
      warm: false,
    },
    {
      name: "sendRedirects=false: no Redirect, packet still forwarded",
      sendRedirects: false,
      dst: ADDR6.c,
      route: null,
      target: null,
      warm: false,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const lab = routerLab6({ sendRedirects: c.sendRedirects });
      const host = new RawHost6(lab.lan.port("c"), rawMac(0x0c), [ADDR6.c, "fe80::c"]);
      if (c.route !== null) route6(lab.r, lab.rLan, "2001:db8:55::/48", c.route);
      if (c.warm) {
        // c solicits r with its link-layer address: r knows c's MAC.
        const sn = "ff02::1:ff00:1";
        host.sendMulticast(
          ip6({
            src: ADDR6.c,
            dst: sn,
            proto: NH.ICMP6,
            hopLimit: 255,
            payload: ns(ADDR6.c, sn, R, { slla: host.mac }),
          }),
          sn,
        );
        lab.clock.advance(1);
      }
      const d = watch(lab.r);
      const sent = probe({ dst: c.dst });
      lab.a.send(sent);
      lab.clock.advance(10);
      // The packet reaches c (it leaves by lan0 again).
      const atC = host.data().filter((f) => macEqual(f, host.mac, 0, 0));
      assert.equal(atC.length, 1, "forwarded to c");
      assert.equal(readIpv6(atC[0]!).hopLimit, 63);
      const redirects = lab.a.icmp6(T6.REDIRECT);
      if (c.target === null) {
        assert.equal(redirects.length, 0);
        assertDelta(d(), { "ndp.redirectsSent": 0, "ipv6.forwarding.packets": 1 });
        return;
      }
      assert.equal(redirects.length, 1);
      const m = expectIcmp6(redirects[0]!, {
        type: T6.REDIRECT,
        code: 0,
        src: lab.rLanLL,
        dst: A,
        hopLimit: 255,
      });
      assert.equal(readIpv6(redirects[0]!).src, lab.rLanLL);
      // Body: target (16), destination (16), then options; the Redirected Header quotes our packet.
      const fmt = (b: Uint8Array) => Array.from(b).join(",");
      assert.equal(fmt(m.body.subarray(0, 16)), fmt(parse(c.target)));
      assert.equal(fmt(m.body.subarray(16, 32)), fmt(parse(c.dst)));
      const opts = parseOptions(m.body.subarray(32));
      const rh = opts.find((o) => o.type === 4);
      assert.ok(rh !== undefined, "a Redirected Header option");
      assert.deepEqual(rh.data.subarray(6, 6 + sent.length), sent);
      // §8.2: the target's link-layer address when r knows it.
      const tlla = opts.find((o) => o.type === 2);
      if (c.warm) {
        assert.ok(tlla !== undefined, "a Target Link-Layer Address option");
        assert.equal(formatMac(tlla.data), formatMac(host.mac));
      } else {
        assert.equal(tlla, undefined, "no Target Link-Layer Address option while unresolved");
      }
      assertDelta(d(), { "ndp.redirectsSent": 1, "ipv6.forwarding.packets": 1 });
    });
  }
});

function parse(a: string): Uint8Array {
  const b = new Uint8Array(16);
  const ip = ip6({ src: a, dst: a, proto: 59, payload: new Uint8Array(0) });
  b.set(ip.subarray(8, 24));
  return b;
}

function parseOptions(b: Uint8Array): { type: number; data: Uint8Array }[] {
  const out: { type: number; data: Uint8Array }[] = [];
  for (let p = 0; p + 2 <= b.length && b[p + 1]! > 0;) {
    const len = b[p + 1]! * 8;
    out.push({ type: b[p]!, data: b.subarray(p + 2, p + len) });
    p += len;
  }
  return out;
}

Deno.test("IPv6 forwarding: echo through the router", () => {
  const lab = routerLab6();
  lab.a.send(ip6({ src: A, dst: B, proto: NH.ICMP6, payload: echo6(A, B) }));
  lab.clock.advance(10);
  const [f] = lab.b.data();
  expectIcmp6(f!, { type: T6.ECHO_REQUEST, src: A, dst: B, hopLimit: 63 });
});
