/**
 * Router Advertisements, the host side, and SLAAC on the manual clock:
 * Router Solicitations (RFC 4861 §6.3.7), RA validation (§6.1.2), the
 * default router list with RFC 4191 preferences, link parameters and
 * options, SLAAC lifetimes and the two-hour rule (RFC 4862 §5.5.3), and
 * the limits that hold against an RA flood.
 */
import assert from "node:assert/strict";
import { ManualClock, type Nic, SeededRandom, Stack } from "../../stack/mod.ts";
import type { RaHostOptions } from "../../stack/ipv6/slaac.ts";
import { TWO_HOURS_MS, twoHourRule } from "../../stack/ipv6/slaac.ts";
import { formatIpv6, parseIpv6 } from "../../stack/wire/mod.ts";
import { Hub, rawMac } from "./_topology.ts";
import { icmp6, ip6, llaOption, NH, RawHost6, readIcmp6, readIpv6, T6 } from "./_topology6.ts";

const S = 1000;
const R1 = "fe80::1";
const PREFIX = "2001:db8:1::";

/** A Prefix Information option. */
function pio(
  prefix: string,
  len: number,
  valid: number,
  preferred: number,
  flags = 0xc0,
): number[] {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  b[0] = 3;
  b[1] = 4;
  b[2] = len;
  b[3] = flags;
  v.setUint32(4, valid >>> 0);
  v.setUint32(8, preferred >>> 0);
  b.set(parseIpv6(prefix), 16);
  return [...b];
}

interface RaSpec {
  hopLimit?: number;
  code?: number;
  curHopLimit?: number;
  /** M, O and preference bits. */
  flags?: number;
  lifetime?: number;
  reachable?: number;
  retrans?: number;
  opts?: number[];
  /** Cut the message to this many bytes (checksum over what remains). */
  length?: number;
  slla?: Uint8Array | null;
}

const PRF = { high: 1 << 3, medium: 0, low: 3 << 3 } as const;

/** An RA packet from `src` to all-nodes. */
function ra(src: string, s: RaSpec = {}): Uint8Array {
  const opts = [...(s.slla === null ? [] : llaOption(1, s.slla ?? rawMac(1))), ...(s.opts ?? [])];
  let body = new Uint8Array(8 + opts.length);
  const v = new DataView(body.buffer);
  v.setUint32(0, s.reachable ?? 0);
  v.setUint32(4, s.retrans ?? 0);
  body.set(opts, 8);
  if (s.length !== undefined) body = body.slice(0, s.length - 8);
  const rest = ((s.curHopLimit ?? 64) << 24) | ((s.flags ?? 0) << 16) | (s.lifetime ?? 1800);
  return ip6({
    src,
    dst: "ff02::1",
    proto: NH.ICMP6,
    hopLimit: s.hopLimit ?? 255,
    payload: icmp6(src, "ff02::1", T6.RA, s.code ?? 0, rest, body),
  });
}

interface Lab {
  clock: ManualClock;
  hub: Hub;
  h: Stack;
  nic: Nic;
  router: RawHost6;
  send(p: Uint8Array): void;
}

function lab(opts: Partial<RaHostOptions> = {}, seed = 1): Lab {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const h = new Stack({ clock, random: new SeededRandom(seed), hostname: "h" });
  const nic = h.addNic(hub.port("h"), { name: "eth0", ipv6: true });
  h.ra.enableHost(nic, opts);
  const router = new RawHost6(hub.port("r"), rawMac(1), [R1]);
  return {
    clock,
    hub,
    h,
    nic,
    router,
    send: (p) => {
      router.sendMulticast(p, "ff02::1");
      clock.advance(0);
    },
  };
}

function gatewayFor(s: Stack, dst = "2001:db8:99::1"): string | null {
  const r = s.ipv6.routes.lookup(parseIpv6(dst), 0);
  return r?.gateway ? formatIpv6(r.gateway) : null;
}

