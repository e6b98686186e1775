/**
 * Neighbor Discovery through the stack: NS/NA validity (RFC 4861 §7.1),
 * answers (§7.2.4), NUD (§7.3) on the shared neighbor cache, address
 * unreachable (§7.2.2), and Duplicate Address Detection (RFC 4862 §5.4,
 * RFC 7527).
 */
import assert from "node:assert/strict";
import { ManualClock, SeededRandom, Stack } from "../../stack/mod.ts";
import type { Nic, StackOptions } from "../../stack/mod.ts";
import { formatIpv6, formatMac, parseIpv6 } from "../../stack/wire/mod.ts";
import { assertDelta, Hub, rawMac, watch } from "./_topology.ts";
import {
  ADDR6,
  echo6,
  expectIcmp6,
  type Icmp6View,
  ip6,
  na,
  neighbor6,
  NH,
  ns,
  RawHost6,
  readIcmp6,
  readIpv6,
  routerLab6,
  T6,
  udp6,
} from "./_topology6.ts";

const A = ADDR6.a, B = ADDR6.b, R = ADDR6.rLan;
const SN_R = "ff02::1:ff00:1"; // solicited-node group of 2001:db8:1::1

/** An NDP packet a sends: hop limit 255 unless overridden. */
function ndp(src: string, dst: string, msg: Uint8Array, hopLimit = 255): Uint8Array {
  return ip6({ src, dst, proto: NH.ICMP6, hopLimit, payload: msg });
}

interface NsCase {
  name: string;
  packet: (mac: Uint8Array) => Uint8Array;
  dst: string;
  answered: boolean;
  counters: Record<string, number>;
}

const NS_CASES: NsCase[] = [
  {
    name: "a valid NS is answered",
    packet: (mac) => ndp(A, SN_R, ns(A, SN_R, R, { slla: mac })),
    dst: SN_R,
    answered: true,
    counters: {
      "ndp.solicitationsReceived": 1,
      "ndp.advertisementsSent": 1,
      "ndp.invalidDropped": 0,
    },
  },
  {
    name: "hop limit 254 is dropped",
    packet: (mac) => ndp(A, SN_R, ns(A, SN_R, R, { slla: mac }), 254),
    dst: SN_R,
    answered: false,
    counters: { "ndp.invalidDropped": 1, "ndp.advertisementsSent": 0 },
  },
  {
    name: "code 1 is dropped",
    packet: (mac) => ndp(A, SN_R, ns(A, SN_R, R, { slla: mac, code: 1 })),
    dst: SN_R,
    answered: false,
    counters: { "ndp.invalidDropped": 1 },
  },
  {
    name: "a multicast target is dropped",
    packet: (mac) => ndp(A, "ff02::1", ns(A, "ff02::1", "ff02::1", { slla: mac })),
    dst: "ff02::1",
    answered: false,
    counters: { "ndp.invalidDropped": 1 },
  },
  {
    name: "from :: to a unicast destination (not solicited-node) is dropped",
    packet: () => ndp("::", R, ns("::", R, R)),
    dst: R,
    answered: false,
    counters: { "ndp.invalidDropped": 1 },
  },
  {
    name: "from :: with a source link-layer option is dropped",
    packet: (mac) => ndp("::", SN_R, ns("::", SN_R, R, { slla: mac })),
    dst: SN_R,
    answered: false,
    counters: { "ndp.invalidDropped": 1 },
  },
  {
    name: "for an address r does not have: counted, not answered",
    packet: (mac) => ndp(A, SN_R, ns(A, SN_R, "2001:db8:1::99", { slla: mac })),
    dst: SN_R,
    answered: false,
    counters: { "ndp.notForUs": 1, "ndp.invalidDropped": 0 },
  },
];

Deno.test("NDP: Neighbor Solicitation validity (RFC 4861 §7.1.1)", async (t) => {
  for (const c of NS_CASES) {
    await t.step(c.name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      lab.a.sendMulticast(c.packet(lab.a.mac), c.dst);
      lab.clock.advance(10);
      const nas = lab.a.icmp6(T6.NA);
      assert.equal(nas.length, c.answered ? 1 : 0);
      assertDelta(d(), c.counters);
    });
  }
});

function naFlags(m: Icmp6View): { r: boolean; s: boolean; o: boolean } {
  return {
    r: (m.rest & 0x80000000) !== 0,
    s: (m.rest & 0x40000000) !== 0,
    o: (m.rest & 0x20000000) !== 0,
  };
}

