/**
 * Where tapir differed from the kernel on the wire (issue #16, items 1,
 * 3–9, 13 and 14), each pinned by a packet: Subnet-Router anycast, Fragment
 * Identifications, Hop-by-Hop
 * after a Fragment header, the IPv6 version nibble, IPv4 source routes,
 * flow labels, echo reply options, option padding and counts, IPv6 neighbor
 * GC, and ARP drops that moved no counter.
 */
import assert from "node:assert/strict";
import { ADDR, assertDelta, routerLab, watch } from "./_topology.ts";
import {
  ADDR6,
  destOpts,
  echo6,
  expectIcmp6,
  frag,
  hbh,
  icmp6,
  ip6,
  NH,
  ns,
  readIcmp6,
  readIpv6,
  routerLab6,
  T6,
  udp6,
} from "./_topology6.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { arp, echoRequest, expectIcmp, ipv4, PROTO } from "./_packets.ts";

/** An echo request from a to `dst` (r's LAN address by default), with extension headers. */
function echoFromA(ext: ReturnType<typeof frag>[] = [], dst: string = ADDR6.rLan): Uint8Array {
  return ip6({ src: ADDR6.a, dst, proto: NH.ICMP6, payload: echo6(ADDR6.a, dst, 7, 1, 16), ext });
}

Deno.test("IPv6: Hop-by-Hop named by a Fragment header is Parameter Problem code 1 (RFC 8200 §4.1)", async (t) => {
  for (const [name, more] of [["an atomic fragment", false], ["a first fragment", true]] as const) {
    await t.step(name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      const since = lab.a.received.length;
      lab.a.send(echoFromA([frag(0, more, 99), hbh()]));
      lab.clock.advance(1);
      const errs = lab.a.icmp6NoControl(since);
      assert.equal(errs.length, 1, "one error, no echo reply");
      // The pointer: the Fragment header's Next Header field, right after the IPv6 header.
      expectIcmp6(errs[0]!, { type: T6.PARAM_PROBLEM, code: 1, rest: 40 });
      assertDelta(d(), { "ipv6.unknownProtocolReceived": 1, "icmpv6.echoRequestsAnswered": 0 });
    });
  }
});

Deno.test("IPv6: a packet with the IPv6 EtherType and version 4 is malformed (RFC 8200 §3)", () => {
  const lab = routerLab6();
  const d = watch(lab.r);
  const since = lab.a.received.length;
  const p = echoFromA();
  p[0] = 0x40;
  lab.a.send(p);
  lab.clock.advance(1);
  assert.equal(lab.a.icmp6NoControl(since).length, 0, "no echo reply");
  assertDelta(d(), { "ipv6.malformedPacketsReceived": 1, "icmpv6.echoRequestsAnswered": 0 });
});

Deno.test("ARP: drops move a counter (issue #16 item 14)", async (t) => {
  await t.step("an operation other than request or reply: unknownOpDropped, no answer", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const since = lab.a.received.length;
    const bcast = new Uint8Array(6).fill(0xff);
    lab.a.sendArp(3, parseIpv4(ADDR.a), new Uint8Array(6), parseIpv4(ADDR.rLan), bcast);
    lab.clock.advance(1);
    assert.equal(lab.a.received.slice(since).length, 0, "no reply");
    assertDelta(d(), { "arp.unknownOpDropped": 1, "arp.requestsAnswered": 0 });
  });
  await t.step("a sender MAC that is a group address: groupSenderDropped, no answer", () => {
    const lab = routerLab({ cold: true });
    const d = watch(lab.r);
    const since = lab.a.received.length;
    // A request for r from 192.0.2.99 claiming the MAC 01:00:5e:00:00:01.
    const a = arp(
      1,
      new Uint8Array([0x01, 0x00, 0x5e, 0, 0, 1]),
      "192.0.2.99",
      new Uint8Array(6),
      ADDR.rLan,
    );
    lab.a.sendIp(a, { dstMac: new Uint8Array(6).fill(0xff), etherType: 0x0806, pad: true });
    lab.clock.advance(1);
    assert.equal(lab.a.received.slice(since).length, 0, "no reply");
    const n = lab.r.ipv4.nicState(lab.rLan)!.neighbors.entries();
    assert.ok(!n.some((e) => e.key === parseIpv4("192.0.2.99")), "no neighbor entry");
    assertDelta(d(), { "arp.groupSenderDropped": 1, "arp.requestsAnswered": 0 });
  });
});