Deno.test("RA host: Router Solicitations at start (RFC 4861 §6.3.7)", async (t) => {
  for (const seed of [1, 2, 3]) {
    await t.step(`seed ${seed}: 3 RS, the first within 1 s, then 4 s apart`, () => {
      const l = lab({}, seed);
      l.clock.advance(30 * S);
      const rs = l.hub.frames("h").filter((f) => {
        const ip = readIpv6(f.bytes);
        return ip.proto === NH.ICMP6 && ip.l4[0] === T6.RS;
      });
      assert.equal(rs.length, 3);
      assert.ok(rs[0]!.at <= 1000, `first at ${rs[0]!.at}`);
      assert.equal(rs[1]!.at - rs[0]!.at, 4000);
      assert.equal(rs[2]!.at - rs[1]!.at, 4000);
      for (const f of rs) {
        const m = readIcmp6(f.bytes);
        assert.equal(m.ip.dst, "ff02::2");
        assert.equal(m.ip.hopLimit, 255);
        // From :: (link-local still tentative) without SLLA; else from fe80:: with it.
        if (m.ip.src === "::") assert.equal(m.body.length, 0);
        else assert.ok(m.ip.src.startsWith("fe80::") && m.body[0] === 1);
      }
      l.h.close();
    });
  }
  await t.step("an RA stops the solicitations", () => {
    const l = lab({}, 4);
    l.clock.advance(1_500);
    l.send(ra(R1));
    l.clock.advance(30 * S);
    const n = l.hub.frames("h").filter((f) => readIpv6(f.bytes).l4[0] === T6.RS).length;
    assert.ok(n <= 1, `${n} RS`);
    l.h.close();
  });
});

Deno.test("RA host: validation (RFC 4861 §6.1.2)", async (t) => {
  const cases: { name: string; p: Uint8Array; ok: boolean }[] = [
    { name: "a valid RA is accepted", p: ra(R1), ok: true },
    { name: "a global source is dropped", p: ra("2001:db8:1::9"), ok: false },
    { name: "hop limit 254 is dropped", p: ra(R1, { hopLimit: 254 }), ok: false },
    { name: "code 1 is dropped", p: ra(R1, { code: 1 }), ok: false },
    { name: "ICMP length 12 (< 16) is dropped", p: ra(R1, { length: 12, slla: null }), ok: false },
    {
      name: "a zero-length option is dropped",
      p: ra(R1, { opts: [3, 0, 0, 0, 0, 0, 0, 0] }),
      ok: false,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const l = lab({ solicit: false });
      l.send(c.p);
      assert.equal(l.h.ra.hostState(l.nic)!.routers.length, c.ok ? 1 : 0);
      assert.equal(gatewayFor(l.h), c.ok ? R1 : null);
      l.h.close();
    });
  }
  await t.step("an interface without accept_ra ignores RAs", () => {
    const clock = new ManualClock();
    const hub = new Hub(clock, "lan");
    const h = new Stack({ clock, random: new SeededRandom(1), hostname: "h" });
    h.addNic(hub.port("h"), { name: "eth0", ipv6: true });
    const router = new RawHost6(hub.port("r"), rawMac(1), [R1]);
    router.sendMulticast(ra(R1), "ff02::1");
    clock.advance(0);
    assert.equal(gatewayFor(h), null);
    assert.equal(h.ra.stats.advertisementsIgnored, 1);
    h.close();
  });
});

Deno.test("RA host: default routers and their preference (RFC 4191 §3.2)", async (t) => {
  await t.step("high beats medium beats low; lifetime 0 removes a router", () => {
    const l = lab({ solicit: false });
    l.send(ra("fe80::a", { flags: PRF.low }));
    assert.equal(gatewayFor(l.h), "fe80::a");
    l.send(ra("fe80::b", { flags: PRF.medium }));
    assert.equal(gatewayFor(l.h), "fe80::b");
    l.send(ra("fe80::c", { flags: PRF.high }));
    assert.equal(gatewayFor(l.h), "fe80::c");
    assert.deepEqual(l.h.ra.hostState(l.nic)!.routers.map((r) => r.preference), [
      "high",
      "medium",
      "low",
    ]);
    l.send(ra("fe80::c", { lifetime: 0 }));
    assert.equal(gatewayFor(l.h), "fe80::b");
    l.send(ra("fe80::b", { lifetime: 0 }));
    assert.equal(gatewayFor(l.h), "fe80::a");
    // A refreshed preference reorders at once.
    l.send(ra("fe80::b", { flags: PRF.high }));
    assert.equal(gatewayFor(l.h), "fe80::b");
    l.h.close();
  });
  await t.step("a router whose lifetime runs out is removed on the clock", () => {
    const l = lab({ solicit: false });
    l.send(ra(R1, { lifetime: 10 }));
    l.clock.advance(9 * S);
    assert.equal(gatewayFor(l.h), R1);
    l.clock.advance(1 * S);
    assert.equal(gatewayFor(l.h), null);
    assert.equal(l.h.ra.hostState(l.nic)!.routers.length, 0);
    l.h.close();
  });
});