Deno.test("NDP: Neighbor Advertisements r sends (RFC 4861 §7.2.4)", async (t) => {
  for (const forwarding of [true, false]) {
    await t.step(
      `solicited NA: S=1, O=1, R=${forwarding ? 1 : 0} (forwarding ${forwarding})`,
      () => {
        const lab = routerLab6({ forwarding, cold: true });
        lab.a.sendMulticast(ndp(A, SN_R, ns(A, SN_R, R, { slla: lab.a.mac })), SN_R);
        lab.clock.advance(10);
        const [f] = lab.a.icmp6(T6.NA);
        const m = expectIcmp6(f!, { type: T6.NA, code: 0, src: R, dst: A, hopLimit: 255 });
        assert.deepEqual(naFlags(m), { r: forwarding, s: true, o: true });
        assert.deepEqual(m.body.subarray(0, 16), parseIpv6(R));
        // Target link-layer address option.
        assert.deepEqual([m.body[16], m.body[17]], [2, 1]);
        assert.equal(formatMac(m.body.subarray(18, 24)), formatMac(lab.rLan.mac));
        // The NS taught r a's MAC (STALE, RFC 4861 §7.2.3); the NA to a then
        // moved it to DELAY (§7.3.3: traffic sent to a STALE neighbor).
        assert.deepEqual(neighbor6(lab.r, lab.rLan, A), {
          state: "DELAY",
          mac: formatMac(lab.a.mac),
        });
      },
    );
  }
  await t.step("an NS from :: (another node's DAD) for r's address: NA to ff02::1 with S=0", () => {
    const lab = routerLab6();
    lab.a.sendMulticast(ndp("::", SN_R, ns("::", SN_R, R, { nonce: [1, 2, 3, 4, 5, 6] })), SN_R);
    lab.clock.advance(10);
    const [f] = lab.a.icmp6(T6.NA);
    const m = expectIcmp6(f!, { type: T6.NA, src: R, dst: "ff02::1", hopLimit: 255 });
    assert.deepEqual(naFlags(m), { r: true, s: false, o: true });
  });
});

Deno.test("NDP: Neighbor Advertisement validity (RFC 4861 §7.1.2)", async (t) => {
  const cases: {
    name: string;
    packet: (mac: Uint8Array) => Uint8Array;
    counters: Record<string, number>;
  }[] = [
    {
      name: "S set with a multicast destination is dropped",
      packet: (mac: Uint8Array) =>
        ndp(A, "ff02::1", na(A, "ff02::1", A, { s: true, o: true, tlla: mac })),
      counters: { "ndp.invalidDropped": 1, "ndp.advertisementsReceived": 0 },
    },
    {
      name: "hop limit 64 is dropped",
      packet: (mac: Uint8Array) =>
        ndp(A, "ff02::1", na(A, "ff02::1", A, { o: true, tlla: mac }), 64),
      counters: { "ndp.invalidDropped": 1 },
    },
    {
      name: "a multicast target is dropped",
      packet: (mac: Uint8Array) =>
        ndp(A, "ff02::1", na(A, "ff02::1", "ff02::1", { o: true, tlla: mac })),
      counters: { "ndp.invalidDropped": 1 },
    },
    {
      name: "a valid unsolicited NA is taken",
      packet: (mac: Uint8Array) => ndp(A, "ff02::1", na(A, "ff02::1", A, { o: true, tlla: mac })),
      counters: { "ndp.invalidDropped": 0, "ndp.advertisementsReceived": 1 },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      lab.a.sendMulticast(c.packet(rawMac(0x0d)), "ff02::1");
      lab.clock.advance(10);
      assertDelta(d(), c.counters);
    });
  }
});

/** NS frames r wrote on the WAN (to b), since `since`. */
function nsOnWan(lab: ReturnType<typeof routerLab6>, since = 0) {
  return lab.wan.frames("r", since).filter((f) => {
    const ip = readIpv6(f.bytes);
    return ip.proto === NH.ICMP6 && ip.l4[0] === T6.NS;
  });
}

/** A UDP probe a → b. */
function toB(n = 16): Uint8Array {
  return ip6({ src: A, dst: B, proto: NH.UDP, payload: udp6(A, B, 40000, 9, n) });
}