Deno.test("RA: a hop limit other than 255 moves exactly one counter (ndp.invalidDropped)", () => {
  const lab = routerLab6();
  const d = watch(lab.r);
  const src = "fe80::a";
  lab.a.sendMulticast(
    ip6({
      src,
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 254,
      payload: icmp6(src, "ff02::1", T6.RA, 0, (64 << 24) | 1800, new Uint8Array(8)),
    }),
    "ff02::1",
  );
  lab.clock.advance(1);
  const delta = d();
  assertDelta(delta, { "ndp.invalidDropped": 1 });
  const drops = Object.entries(delta).filter(([k]) => /Dropped|Ignored|invalid/i.test(k));
  assert.deepEqual(drops, [["ndp.invalidDropped", 1]], JSON.stringify(delta));
});

Deno.test("IPv4: a loose source route to tapir with hops left is not answered locally (issue #16 item 6)", () => {
  const lab = routerLab();
  const d = watch(lab.r);
  const since = lab.a.received.length;
  // An echo request for r whose route still names 198.51.100.10 (pointer 4: one hop left).
  lab.a.sendIp(ipv4({
    src: ADDR.a,
    dst: ADDR.rLan,
    protocol: PROTO.ICMP,
    options: [131, 7, 4, 198, 51, 100, 10],
    payload: echoRequest(7, 1, 16),
  }));
  lab.clock.advance(1);
  assert.equal(lab.a.icmp(undefined, since).length, 0, "no echo reply");
  assert.equal(lab.b.ipv4().length, 0, "not forwarded along the route either");
  assertDelta(d(), { "ipv4.sourceRouteDropped": 1, "icmpv4.echoRequestsAnswered": 0 });
});

Deno.test("IPv6 Fragment Identifications are random for each packet, as Linux draws them (RFC 7739; issue #16 item 3)", () => {
  const lab = routerLab6();
  // Drawn for each packet: no counter to read a step from, whatever the
  // destination (frag6 --frag-id-policy: Randomized).
  const ids = Array.from({ length: 200 }, () => lab.r.ipv6.nextFragmentId());
  assert.equal(new Set(ids).size, 200, "no repeats");
  const steps = ids.slice(1).map((id, i) => (id - ids[i]!) >>> 0);
  const small = steps.filter((s) => s < 65_536).length;
  assert.ok(small < 10, `${small} of 199 steps below 65,536: a counter`);
});

Deno.test("IPv4 echo replies carry Record Route with this host in it, and no other option (RFC 1122 §3.2.2.6; issue #16 item 8)", () => {
  const lab = routerLab();
  const since = lab.a.received.length;
  // Record Route with room for 2 (192.0.2.10 recorded by a), then an unknown option 0x9e (copied flag, class 0, 30).
  const rr = [7, 11, 8, 192, 0, 2, 10, 0, 0, 0, 0];
  const unknown = [0x9e, 4, 0xab, 0xcd];
  const payload = echoRequest(7, 1, 16);
  lab.a.sendIp(ipv4({
    src: ADDR.a,
    dst: ADDR.rLan,
    protocol: PROTO.ICMP,
    options: [...rr, 1, ...unknown],
    payload,
  }));
  lab.clock.advance(1);
  const replies = lab.a.icmp(0, since);
  assert.equal(replies.length, 1, "one echo reply");
  const reply = expectIcmp(replies[0]!, { type: 0, code: 0, src: ADDR.rLan });
  // The reply's options: the Record Route alone, now holding r's address too, padded to 12 bytes.
  assert.deepEqual([...reply.ip.header.subarray(20)], [7, 11, 12, 192, 0, 2, 10, 192, 0, 2, 1, 0]);
  assert.deepEqual([...reply.body], [...payload.subarray(8)], "the echo data comes back whole");
});

