/**
 * Traffic of the stack itself over IPv6: fragmentation of our own packets
 * (RFC 8200 §4.5), Packet Too Big and the path MTU cache (RFC 8201),
 * echo (RFC 4443 §4), the ICMPv6 error rules of RFC 4443 §2.4 (e) and the
 * rate limit (§2.4 (f)), and source address selection (RFC 6724).
 */
import assert from "node:assert/strict";
import { ManualClock, ping, SeededRandom, Stack } from "../../stack/mod.ts";
import type { StackOptions } from "../../stack/mod.ts";
import { ipv6MulticastMac, parseIpv6 } from "../../stack/wire/mod.ts";
import { assertDelta, Hub, rawMac, settle, watch } from "./_topology.ts";
import {
  ADDR6,
  destOpts,
  echo6,
  expectIcmp6,
  hostLab6,
  icmp6,
  ip6,
  NH,
  pattern6,
  RawHost6,
  readIpv6,
  T6,
  udp6,
  unknownOption,
} from "./_topology6.ts";

const H = "2001:db8:1::10";
const X = "2001:db8:1::20";
const FAR = ADDR6.far;

/** A stack host h (2001:db8:1::10, DAD off) and a raw host x (2001:db8:1::20, fe80::e) on one hub. */
function pairLab(opts: Omit<StackOptions, "clock" | "random" | "hostname"> = {}) {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const h = new Stack({
    clock,
    random: new SeededRandom(9),
    hostname: "h",
    ...opts,
    ipv6: { dadTransmits: 0, ...opts.ipv6 },
  });
  const nic = h.addNic(hub.port("h"), { name: "eth0", ipv6: true });
  h.ipv6.addAddress(nic, parseIpv6(H), 64);
  const x = new RawHost6(hub.port("x"), rawMac(0x0e), [X, "fe80::e"]);
  x.gatewayMac = nic.mac;
  clock.advance(2_000);
  x.clear();
  return { clock, hub, h, nic, x };
}

Deno.test("IPv6 local traffic: fragmentation of our own packets", async (t) => {
  await t.step(
    "ping -s 4000 across 1280-byte links: fragmented, reassembled, answered",
    async () => {
      const lab = hostLab6({ lanMtu: 1280, wanMtu: 1280 });
      const since = lab.lan.log.length;
      const d1 = watch(lab.h1), d2 = watch(lab.h2);
      const res = await settle(
        lab.clock,
        ping(lab.h1, { dst: parseIpv6(ADDR6.b), count: 3, size: 4000 }),
      );
      assert.equal(res.received, 3);
      assert.equal(res.replies[0]!.bytes, 4008);
      const frags = lab.lan.frames("h1", since).filter((f) =>
        readIpv6(f.bytes).ext.includes(NH.FRAG)
      );
      assert.equal(
        frags.length,
        3 * 4,
        "4 fragments per request (4048 bytes over 1232-byte pieces)",
      );
      for (const f of frags) assert.ok(f.bytes.length - 14 <= 1280, "each fragment fits the MTU");
      assertDelta(d1(), {
        "ipv6.packetsFragmented": 3,
        "ipv6.fragmentsCreated": 12,
        "ipv6.packetsReassembled": 3,
      });
      assertDelta(d2(), {
        "ipv6.packetsReassembled": 3,
        "icmpv6.echoRequestsAnswered": 3,
        "ipv6.packetsFragmented": 3,
      });
    },
  );
  await t.step(
    "a 1500 link then a 1280 link: Packet Too Big, then the path MTU is used",
    async () => {
      const lab = hostLab6({ wanMtu: 1280 });
      const d = watch(lab.h1);
      const res = await settle(
        lab.clock,
        ping(lab.h1, { dst: parseIpv6(ADDR6.b), count: 3, size: 1400 }),
      );
      assert.deepEqual(res.errors.map((e) => [e.type, e.mtu]), [[T6.TOO_BIG, 1280]]);
      assert.equal(res.received, 2);
      assert.equal(lab.h1.ipv6.pathMtu(lab.h1nic, parseIpv6(ADDR6.b), 0), 1280);
      assertDelta(d(), { "icmpv6.errorsReceived": 1, "ipv6.packetsFragmented": 2 });
    },
  );
});

/** A Packet Too Big from x to h about a packet from `src` (h's own by default) to `dst`. */
function ptb(mtu: number, dst = FAR, src = H): Uint8Array {
  const quoted = ip6({ src, dst, proto: NH.UDP, payload: udp6(src, dst, 1, 2, 1400) });
  return ip6({
    src: X,
    dst: H,
    proto: NH.ICMP6,
    payload: icmp6(X, H, T6.TOO_BIG, 0, mtu, quoted.subarray(0, 1232)),
  });
}

