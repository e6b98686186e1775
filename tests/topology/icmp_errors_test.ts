/**
 * ICMP error rules (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7) and the ICMP error
 * rate limit (RFC 1812 §4.3.2.8), seen from the wire of a router.
 */
import assert from "node:assert/strict";
import { ipv4MulticastMac } from "../../stack/wire/mod.ts";
import { ADDR, assertDelta, type RawHost, type RouterLab, routerLab, watch } from "./_topology.ts";
import {
  echoRequest,
  expectIcmp,
  icmp,
  ipv4,
  type Ipv4Spec,
  pattern,
  PROTO,
  readIpv4,
  udp,
} from "./_packets.ts";

const BCAST = new Uint8Array([255, 255, 255, 255, 255, 255]);
/** An IP protocol number nothing handles (RFC 3692 experimentation). */
const UNKNOWN_PROTO = 253;

interface SuppressCase {
  name: string;
  /** The packet a sends. */
  packet: Partial<Ipv4Spec>;
  /** Ethernet destination; r's LAN MAC when absent. */
  dstMac?: (lab: RouterLab) => Uint8Array;
  /** Counter deltas on r. */
  counters: Record<string, number>;
}

const NO_ERROR: SuppressCase[] = [
  {
    name: "no error about an ICMP error (Destination Unreachable with TTL 1)",
    packet: { protocol: PROTO.ICMP, payload: icmp(3, 1, 0, pattern(28)), ttl: 1 },
    counters: {
      "ipv4.forwarding.ttlExceeded": 1,
      "icmpv4.errorsSuppressed": 1,
      "icmpv4.errorsSent": 0,
    },
  },
  {
    name: "no error about an ICMP error (Time Exceeded with TTL 1)",
    packet: { protocol: PROTO.ICMP, payload: icmp(11, 0, 0, pattern(28)), ttl: 1 },
    counters: {
      "ipv4.forwarding.ttlExceeded": 1,
      "icmpv4.errorsSuppressed": 1,
      "icmpv4.errorsSent": 0,
    },
  },
  {
    name: "no error about a packet to the limited broadcast address",
    packet: { dst: "255.255.255.255", protocol: UNKNOWN_PROTO, payload: pattern(8) },
    dstMac: () => BCAST,
    counters: { "ipv4.unknownProtocolReceived": 1, "icmpv4.errorsSuppressed": 1 },
  },
  {
    name: "no error about a packet to a directed broadcast address",
    packet: { dst: "192.0.2.255", protocol: UNKNOWN_PROTO, payload: pattern(8) },
    dstMac: () => BCAST,
    counters: { "ipv4.unknownProtocolReceived": 1, "icmpv4.errorsSuppressed": 1 },
  },
  {
    name: "no error about a packet to a multicast group (all-hosts)",
    packet: { dst: "224.0.0.1", protocol: UNKNOWN_PROTO, payload: pattern(8) },
    dstMac: () => ipv4MulticastMac(0xe0000001),
    counters: { "ipv4.unknownProtocolReceived": 1, "icmpv4.errorsSuppressed": 1 },
  },
  {
    name: "no error about a unicast packet received as a link-layer broadcast",
    packet: { dst: ADDR.rLan, protocol: UNKNOWN_PROTO, payload: pattern(8) },
    dstMac: () => BCAST,
    counters: { "ipv4.unknownProtocolReceived": 1, "icmpv4.errorsSuppressed": 1 },
  },
  {
    // RFC 1812 §5.3.4: a router does not forward what it received as a
    // link-layer broadcast; so no Time Exceeded either.
    name: "a link-layer broadcast with a unicast IP destination is not forwarded",
    packet: { ttl: 1 },
    dstMac: () => BCAST,
    counters: {
      "ipv4.notForUsDropped": 1,
      "ipv4.forwarding.ttlExceeded": 0,
      "icmpv4.errorsSent": 0,
    },
  },
  {
    name: "no error about a non-initial fragment",
    packet: { ttl: 1, mf: true, fragOffset: 8 },
    counters: {
      "ipv4.forwarding.ttlExceeded": 1,
      "icmpv4.errorsSuppressed": 1,
      "icmpv4.errorsSent": 0,
    },
  },
  {
    name: "no error about a packet from 0.0.0.0 (delivered locally)",
    packet: { src: "0.0.0.0", dst: ADDR.rLan, protocol: UNKNOWN_PROTO, payload: pattern(8) },
    counters: { "ipv4.unknownProtocolReceived": 1, "icmpv4.errorsSuppressed": 1 },
  },
  {
    // RFC 1812 §5.3.7: a router SHOULD NOT forward a packet from network 0.
    name: "a packet from 0.0.0.0 is not forwarded and gets no error",
    packet: { src: "0.0.0.0", ttl: 1 },
    counters: { "ipv4.invalidAddressesReceived": 1, "icmpv4.errorsSent": 0 },
  },
  {
    name: "no error about a packet from 255.255.255.255 (a martian)",
    packet: { src: "255.255.255.255", ttl: 1 },
    counters: { "ipv4.invalidAddressesReceived": 1, "icmpv4.errorsSent": 0 },
  },
  {
    name: "no error about a packet from a multicast source (a martian)",
    packet: { src: "224.0.0.5", ttl: 1 },
    counters: { "ipv4.invalidAddressesReceived": 1, "icmpv4.errorsSent": 0 },
  },
  {
    name: "no error about a packet from a class E source (a martian)",
    packet: { src: "240.0.0.1", ttl: 1 },
    counters: { "ipv4.invalidAddressesReceived": 1, "icmpv4.errorsSent": 0 },
  },
];