Deno.test("IPv4 echo replies record this host twice where there is room, as Linux (issue #16 item 8)", async (t) => {
  const reply = (options: number[]) => {
    const lab = routerLab();
    const since = lab.a.received.length;
    lab.a.sendIp(ipv4({
      src: ADDR.a,
      dst: ADDR.rLan,
      protocol: PROTO.ICMP,
      options,
      payload: echoRequest(7, 1, 16),
    }));
    lab.clock.advance(1);
    const replies = lab.a.icmp(0, since);
    assert.equal(replies.length, 1, "one echo reply");
    return [
      ...expectIcmp(replies[0]!, { type: 0, code: 0, src: ADDR.rLan }).ip.header.subarray(20),
    ];
  };
  await t.step(
    "Record Route with room for three: a's address, then r's on receipt and on reply",
    () => {
      const rr = [7, 15, 8, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
      assert.deepEqual(reply(rr), [7, 15, 16, 192, 0, 2, 10, 192, 0, 2, 1, 192, 0, 2, 1, 0]);
    },
  );
  await t.step("Timestamp (timestamps only) with room for two: two entries", () => {
    const ts = [68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const got = reply(ts);
    assert.deepEqual(got.slice(0, 4), [68, 12, 13, 0]);
  });
  await t.step("a full Timestamp counts one overflow, as the kernel counts on receipt only", () => {
    const ts = [68, 8, 9, 0, 0xaa, 0xbb, 0xcc, 0xdd];
    assert.deepEqual(reply(ts), [68, 8, 9, 0x10, 0xaa, 0xbb, 0xcc, 0xdd]);
  });
});

Deno.test("IPv6 option padding and counts as Linux checks them (RFC 4942 §2.1.9.5; issue #16 item 9)", async (t) => {
  const cases: { name: string; opts: number[]; dropped: boolean }[] = [
    { name: "PadN of 4 zero bytes passes", opts: [1, 2, 0, 0], dropped: false },
    { name: "PadN with a non-zero byte is dropped", opts: [1, 2, 0, 7], dropped: true },
    {
      name: "8 bytes of padding in a row are dropped",
      opts: [1, 6, 0, 0, 0, 0, 0, 0],
      dropped: true,
    },
    {
      name: "8 options that are not padding pass",
      opts: Array.from({ length: 8 }, () => [0x1e, 0]).flat(),
      dropped: false,
    },
    {
      name: "9 options that are not padding are dropped",
      opts: Array.from({ length: 9 }, () => [0x1e, 0]).flat(),
      dropped: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      const since = lab.a.received.length;
      lab.a.send(echoFromA([destOpts(...c.opts)]));
      lab.clock.advance(1);
      const replies = lab.a.icmp6(T6.ECHO_REPLY, since).length;
      assert.equal(replies, c.dropped ? 0 : 1);
      assertDelta(d(), { "ipv6.optionsDropped": c.dropped ? 1 : 0 });
    });
  }
});

Deno.test("IPv6 packets tapir originates carry one flow label per flow (RFC 6437 §3; issue #16 item 7)", async () => {
  const lab = routerLab6();
  const label = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset + 14).getUint32(0) & 0xfffff;
  const since = lab.b.received.length;
  const c1 = lab.r.listenDatagram({ hostname: "::", port: 4001, transport: "udp" });
  const c2 = lab.r.listenDatagram({ hostname: "::", port: 4002, transport: "udp" });
  const to = { hostname: ADDR6.b, port: 9, transport: "udp" as const };
  for (const c of [c1, c1, c2]) {
    const sent = c.send(new Uint8Array(8), to);
    lab.clock.advance(1);
    await sent;
  }
  const udp = lab.b.data(since).filter((f) => readIpv6(f).proto === NH.UDP);
  assert.equal(udp.length, 3);
  const [a1, a2, b1] = udp.map(label);
  assert.ok(a1 !== 0, "a label, not 0");
  assert.equal(a2, a1, "one flow, one label");
  assert.notEqual(b1, a1, "another port, another flow");
  // An echo reply is labelled too; NDP keeps 0 (as Linux's ndisc).
  const s2 = lab.a.received.length;
  lab.a.send(
    echoFromA([], ADDR6.rLan),
  );
  lab.a.solicit(ADDR6.rLan);
  lab.clock.advance(1);
  const reply = lab.a.icmp6(T6.ECHO_REPLY, s2)[0]!;
  assert.ok(label(reply) !== 0, "the echo reply has a label");
  const na = lab.a.icmp6(T6.NA, s2)[0]!;
  assert.equal(label(na), 0, "the NA has none");
  c1.close();
  c2.close();
});