Deno.test("RA host: link parameters and options", () => {
  const l = lab({ solicit: false });
  const rio = [24, 2, 48, 3 << 3, 0, 0, 0x02, 0x58, ...parseIpv6("2001:db8:ff::").slice(0, 8)];
  const rdnss = [25, 3, 0, 0, 0, 0, 0x02, 0x58, ...parseIpv6("2001:db8:1::53")];
  const dnssl = [31, 2, 0, 0, 0, 0, 0x02, 0x58, 2, 0x65, 0x78, 0, 0, 0, 0, 0]; // "ex"
  l.send(ra(R1, {
    curHopLimit: 61,
    reachable: 20_000,
    retrans: 2_000,
    opts: [5, 1, 0, 0, 0, 0, 0x05, 0x78, ...rio, ...rdnss, ...dnssl],
  }));
  const st = l.h.ra.hostState(l.nic)!;
  assert.equal(st.mtu, 1400);
  assert.equal(l.nic.mtu(), 1400);
  assert.equal(st.hopLimit, 61);
  assert.deepEqual(st.routes.map((r) => [r.prefix, r.via, r.preference]), [
    ["2001:db8:ff::/48", R1, "low"],
  ]);
  assert.deepEqual(st.rdnss.map((r) => r.address), ["2001:db8:1::53"]);
  assert.deepEqual(st.dnssl.map((d) => d.domain), ["ex"]);
  // An MTU above the link's or below 1280 is ignored.
  l.send(ra(R1, { opts: [5, 1, 0, 0, 0, 0, 0x04, 0xff] }));
  l.send(ra(R1, { opts: [5, 1, 0, 0, 0, 0, 0x23, 0x28] }));
  assert.equal(l.nic.mtu(), 1400);
  assert.equal(l.h.ra.stats.mtuIgnored, 2);
  // The RIO route expires after 600 s.
  l.clock.advance(1_800 * S);
  assert.equal(l.h.ra.hostState(l.nic)!.routes.length, 0);
  l.h.close();
});

Deno.test("SLAAC: preferred → deprecated → removed (RFC 4862 §5.5.4)", () => {
  const l = lab({ solicit: false });
  l.send(ra(R1, { opts: pio(PREFIX, 64, 20, 10) }));
  const addr = () => l.h.ipv6.describeAddresses(l.nic).filter((a) => a.startsWith("2001:db8:1:"));
  assert.match(addr()[0]!, /tentative/);
  l.clock.advance(3 * S);
  assert.deepEqual(addr().length, 1);
  assert.doesNotMatch(addr()[0]!, / /, "preferred after DAD");
  const st = l.h.ra.hostState(l.nic)!;
  assert.equal(st.addresses[0]!.state, "preferred");
  assert.equal(st.addresses[0]!.validLifetime, 17);
  assert.equal(gatewayFor(l.h, "2001:db8:1::77"), null, "on-link: no gateway");
  l.clock.advance(7 * S);
  assert.match(addr()[0]!, /deprecated/);
  l.clock.advance(10 * S);
  assert.deepEqual(addr(), []);
  assert.equal(l.h.ipv6.routes.find(parseIpv6(PREFIX), 64).length, 0, "on-link route gone");
  l.h.close();
});