Deno.test("NDP: neighbor unreachability detection through the stack (RFC 4861 §7.3)", async (t) => {
  await t.step("INCOMPLETE → REACHABLE on a solicited NA; the queued packet goes out", () => {
    const lab = routerLab6({ cold: true });
    const since = lab.wan.log.length;
    lab.b.answerNs = false;
    lab.a.send(toB());
    lab.clock.advance(10);
    assert.equal(neighbor6(lab.r, lab.rWan, B)?.state, "INCOMPLETE");
    lab.b.answerNs = true;
    lab.clock.advance(1_000); // the second solicitation is answered
    assert.equal(nsOnWan(lab, since).length, 2);
    const [sol] = nsOnWan(lab, since);
    const m = expectIcmp6(sol!.bytes, { type: T6.NS, dst: "ff02::1:ff00:10", hopLimit: 255 });
    assert.deepEqual(m.body.subarray(0, 16), parseIpv6(B));
    lab.clock.advance(10);
    assert.deepEqual(neighbor6(lab.r, lab.rWan, B), {
      state: "REACHABLE",
      mac: formatMac(lab.b.mac),
    });
    assert.equal(lab.b.data().length, 1);
  });
  await t.step("an unsolicited NA with a new MAC and O=1: STALE with the new MAC", () => {
    const lab = routerLab6({ cold: true });
    lab.a.send(toB());
    lab.clock.advance(10);
    const d = watch(lab.r);
    const newMac = rawMac(0x1b);
    lab.b.sendMulticast(
      ndp(B, "ff02::1", na(B, "ff02::1", B, { o: true, tlla: newMac })),
      "ff02::1",
    );
    lab.clock.advance(10);
    assert.deepEqual(neighbor6(lab.r, lab.rWan, B), { state: "STALE", mac: formatMac(newMac) });
    assertDelta(d(), { "neigh6.wan0.linkAddressChanges": 1 });
  });
  await t.step(
    "an unsolicited NA with a new MAC and O=0 does not change a REACHABLE entry's MAC",
    () => {
      const lab = routerLab6({ cold: true });
      lab.a.send(toB());
      lab.clock.advance(10);
      lab.b.sendMulticast(
        ndp(B, "ff02::1", na(B, "ff02::1", B, { tlla: rawMac(0x1b) })),
        "ff02::1",
      );
      lab.clock.advance(10);
      const e = neighbor6(lab.r, lab.rWan, B)!;
      assert.equal(e.mac, formatMac(lab.b.mac));
      assert.equal(e.state, "STALE"); // §7.2.5: REACHABLE → STALE, address kept
    },
  );
  await t.step("STALE → DELAY → PROBE: a unicast NS, answered → REACHABLE", () => {
    const lab = routerLab6({ cold: true });
    lab.a.send(toB());
    lab.clock.advance(10);
    lab.clock.advance(60_000); // past ReachableTime (≤ 1.5 × 30 s)
    assert.equal(neighbor6(lab.r, lab.rWan, B)?.state, "STALE");
    const since = lab.wan.log.length;
    lab.a.send(toB());
    lab.clock.advance(10);
    assert.equal(neighbor6(lab.r, lab.rWan, B)?.state, "DELAY");
    lab.clock.advance(5_000);
    const probes = nsOnWan(lab, since);
    assert.equal(probes.length, 1, "one probe");
    const ip = readIpv6(probes[0]!.bytes);
    assert.equal(ip.dst, B, "unicast to b");
    assert.equal(formatMac(ip.ethDst), formatMac(lab.b.mac));
    lab.clock.advance(10);
    assert.equal(neighbor6(lab.r, lab.rWan, B)?.state, "REACHABLE");
  });
  await t.step(
    "3 failed solicitations: Destination Unreachable code 3 (address unreachable)",
    () => {
      const lab = routerLab6({ cold: true });
      lab.b.answerNs = false;
      const d = watch(lab.r);
      const since = lab.wan.log.length;
      const sent = toB();
      lab.a.send(sent);
      lab.clock.advance(3_010);
      assert.equal(nsOnWan(lab, since).length, 3);
      const [f] = lab.a.icmp6NoControl();
      const m = expectIcmp6(f!, { type: T6.DEST_UNREACH, code: 3, src: R, dst: A });
      // The queued packet was already forwarded (hop limit 63), as Linux quotes it.
      const expected = sent.slice();
      expected[7] = 63;
      assert.deepEqual(m.body, expected);
      assertDelta(d(), { "neigh6.wan0.resolutionsFailed": 1, "icmpv6.errorsSent": 1 });
      assert.equal(neighbor6(lab.r, lab.rWan, B)?.state, "FAILED");
    },
  );
  await t.step("the pending queue is bounded (oldest dropped)", () => {
    const lab = routerLab6({ cold: true, stack: { neighbor: { queueLen: 3 } } });
    const d = watch(lab.r);
    for (let i = 0; i < 5; i++) lab.a.send(toB(16 + i));
    lab.clock.advance(10);
    const got = lab.b.data().map((f) => readIpv6(f).payloadLength);
    assert.deepEqual(got, [8 + 18, 8 + 19, 8 + 20], "the newest three");
    assertDelta(d(), { "neigh6.wan0.packetsQueued": 5, "neigh6.wan0.queuedPacketsDropped": 2 });
  });
});