/** The UDP probe a sends by default: a → b, TTL 64, 32 bytes of payload. */
function probe(spec: Partial<Ipv4Spec> = {}): Uint8Array {
  const src = spec.src ?? ADDR.a;
  const dst = spec.dst ?? ADDR.b;
  return ipv4({
    src,
    dst,
    protocol: PROTO.UDP,
    payload: udp(src, dst, 40000, 33434, 32),
    ...spec,
  });
}

Deno.test("ICMP errors are not sent where RFC 1122 §3.2.2 forbids them", async (t) => {
  for (const c of NO_ERROR) {
    await t.step(c.name, () => {
      const lab = routerLab();
      const d = watch(lab.r);
      lab.a.sendIp(probe(c.packet), { dstMac: c.dstMac?.(lab) });
      lab.clock.advance(10);
      assert.deepEqual(lab.a.icmp().map((f) => readIpv4(f, 14).src), [], "no ICMP back to a");
      assert.equal(lab.b.ipv4().length, 0, "nothing forwarded to b");
      assertDelta(d(), c.counters);
    });
  }
});

Deno.test("ICMP errors: quote size and source address", async (t) => {
  await t.step("a control row: an echo request with TTL 1 gets Time Exceeded", () => {
    const lab = routerLab();
    lab.a.sendIp(probe({ protocol: PROTO.ICMP, payload: echoRequest(7, 1, 56), ttl: 1 }));
    lab.clock.advance(10);
    const [f] = lab.a.icmp();
    assert.ok(f !== undefined, "an ICMP error arrived");
    const m = expectIcmp(f, { type: 11, code: 0, rest: 0, src: ADDR.rLan, dst: ADDR.a });
    // Linux sends errors with TTL 64 and TOS 0xc0 (internetwork control).
    assert.equal(m.ip.ttl, 64);
    assert.equal(m.ip.tos, 0xc0);
    assert.equal(m.ip.totalLength, 20 + 8 + 20 + 64);
  });

  await t.step("the quote is as much of a 1400-byte packet as fits in 576 bytes", () => {
    const lab = routerLab();
    const orig = ipv4({
      src: ADDR.a,
      dst: ADDR.b,
      protocol: PROTO.UDP,
      ttl: 1,
      id: 0x4242,
      payload: udp(ADDR.a, ADDR.b, 40000, 33434, 1400 - 28),
    });
    assert.equal(orig.length, 1400);
    lab.a.sendIp(orig);
    lab.clock.advance(10);
    const [f] = lab.a.icmp(11);
    assert.ok(f !== undefined);
    const m = expectIcmp(f, { type: 11, code: 0 });
    assert.equal(m.ip.totalLength, 576, "RFC 1812 §4.3.2.3: at most 576 bytes");
    assert.equal(m.body.length, 548);
    assert.deepEqual(m.body, orig.subarray(0, 548), "the quote is the original's first 548 bytes");
  });

  await t.step("Time Exceeded comes from the router's ingress address (traceroute hop)", () => {
    const lab = routerLab();
    lab.a.sendIp(probe({ ttl: 1 }));
    lab.b.sendIp(probe({ src: ADDR.b, dst: ADDR.a, ttl: 1 }));
    lab.clock.advance(10);
    expectIcmp(lab.a.icmp(11)[0]!, { type: 11, src: ADDR.rLan, dst: ADDR.a });
    expectIcmp(lab.b.icmp(11)[0]!, { type: 11, src: ADDR.rWan, dst: ADDR.b });
  });

  await t.step("Port Unreachable about a packet to the router comes from its destination", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    lab.a.sendIp(probe({ dst: ADDR.rWan }));
    lab.clock.advance(10);
    const m = expectIcmp(lab.a.icmp(3)[0]!, { type: 3, code: 3, src: ADDR.rWan, dst: ADDR.a });
    assert.equal(readIpv4(m.body).dst, ADDR.rWan, "the quote is the original");
    assertDelta(d(), { "udp.unknownPortReceived": 1, "icmpv4.errorsSent": 1 });
  });
});