Deno.test("SLAAC: prefix checks of RFC 4862 §5.5.3 (a)–(d)", async (t) => {
  const cases = [
    { name: "a /64 autonomous prefix forms an address", o: pio(PREFIX, 64, 100, 50), n: 1 },
    { name: "the link-local prefix is ignored", o: pio("fe80::", 64, 100, 50), n: 0 },
    { name: "preferred > valid is ignored", o: pio(PREFIX, 64, 50, 100), n: 0 },
    { name: "a /48 cannot take a 64-bit IID", o: pio(PREFIX, 48, 100, 50), n: 0 },
    { name: "A=0 forms no address", o: pio(PREFIX, 64, 100, 50, 0x80), n: 0 },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const l = lab({ solicit: false });
      l.send(ra(R1, { opts: c.o }));
      assert.equal(l.h.ra.hostState(l.nic)!.addresses.length, c.n);
      l.h.close();
    });
  }
  await t.step(
    "preferred > valid ignores the whole option: no on-link route either (as Linux)",
    () => {
      const l = lab({ solicit: false });
      const before = l.h.ra.stats.prefixesIgnored;
      l.send(ra(R1, { opts: pio(PREFIX, 64, 50, 100) }));
      assert.equal(l.h.ipv6.routes.find(parseIpv6(PREFIX), 64).length, 0, "no on-link route");
      assert.equal(l.h.ra.stats.prefixesIgnored, before + 1);
      // The same prefix with sane lifetimes is on-link.
      l.send(ra(R1, { opts: pio(PREFIX, 64, 100, 50) }));
      assert.equal(l.h.ipv6.routes.find(parseIpv6(PREFIX), 64).length, 1);
      l.h.close();
    },
  );
  await t.step("stable-privacy (RFC 7217) forms a non-EUI-64 identifier", () => {
    const l = lab({
      solicit: false,
      addrGenMode: "stable-privacy",
      stableSecret: parseIpv6("2001:db8:5ec::1"),
    });
    l.send(ra(R1, { opts: pio(PREFIX, 64, 100, 50) }));
    const a = l.h.ra.hostState(l.nic)!.addresses[0]!.address;
    assert.ok(!a.includes("ff:fe"), a);
    l.h.close();
  });
});

Deno.test("SLAAC: the two-hour rule (RFC 4862 §5.5.3 (e))", async (t) => {
  const H = 3600 * S;
  const now = 1_000_000;
  const cases = [
    { name: "advertised > 2 h: set", remaining: 1 * H, adv: 3 * H, want: 3 * H },
    { name: "advertised > remaining: set", remaining: 0.5 * H, adv: 1 * H, want: 1 * H },
    {
      name: "remaining ≤ 2 h, advertised lower: ignored",
      remaining: 2 * H,
      adv: 1 * H,
      want: 2 * H,
    },
    { name: "remaining ≤ 2 h, advertised 0: ignored", remaining: 1 * H, adv: 0, want: 1 * H },
    { name: "remaining > 2 h, advertised lower: 2 h", remaining: 5 * H, adv: 1 * H, want: 2 * H },
    { name: "remaining infinite, advertised 0: 2 h", remaining: Infinity, adv: 0, want: 2 * H },
    { name: "advertised infinite: set", remaining: 1 * H, adv: Infinity, want: Infinity },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.equal(twoHourRule(now + c.remaining, c.adv, now) - now, c.want);
    });
  }
  await t.step("in the stack: 3 h, then 1 h → 2 h, then 30 min → ignored", () => {
    const l = lab({ solicit: false });
    l.send(ra(R1, { opts: pio(PREFIX, 64, 3 * 3600, 3600) }));
    const valid = () => l.h.ra.hostState(l.nic)!.addresses[0]!.validLifetime;
    assert.equal(valid(), 3 * 3600);
    l.send(ra(R1, { opts: pio(PREFIX, 64, 3600, 1800) }));
    assert.equal(valid(), TWO_HOURS_MS / S);
    l.send(ra(R1, { opts: pio(PREFIX, 64, 1800, 1800) }));
    assert.equal(valid(), TWO_HOURS_MS / S);
    l.send(ra(R1, { opts: pio(PREFIX, 64, 0, 0) }));
    assert.equal(valid(), TWO_HOURS_MS / S, "valid lifetime 0 cannot kill the address");
    l.h.close();
  });
});