Deno.test("IPv6 local traffic: path MTU (RFC 8201)", async (t) => {
  const cases = [
    {
      name: "a Packet Too Big of 1400 lowers the path MTU to 1400",
      mtu: 1400,
      expect: 1400,
      ignored: 0,
    },
    {
      // RFC 8201 §4: "a node ... MUST discard" a Packet Too Big below 1280.
      name: "a Packet Too Big below 1280 is discarded: the path MTU stays 1500 (RFC 8201 §4)",
      mtu: 600,
      expect: 1500,
      ignored: 1,
    },
    {
      // RFC 5927 §4.2: check the quoted packet; one h never sent teaches nothing.
      name: "a Packet Too Big about a packet h did not send is discarded (RFC 5927)",
      mtu: 1300,
      src: "2001:db8:1::99",
      expect: 1500,
      ignored: 1,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const l = pairLab();
      const d = watch(l.h);
      l.x.send(ptb(c.mtu, FAR, c.src));
      l.clock.advance(1);
      assert.equal(l.h.ipv6.pathMtu(l.nic, parseIpv6(FAR), 0), c.expect);
      // One counter each: an ignored one is no error received as well.
      assertDelta(d(), {
        "icmpv6.errorsReceived": 1 - c.ignored,
        "icmpv6.packetTooBigIgnored": c.ignored,
      });
    });
  }
  await t.step("the learned path MTU ages out after 10 minutes", () => {
    const l = pairLab();
    l.x.send(ptb(1300));
    l.clock.advance(1);
    l.clock.advance(10 * 60_000 - 2);
    assert.equal(l.h.ipv6.pathMtu(l.nic, parseIpv6(FAR), 0), 1300);
    l.clock.advance(2);
    assert.equal(l.h.ipv6.pathMtu(l.nic, parseIpv6(FAR), 0), 1500);
  });
});

Deno.test("IPv6 local traffic: echo (RFC 4443 §4)", async (t) => {
  await t.step("an echo request is answered with its identifier, sequence and data", () => {
    const l = pairLab();
    const req = echo6(X, H, 0xbeef, 7, 100);
    l.x.send(ip6({ src: X, dst: H, proto: NH.ICMP6, payload: req }));
    l.clock.advance(10);
    const [f] = l.x.icmp6NoControl();
    const m = expectIcmp6(f!, {
      type: T6.ECHO_REPLY,
      code: 0,
      rest: ((0xbeef << 16) | 7) >>> 0,
      src: H,
      dst: X,
      hopLimit: 64,
    });
    assert.deepEqual(m.body, req.subarray(8));
  });
  await t.step("an echo request to ff02::1 is answered from a unicast address", () => {
    const l = pairLab();
    l.x.sendMulticast(
      ip6({
        src: "fe80::e",
        dst: "ff02::1",
        proto: NH.ICMP6,
        payload: echo6("fe80::e", "ff02::1"),
      }),
      "ff02::1",
    );
    l.clock.advance(10);
    const [f] = l.x.icmp6NoControl();
    const m = expectIcmp6(f!, { type: T6.ECHO_REPLY, dst: "fe80::e" });
    assert.ok(m.ip.src.startsWith("fe80::"), `link-local source, got ${m.ip.src}`);
  });
});

interface RuleCase {
  name: string;
  packet: () => Uint8Array;
  dstMac?: Uint8Array;
  sent: number;
  counters: Record<string, number>;
}

const UNKNOWN_NH = 253;