Deno.test("IPv6 FAILED neighbor entries are collected on Linux's schedule (issue #16 item 13)", () => {
  const lab = routerLab6();
  const entries = () =>
    lab.r.ipv6.nicState(lab.rWan)!.neighbors.entries().filter((e) => e.state === "FAILED");
  for (let i = 0; i < 20; i++) {
    const dst = `2001:db8:2::${(0x100 + i).toString(16)}`;
    lab.a.send(ip6({ src: ADDR6.a, dst, proto: NH.UDP, payload: udp6(ADDR6.a, dst, 1, 9) }));
  }
  lab.clock.advance(5_000);
  assert.equal(entries().length, 20, "resolution failed for each");
  // gc_stale_time (60 s) after the failure, at the next sweep (every 15 s).
  for (let k = 0; k < 10; k++) lab.clock.advance(10_000);
  assert.equal(entries().length, 0, "collected");
});

Deno.test("IPv6 Subnet-Router anycast (RFC 4291 §2.6.1; issue #16 item 1)", async (t) => {
  const anycast = "2001:db8:1::";
  await t.step(
    "a router answers echo to its subnet's anycast address, from a unicast address",
    () => {
      const lab = routerLab6();
      const since = lab.a.received.length;
      lab.a.send(
        echoFromA([], anycast),
      );
      lab.clock.advance(1);
      const replies = lab.a.icmp6(T6.ECHO_REPLY, since);
      assert.equal(replies.length, 1);
      assert.equal(readIpv6(replies[0]!).src, ADDR6.rLan);
      assert.equal(lab.b.data().length, 0, "not forwarded");
    },
  );
  await t.step("the other subnet's anycast address is ours too: answered, not forwarded", () => {
    const lab = routerLab6();
    const since = lab.a.received.length;
    const wanAnycast = "2001:db8:2::";
    lab.a.send(
      echoFromA([], wanAnycast),
    );
    lab.clock.advance(1);
    assert.equal(lab.a.icmp6(T6.ECHO_REPLY, since).length, 1);
    assert.equal(lab.b.data().length, 0);
  });
  await t.step("NS for it gets an NA without the Override flag (RFC 4861 §7.2.7)", () => {
    const lab = routerLab6();
    const since = lab.a.received.length;
    const sn = "ff02::1:ff00:0";
    lab.a.sendMulticast(
      ip6({
        src: ADDR6.a,
        dst: sn,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(ADDR6.a, sn, anycast, { slla: lab.a.mac }),
      }),
      sn,
    );
    lab.clock.advance(1);
    const nas = lab.a.icmp6(T6.NA, since);
    assert.equal(nas.length, 1);
    const m = readIcmp6(nas[0]!);
    assert.equal(m.rest >>> 29, 0b110, "R=1 S=1 O=0");
  });
  await t.step("a NIC that does not forward has none", () => {
    const lab = routerLab6({ forwarding: false });
    const since = lab.a.received.length;
    lab.a.send(
      echoFromA([], anycast),
    );
    lab.clock.advance(1);
    assert.equal(lab.a.icmp6(T6.ECHO_REPLY, since).length, 0);
  });
});