// ------------------------------------------------------------ DAD

interface DadLab {
  clock: ManualClock;
  h: Stack;
  nic: Nic;
  hub: Hub;
  x: RawHost6;
}

/** A stack host h and a raw host x on one hub; h has only a link-local address (DAD done). */
function dadLab(ipv6?: StackOptions["ipv6"]): DadLab {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const h = new Stack({ clock, random: new SeededRandom(7), hostname: "h", ipv6 });
  const nic = h.addNic(hub.port("h"), { name: "eth0", ipv6: true });
  const x = new RawHost6(hub.port("x"), rawMac(0x0e), [ADDR6.c]);
  clock.advance(5_000);
  x.clear();
  return { clock, h, nic, hub, x };
}

const T = "2001:db8:1::10";
const SN_T = "ff02::1:ff00:10";

function stateOf(l: DadLab, a = T): string | undefined {
  return l.h.ipv6.nicState(l.nic)!.addresses.find((x) =>
    x.address.every((b, i) => b === parseIpv6(a)[i])
  )?.state;
}

/** DAD probes (NS from ::) for `target` on the hub since `since`. */
function dadProbes(l: DadLab, target = T, since = 0) {
  return l.hub.frames("h", since).filter((f) => {
    const ip = readIpv6(f.bytes);
    return ip.src === "::" && ip.proto === NH.ICMP6 && ip.l4[0] === T6.NS &&
      ip.l4.subarray(8, 24).every((b, i) => b === parseIpv6(target)[i]);
  });
}