/** Send `n` UDP packets with TTL 1 from a, all in the same millisecond. */
function burst(lab: RouterLab, n: number, from: RawHost = lab.a): void {
  for (let i = 0; i < n; i++) {
    from.sendIp(
      ipv4({
        src: ADDR.a,
        dst: ADDR.b,
        protocol: PROTO.UDP,
        ttl: 1,
        id: i,
        payload: udp(ADDR.a, ADDR.b, 40000 + i, 33434, 8),
      }),
    );
  }
  lab.clock.advance(0);
  lab.clock.advance(0);
}

Deno.test("ICMP error rate limit (token bucket)", async (t) => {
  await t.step("200 TTL-expiring packets in one ms give burst (50) errors", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    burst(lab, 200);
    assert.equal(lab.a.icmp(11).length, 50);
    assertDelta(d(), {
      "ipv4.forwarding.ttlExceeded": 200,
      "icmpv4.errorsSent": 50,
      "icmpv4.errorsRateLimited": 150,
    });
  });

  await t.step("after 1 s at 1000/s the bucket is full again (and no fuller)", () => {
    const lab = routerLab();
    burst(lab, 200);
    lab.a.clear();
    lab.clock.advance(1000);
    const d = watch(lab.r);
    burst(lab, 200);
    assert.equal(lab.a.icmp(11).length, 50);
    assertDelta(d(), { "icmpv4.errorsSent": 50, "icmpv4.errorsRateLimited": 150 });
  });

  await t.step("10 ms at 1000/s give 10 tokens", () => {
    const lab = routerLab();
    burst(lab, 60);
    lab.a.clear();
    lab.clock.advance(10);
    burst(lab, 60);
    assert.equal(lab.a.icmp(11).length, 10);
  });

  await t.step("Stack option icmpRateLimit { rate: 10, burst: 5 } is respected", () => {
    const lab = routerLab({ stack: { icmpRateLimit: { rate: 10, burst: 5 } } });
    const d = watch(lab.r);
    burst(lab, 20);
    assert.equal(lab.a.icmp(11).length, 5, "burst");
    lab.clock.advance(100); // one token at 10/s
    burst(lab, 20);
    assert.equal(lab.a.icmp(11).length, 6, "one more after 100 ms");
    lab.clock.advance(10_000);
    burst(lab, 20);
    assert.equal(lab.a.icmp(11).length, 11, "never more than burst at once");
    assertDelta(d(), { "icmpv4.errorsSent": 11, "icmpv4.errorsRateLimited": 49 });
  });

  await t.step("errors suppressed by the rules do not use tokens", () => {
    const lab = routerLab({ stack: { icmpRateLimit: { rate: 1, burst: 2 } } });
    for (let i = 0; i < 10; i++) {
      lab.a.sendIp(probe({ ttl: 1, mf: true, fragOffset: 8, id: i }));
    }
    lab.clock.advance(0);
    burst(lab, 2);
    assert.equal(lab.a.icmp(11).length, 2);
  });
});

Deno.test("an error about an unknown protocol to the router is Protocol Unreachable", () => {
  const lab = routerLab();
  lab.a.sendIp(
    ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: UNKNOWN_PROTO, payload: pattern(8) }),
  );
  lab.clock.advance(10);
  expectIcmp(lab.a.icmp(3)[0]!, { type: 3, code: 2, src: ADDR.rLan, dst: ADDR.a });
});