Deno.test("RA host: a flood leaves every list at its limit", async (t) => {
  const l = lab({ solicit: false, maxRouters: 16, maxPrefixes: 16, maxAddresses: 16 }, 9);
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
  const randomPrefix = () => `2001:db8:${rnd().toString(16)}:${rnd().toString(16)}::`;
  const heap: number[] = [];
  const flood = (n: number, make: () => Uint8Array) => {
    for (let i = 0; i < n; i++) {
      l.send(make());
      if (i % 100 === 0) {
        l.hub.log.length = 0;
        l.router.clear();
        l.clock.advance(10);
      }
      if (i === 1000) heap.push(Deno.memoryUsage().heapUsed);
    }
    l.clock.advance(3 * S);
    l.hub.log.length = 0;
    heap.push(Deno.memoryUsage().heapUsed);
  };
  await t.step("10,000 RAs with random prefixes", () => {
    flood(10_000, () => ra(R1, { opts: pio(randomPrefix(), 64, 86_400, 14_400) }));
    const st = l.h.ra.hostState(l.nic)!;
    assert.equal(st.prefixes.length, 16);
    assert.equal(st.addresses.length, 16);
    // Each RA was parsed and its prefix dropped, or not parsed (over the
    // rate of a known router's RAs, RA_KNOWN_PER_SECOND): one counter each.
    const { prefixesDropped, advertisementsRateLimited } = l.h.ra.stats;
    assert.equal(prefixesDropped + advertisementsRateLimited, 10_000 - 16);
    assert.ok(advertisementsRateLimited > 9_000, `${advertisementsRateLimited} rate-limited`);
  });
  await t.step("10,000 RAs from random router addresses", () => {
    const rl0 = l.h.ra.stats.advertisementsRateLimited, rd0 = l.h.ra.stats.routersDropped;
    flood(10_000, () => {
      const a = `fe80::${rnd().toString(16)}:${rnd().toString(16)}`;
      return ra(a, { slla: new Uint8Array([2, 0, 0, rnd() & 255, rnd() & 255, 1]) });
    });
    const st = l.h.ra.hostState(l.nic)!;
    assert.equal(st.routers.length, 16);
    // Parsed and dropped (the list was full), or not parsed (over the rate
    // of RAs from unknown sources, RA_NEW_PER_SECOND); R1 held one place.
    const rateLimited = l.h.ra.stats.advertisementsRateLimited - rl0;
    assert.equal(l.h.ra.stats.routersDropped - rd0 + rateLimited, 10_000 - 15);
    assert.ok(rateLimited > 9_800, `${rateLimited} rate-limited`);
    const routes = l.h.ipv6.routes.size;
    assert.ok(routes <= 16 + 16 + 2, `${routes} routes`);
    const neighbors = [...l.h.ipv6.nicState(l.nic)!.neighbors.entries()].length;
    assert.ok(neighbors <= l.h.neighborConfig.maxEntries, `${neighbors} neighbors`);
    const mb = (x: number) => (x / 1048576).toFixed(1);
    console.log(
      `  heap ${
        heap.map(mb).join(" → ")
      } MB; drops: ${l.h.ra.stats.prefixesDropped} prefixes, ${l.h.ra.stats.addressesDropped} addresses, ${l.h.ra.stats.routersDropped} routers; ${neighbors} neighbors`,
    );
    assert.ok(heap.at(-1)! - heap[0]! < 48 * 1048576, "heap stays flat");
  });
  await t.step(
    "after the flood, a real router that repeats its RAs is learned at its second (issue #16 item 12)",
    () => {
      const real = "fe80::5eed";
      const before = l.h.ra.stats.routersDisplaced;
      l.send(ra(real, { lifetime: 1800 }));
      const st = () => l.h.ra.hostState(l.nic)!;
      assert.ok(!st().routers.some((r) => r.address === real), "the first RA finds the list full");
      l.clock.advance(4 * S);
      l.send(ra(real, { lifetime: 1800 }));
      assert.ok(
        st().routers.some((r) => r.address === real),
        "the second RA displaces a flood entry",
      );
      assert.equal(st().routers.length, 16);
      assert.equal(l.h.ra.stats.routersDisplaced, before + 1);
      // The real router stays: a router heard twice is never displaced by a flood.
      flood(1_000, () => ra(`fe80::${rnd().toString(16)}:${rnd().toString(16)}`));
      assert.ok(st().routers.some((r) => r.address === real));
    },
  );
  await t.step(
    "after the flood, a prefix its router repeats gets its route and address at its second RA",
    () => {
      const st = () => l.h.ra.hostState(l.nic)!;
      const before = l.h.ra.stats.prefixesDisplaced;
      const onLink = () => l.h.ipv6.routes.find(parseIpv6(PREFIX), 64).length;
      l.send(ra(R1, { opts: pio(PREFIX, 64, 86_400, 14_400) }));
      assert.equal(onLink(), 0, "the first finds the list full");
      l.clock.advance(4 * S);
      l.send(ra(R1, { opts: pio(PREFIX, 64, 86_400, 14_400) }));
      assert.equal(onLink(), 1, "the second displaces a flood prefix");
      assert.equal(st().prefixes.length, 16);
      assert.equal(l.h.ra.stats.prefixesDisplaced, before + 1);
      l.clock.advance(3 * S); // DAD
      assert.ok(
        st().addresses.some((a) =>
          a.address.startsWith("2001:db8:1:0:") || a.address.startsWith("2001:db8:1::")
        ),
        JSON.stringify(st().addresses.map((a) => a.address)),
      );
    },
  );
  l.h.close();
});