Deno.test("DAD (RFC 4862 §5.4)", async (t) => {
  for (const transmits of [1, 3]) {
    await t.step(
      `success with DupAddrDetectTransmits=${transmits}: tentative → preferred, then an unsolicited NA`,
      () => {
        const l = dadLab({ dadTransmits: transmits });
        const t0 = l.clock.now();
        const since = l.hub.log.length;
        const d = watch(l.h);
        l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
        assert.equal(stateOf(l), "tentative");
        l.clock.advance(1_000); // the random delay is at most 1 s
        const [first] = dadProbes(l);
        assert.ok(first !== undefined, "a probe within 1 s");
        assert.ok(first.at - t0 <= 1_000);
        const m = expectIcmp6(first.bytes, {
          type: T6.NS,
          code: 0,
          src: "::",
          dst: SN_T,
          hopLimit: 255,
        });
        // A nonce option (RFC 7527, type 14) and no source link-layer option.
        assert.deepEqual([m.body[16], m.body[17]], [14, 1]);
        assert.equal(m.body.length, 24);
        const doneAt = first.at + transmits * 1_000;
        l.clock.advance(doneAt - 1 - l.clock.now());
        assert.equal(stateOf(l), "tentative", "still tentative 1 ms before");
        l.clock.advance(1);
        assert.equal(stateOf(l), "preferred");
        const probes = dadProbes(l);
        assert.equal(probes.length, transmits);
        probes.forEach((p, i) => assert.equal(p.at, first.at + i * 1_000));
        l.clock.advance(1);
        const nas = l.hub.frames("h", since).filter((f) => readIpv6(f.bytes).l4[0] === T6.NA);
        assert.equal(nas.length, 1, "one unsolicited NA");
        const a = expectIcmp6(nas[0]!.bytes, {
          type: T6.NA,
          src: T,
          dst: "ff02::1",
          hopLimit: 255,
        });
        assert.deepEqual(naFlags(a), { r: false, s: false, o: true });
        assertDelta(d(), {
          "ndp.dadProbesSent": transmits,
          "ndp.dadSucceeded": 1,
          "ndp.dadFailed": 0,
        });
      },
    );
  }
  await t.step("DupAddrDetectTransmits=0: preferred at once, no probe", () => {
    const l = dadLab({ dadTransmits: 0 });
    l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
    assert.equal(stateOf(l), "preferred");
    l.clock.advance(3_000);
    assert.equal(dadProbes(l).length, 0);
  });
  await t.step(
    "only NDP is delivered to a tentative address (an echo request is not answered)",
    () => {
      const l = dadLab();
      l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
      const d = watch(l.h);
      l.x.gatewayMac = l.nic.mac;
      l.x.send(ip6({ src: ADDR6.c, dst: T, proto: NH.ICMP6, payload: echo6(ADDR6.c, T) }));
      l.x.send(ip6({ src: ADDR6.c, dst: T, proto: NH.UDP, payload: udp6(ADDR6.c, T, 1, 9) }));
      l.clock.advance(1);
      assert.equal(stateOf(l), "tentative");
      assert.equal(l.x.icmp6NoControl().length, 0, "no echo reply, no port unreachable");
      assertDelta(d(), { "ipv6.tentativeDropped": 2, "icmpv6.echoRequestsAnswered": 0 });
    },
  );
  await t.step("conflict: an NS from :: for our tentative address → duplicate", () => {
    const l = dadLab();
    l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
    const d = watch(l.h);
    const since = l.hub.log.length;
    l.x.sendMulticast(ndp("::", SN_T, ns("::", SN_T, T, { nonce: [9, 9, 9, 9, 9, 9] })), SN_T);
    l.clock.advance(1);
    assert.equal(stateOf(l), "duplicate");
    l.clock.advance(5_000);
    assert.equal(stateOf(l), "duplicate");
    const nas = l.hub.frames("h", since).filter((f) => readIpv6(f.bytes).l4[0] === T6.NA);
    assert.equal(nas.length, 0, "no NA");
    assertDelta(d(), { "ndp.dadFailed": 1, "ndp.dadSucceeded": 0 });
  });
  await t.step("conflict: an NA for our tentative address → duplicate", () => {
    const l = dadLab();
    l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
    const d = watch(l.h);
    l.x.sendMulticast(
      ndp(T, "ff02::1", na(T, "ff02::1", T, { o: true, tlla: l.x.mac })),
      "ff02::1",
    );
    l.clock.advance(1);
    assert.equal(stateOf(l), "duplicate");
    assertDelta(d(), { "ndp.dadFailed": 1 });
  });
  await t.step("our own NS looped back with our nonce is not a conflict (RFC 7527)", () => {
    const l = dadLab();
    l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
    l.clock.advance(1_000);
    const [probe] = dadProbes(l);
    assert.ok(probe !== undefined);
    const d = watch(l.h);
    // x reflects h's probe byte for byte (a looping link).
    l.x.send(probe.bytes.subarray(14), { dstMac: probe.bytes.subarray(0, 6) });
    l.clock.advance(1);
    assert.equal(stateOf(l), "tentative");
    l.clock.advance(2_000);
    assert.equal(stateOf(l), "preferred");
    assertDelta(d(), { "ndp.loopedBackSolicitations": 1, "ndp.dadFailed": 0 });
  });
  await t.step("a duplicate address is never used as a source", () => {
    const l = dadLab();
    l.h.ipv6.addAddress(l.nic, parseIpv6(T), 64);
    l.x.sendMulticast(ndp("::", SN_T, ns("::", SN_T, T)), SN_T);
    l.clock.advance(3_000);
    const src = l.h.ipv6.selectSource(parseIpv6(ADDR6.c), 0, l.nic);
    assert.notEqual(src && formatIpv6(src), T);
    assert.equal(src && formatIpv6(src), formatIpv6(l.h.ipv6.linkLocalOf(l.nic)!));
  });
});

Deno.test("NDP: r answers a's NS only once its address passed DAD", () => {
  const lab = routerLab6({ cold: true });
  lab.a.sendMulticast(ndp(A, SN_R, ns(A, SN_R, R, { slla: lab.a.mac })), SN_R);
  lab.clock.advance(10);
  const f = lab.a.icmp6(T6.NA);
  assert.equal(f.length, 1);
  assert.equal(readIcmp6(f[0]!).ip.src, R);
});