const RULES: RuleCase[] = [
  {
    name: "control: an unknown Next Header gets a Parameter Problem",
    packet: () => ip6({ src: X, dst: H, proto: UNKNOWN_NH, payload: pattern6(8) }),
    sent: 1,
    counters: { "icmpv6.errorsSent": 1 },
  },
  {
    name: "no error about an ICMPv6 error (e.1)",
    packet: () =>
      ip6({
        src: X,
        dst: H,
        proto: NH.ICMP6,
        ext: [destOpts(...unknownOption(2))],
        payload: icmp6(X, H, T6.DEST_UNREACH, 0, 0, pattern6(48)),
      }),
    sent: 0,
    counters: { "icmpv6.errorsSuppressed": 1, "icmpv6.errorsSent": 0 },
  },
  {
    name: "no error about a Redirect (e.2)",
    packet: () =>
      ip6({
        src: X,
        dst: H,
        proto: NH.ICMP6,
        hopLimit: 255,
        ext: [destOpts(...unknownOption(3))],
        payload: icmp6(X, H, T6.REDIRECT, 0, 0, pattern6(32)),
      }),
    sent: 0,
    counters: { "icmpv6.errorsSuppressed": 1 },
  },
  {
    name: "an echo request with a bad option still gets its Parameter Problem (not an error)",
    packet: () =>
      ip6({
        src: X,
        dst: H,
        proto: NH.ICMP6,
        ext: [destOpts(...unknownOption(2))],
        payload: echo6(X, H),
      }),
    sent: 1,
    counters: { "icmpv6.errorsSent": 1 },
  },
  {
    name: "no error about a packet to a multicast group (e.3): UDP to ff02::1, closed port",
    packet: () => ip6({ src: X, dst: "ff02::1", proto: NH.UDP, payload: udp6(X, "ff02::1", 1, 9) }),
    dstMac: ipv6MulticastMac(parseIpv6("ff02::1")),
    sent: 0,
    counters: { "udp.unknownPortReceived": 1, "icmpv6.errorsSent": 0 },
  },
  {
    name: "no error about a packet to a multicast group (e.3): unknown Next Header to ff02::1",
    packet: () => ip6({ src: X, dst: "ff02::1", proto: UNKNOWN_NH, payload: pattern6(8) }),
    dstMac: ipv6MulticastMac(parseIpv6("ff02::1")),
    sent: 0,
    counters: { "ipv6.unknownProtocolReceived": 1, "icmpv6.errorsSuppressed": 1 },
  },
  {
    name: "no error about a unicast packet sent as a link-layer multicast (e.4)",
    packet: () => ip6({ src: X, dst: H, proto: NH.UDP, payload: udp6(X, H, 1, 9) }),
    dstMac: ipv6MulticastMac(parseIpv6("ff02::1")),
    sent: 0,
    counters: { "icmpv6.errorsSuppressed": 1 },
  },
  {
    name: "no error to an unspecified source (e.6)",
    packet: () => ip6({ src: "::", dst: H, proto: UNKNOWN_NH, payload: pattern6(8) }),
    sent: 0,
    counters: { "icmpv6.errorsSent": 0 },
  },
];

Deno.test("ICMPv6 error rules (RFC 4443 §2.4 (e))", async (t) => {
  for (const c of RULES) {
    await t.step(c.name, () => {
      const l = pairLab();
      const d = watch(l.h);
      l.x.send(c.packet(), { dstMac: c.dstMac });
      l.clock.advance(10);
      const errs = l.x.icmp6NoControl().filter((f) => readIpv6(f).l4[0]! < 128);
      assert.equal(errs.length, c.sent);
      assertDelta(d(), c.counters);
    });
  }
});

Deno.test("ICMPv6 error rate limit (RFC 4443 §2.4 (f))", () => {
  const l = pairLab({ icmpRateLimit: { rate: 1, burst: 2 } });
  const d = watch(l.h);
  const send = () => l.x.send(ip6({ src: X, dst: H, proto: NH.UDP, payload: udp6(X, H, 1, 9) }));
  for (let i = 0; i < 5; i++) send();
  l.clock.advance(10);
  assert.equal(l.x.icmp6(T6.DEST_UNREACH).length, 2, "the burst");
  assertDelta(d(), { "icmpv6.errorsSent": 2, "icmpv6.errorsRateLimited": 3 });
  l.clock.advance(1_000);
  send();
  l.clock.advance(10);
  assert.equal(l.x.icmp6(T6.DEST_UNREACH).length, 3, "one more token a second later");
});

Deno.test("Source address selection through the stack (RFC 6724)", async (t) => {
  /** The source of the first echo request h sends to `dst`. */
  async function sourceFor(
    l: ReturnType<typeof pairLab>,
    dst: string,
    nic?: string,
  ): Promise<string> {
    await settle(l.clock, ping(l.h, { dst: parseIpv6(dst), nic, count: 1, timeoutMs: 100 }));
    const f = l.hub.frames("h").find((x) => readIpv6(x.bytes).l4[0] === T6.ECHO_REQUEST);
    assert.ok(f !== undefined, "an echo request went out");
    return readIpv6(f.bytes).src;
  }
  await t.step("to a global destination: the global address", async () => {
    const l = pairLab();
    assert.equal(await sourceFor(l, X), H);
  });
  await t.step("to a link-local destination: the link-local address", async () => {
    const l = pairLab();
    const src = await sourceFor(l, "fe80::e", "eth0");
    assert.ok(src.startsWith("fe80::"), src);
  });
  await t.step("a deprecated address is not chosen when a preferred one exists", async () => {
    const l = pairLab();
    const dep = l.h.ipv6.addAddress(l.nic, parseIpv6("2001:db8:1::1f"), 64, { preferredUntil: 0 });
    assert.equal(dep.state, "deprecated");
    assert.equal(await sourceFor(l, X), H);
  });
  await t.step(
    "a deprecated address is still used when it is the only one of its scope",
    async () => {
      const l = pairLab();
      l.h.ipv6.removeAddress(l.nic, parseIpv6(H));
      l.h.ipv6.addAddress(l.nic, parseIpv6("2001:db8:1::1f"), 64, { preferredUntil: 0 });
      assert.equal(await sourceFor(l, X), "2001:db8:1::1f");
    },
  );
});
