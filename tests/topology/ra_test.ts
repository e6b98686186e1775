/**
 * Router Advertisements, the router side, on the manual clock: intervals
 * (RFC 4861 §6.2.4), answers to solicitations (§6.2.6), final RAs
 * (§6.2.5), the RA's contents (§6.2.3) and consistency checks (§6.2.7).
 */
import assert from "node:assert/strict";
import { ManualClock, type Nic, SeededRandom, Stack } from "../../stack/mod.ts";
import { ALL_ROUTERS } from "../../stack/ipv6/ipv6.ts";
import type { RaAdvertSettings } from "../../stack/ipv6/ra.ts";
import { parseIpv6 } from "../../stack/wire/mod.ts";
import { Hub, rawMac } from "./_topology.ts";
import {
  icmp6,
  ip6,
  isIcmp6,
  llaOption,
  neighbor6,
  NH,
  RawHost6,
  readIcmp6,
  readIpv6,
  T6,
} from "./_topology6.ts";

const S = 1000;

function settings(o: Partial<RaAdvertSettings> = {}): RaAdvertSettings {
  return {
    minInterval: 30 * S,
    maxInterval: 100 * S,
    routerLifetime: 1800 * S,
    reachableTime: 0,
    retransTimer: 0,
    curHopLimit: 64,
    managed: false,
    otherConfig: false,
    preference: "medium",
    sourceLinkLayer: true,
    unicastSolicited: false,
    prefixes: [{
      prefix: { address: parseIpv6("2001:db8:1::"), prefixLen: 64 },
      onLink: true,
      autonomous: true,
      validLifetime: 86_400 * S,
      preferredLifetime: 14_400 * S,
      decrementLifetimes: false,
    }],
    rdnss: [],
    dnssl: [],
    routes: [],
    ...o,
  };
}

interface Lab {
  clock: ManualClock;
  hub: Hub;
  r: Stack;
  nic: Nic;
  host: RawHost6;
  /** Times (ms) and frames of the router's RAs. */
  ras(): { at: number; f: Uint8Array }[];
}

function lab(o: Partial<RaAdvertSettings> = {}, seed = 1): Lab {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const r = new Stack({ clock, random: new SeededRandom(seed), hostname: "r" });
  const nic = r.addNic(hub.port("r"), { name: "lan0", ipv6: { forwarding: true } });
  r.ipv6.addAddress(nic, parseIpv6("2001:db8:1::1"), 64);
  r.ra.enableRouter(nic, settings(o));
  const host = new RawHost6(hub.port("h"), rawMac(10), ["fe80::a"]);
  return {
    clock,
    hub,
    r,
    nic,
    host,
    ras: () => hub.frames("r").filter((x) => isRa(x.bytes)).map((x) => ({ at: x.at, f: x.bytes })),
  };
}

function isRa(f: Uint8Array): boolean {
  if (f.length < 54 || f[12] !== 0x86 || f[13] !== 0xdd) return false;
  const ip = readIpv6(f);
  return ip.proto === NH.ICMP6 && ip.l4[0] === T6.RA;
}

/** A Router Solicitation from `src` (with SLLA unless `slla` is null). */
function rs(src: string, slla: Uint8Array | null): Uint8Array {
  const body = new Uint8Array(slla ? llaOption(1, slla) : []);
  return ip6({
    src,
    dst: "ff02::2",
    proto: NH.ICMP6,
    hopLimit: 255,
    payload: icmp6(src, "ff02::2", T6.RS, 0, 0, body),
  });
}

function routerLifetime(f: Uint8Array): number {
  return readIcmp6(f).rest & 0xffff;
}

Deno.test("RA router: unsolicited RA intervals (RFC 4861 §6.2.4)", async (t) => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    await t.step(`seed ${seed}: 3 initial RAs ≤ 16 s apart, then inside [Min, Max]`, () => {
      const l = lab({}, seed);
      l.clock.advance(3_000 * S);
      const ras = l.ras();
      assert.ok(ras.length >= 30, `${ras.length} RAs`);
      const gaps = ras.slice(1).map((x, i) => x.at - ras[i]!.at);
      assert.ok(gaps[0]! <= 16 * S && gaps[1]! <= 16 * S, `initial gaps ${gaps.slice(0, 2)}`);
      for (const g of gaps.slice(2)) assert.ok(g >= 30 * S && g <= 100 * S, `gap ${g}`);
      // Every RA: from the link-local address, hop limit 255, to all-nodes.
      for (const { f } of ras) {
        const ip = readIpv6(f);
        assert.ok(ip.src.startsWith("fe80::"), ip.src);
        assert.equal(ip.hopLimit, 255);
        assert.equal(ip.dst, "ff02::1");
      }
      l.r.close();
    });
  }
  await t.step("the first RA waits for the link-local address to pass DAD", () => {
    const l = lab();
    l.clock.advance(100 * S);
    const first = l.ras()[0]!;
    const dadNs = l.hub.frames("r").findIndex((x) => readIpv6(x.bytes).src === "::");
    assert.ok(dadNs >= 0, "a DAD probe was sent");
    assert.ok(first.at >= l.hub.log[dadNs]!.at + 1000, "after DAD's RetransTimer");
    l.r.close();
  });
  await t.step("an advertising interface joined all-routers (ff02::2)", () => {
    const l = lab();
    const st = l.r.ipv6.nicState(l.nic)!;
    assert.ok((st.groups.get(ALL_ROUTERS) ?? 0) >= 1);
    l.r.close();
  });
});

Deno.test("RA router: answers to Router Solicitations (RFC 4861 §6.2.6)", async (t) => {
  for (const seed of [11, 12, 13, 14, 15]) {
    await t.step(`seed ${seed}: answered within 0–500 ms`, () => {
      const l = lab({}, seed);
      l.clock.advance(200 * S);
      const last = l.ras().at(-1)!.at;
      // Far from the last multicast RA (≥ 3 s): only the random delay applies.
      l.clock.advance(Math.max(0, last + 5 * S - l.clock.now()));
      const n = l.ras().length;
      const sentAt = l.clock.now();
      l.host.sendMulticast(rs("fe80::a", rawMac(10)), "ff02::2");
      l.clock.advance(600);
      const ras = l.ras().slice(n);
      assert.equal(ras.length, 1);
      assert.ok(ras[0]!.at - sentAt >= 0 && ras[0]!.at - sentAt <= 500, `${ras[0]!.at - sentAt}`);
      assert.equal(readIpv6(ras[0]!.f).dst, "ff02::1");
      assert.equal(l.r.ra.stats.solicitedSent, 1);
      l.r.close();
    });
  }
  await t.step("a flood of RS never makes multicast RAs closer than 3 s", () => {
    const l = lab({}, 21);
    l.clock.advance(60 * S);
    const n = l.ras().length;
    for (let i = 0; i < 300; i++) {
      l.host.sendMulticast(rs("fe80::a", rawMac(10)), "ff02::2");
      l.clock.advance(100);
    }
    const ras = l.ras().slice(n - 1);
    const gaps = ras.slice(1).map((x, i) => x.at - ras[i]!.at);
    assert.ok(gaps.length >= 8, `${gaps.length} answers in 30 s`);
    for (const g of gaps) assert.ok(g >= 3 * S, `gap ${g}`);
    l.r.close();
  });
  await t.step("unicast_solicited answers a unicast source by unicast", () => {
    const l = lab({ unicastSolicited: true }, 22);
    l.clock.advance(60 * S);
    const n = l.ras().length;
    l.host.sendMulticast(rs("fe80::a", rawMac(10)), "ff02::2");
    l.clock.advance(600);
    const ra = l.ras().slice(n);
    assert.equal(ra.length, 1);
    const ip = readIpv6(ra[0]!.f);
    assert.equal(ip.dst, "fe80::a");
    assert.deepEqual([...ip.ethDst], [...rawMac(10)]);
    // §6.2.6: the RS's link-layer option made the neighbor entry, so the
    // answer went out without a Neighbor Solicitation first.
    const ns = l.hub.frames("r").filter((x) => x.at >= 60 * S && isIcmp6(x.bytes, T6.NS));
    assert.equal(ns.length, 0, "no NS before the unicast RA");
    // Made STALE by the RS, then DELAY once the RA used it (§7.3.3).
    assert.equal(neighbor6(l.r, l.nic, "fe80::a")?.state, "DELAY");
    l.r.close();
  });
  await t.step("an RS from :: is answered by multicast even with unicast_solicited", () => {
    const l = lab({ unicastSolicited: true }, 23);
    l.clock.advance(60 * S);
    const n = l.ras().length;
    l.host.sendMulticast(rs("::", null), "ff02::2");
    l.clock.advance(3_100);
    const ra = l.ras().slice(n);
    assert.equal(ra.length, 1);
    assert.equal(readIpv6(ra[0]!.f).dst, "ff02::1");
    l.r.close();
  });
  await t.step("an RS from :: with a link-layer option is dropped (§6.1.1)", () => {
    const l = lab({}, 24);
    l.clock.advance(60 * S);
    l.host.sendMulticast(rs("::", rawMac(10)), "ff02::2");
    l.clock.advance(1);
    assert.equal(l.r.ra.stats.invalidSolicitationsDropped, 1);
    l.r.close();
  });
  await t.step("an interface that does not advertise ignores RS", () => {
    const clock = new ManualClock();
    const hub = new Hub(clock, "lan");
    const r = new Stack({ clock, random: new SeededRandom(3), hostname: "r" });
    r.addNic(hub.port("r"), { name: "lan0", ipv6: { forwarding: true } });
    const host = new RawHost6(hub.port("h"), rawMac(10), ["fe80::a"]);
    clock.advance(10 * S);
    host.sendMulticast(rs("fe80::a", rawMac(10)), "ff02::2");
    clock.advance(5 * S);
    assert.equal(hub.frames("r").filter((x) => isRa(x.bytes)).length, 0);
    r.close();
  });
});

Deno.test("RA router: contents, final RAs, consistency", async (t) => {
  await t.step("every configured field and option is in the RA", () => {
    const l = lab({
      curHopLimit: 61,
      managed: true,
      otherConfig: true,
      preference: "high",
      routerLifetime: 600 * S,
      reachableTime: 30 * S,
      retransTimer: 2 * S,
      mtu: 1400,
      rdnss: [{ addresses: [parseIpv6("2001:db8:1::53")], lifetime: 600 * S }],
      dnssl: [{ domains: ["example.net"], lifetime: 600 * S }],
      routes: [{
        prefix: { address: parseIpv6("2001:db8:ff::"), prefixLen: 48 },
        preference: "low",
        lifetime: Infinity,
      }],
    });
    l.clock.advance(10 * S);
    const m = readIcmp6(l.ras()[0]!.f);
    assert.equal(m.rest >>> 24, 61);
    assert.equal((m.rest >>> 16) & 0xc0, 0xc0, "M and O");
    assert.equal((m.rest >>> 19) & 3, 1, "preference high");
    assert.equal(m.rest & 0xffff, 600);
    const v = new DataView(m.body.buffer, m.body.byteOffset);
    assert.equal(v.getUint32(0), 30_000);
    assert.equal(v.getUint32(4), 2_000);
    const types: number[] = [];
    for (let p = 8; p < m.body.length; p += m.body[p + 1]! * 8) {
      types.push(m.body[p]!);
      if (m.body[p] === 5) assert.equal(v.getUint32(p + 4), 1400);
      if (m.body[p] === 3) {
        assert.equal(m.body[p + 2], 64);
        assert.equal(m.body[p + 3], 0xc0);
        assert.equal(v.getUint32(p + 4), 86_400);
        assert.equal(v.getUint32(p + 8), 14_400);
      }
      if (m.body[p] === 24) {
        assert.equal(m.body[p + 2], 48);
        assert.equal((m.body[p + 3]! >> 3) & 3, 3, "route preference low");
        assert.equal(v.getUint32(p + 4), 0xffffffff);
      }
    }
    assert.deepEqual(types, [1, 5, 3, 24, 25, 31]);
    l.r.close();
  });
  await t.step("decrement_lifetimes counts the prefix lifetimes down", () => {
    const base = settings().prefixes[0]!;
    const l = lab({
      prefixes: [{
        ...base,
        validLifetime: 3600 * S,
        preferredLifetime: 1800 * S,
        decrementLifetimes: true,
      }],
    });
    l.clock.advance(1000 * S);
    const last = l.ras().at(-1)!;
    const m = readIcmp6(last.f);
    const v = new DataView(m.body.buffer, m.body.byteOffset);
    const p = 8 + 8; // after the SLLA option
    assert.equal(m.body[p], 3);
    const valid = v.getUint32(p + 4);
    assert.equal(valid, Math.floor((3600 * S - last.at) / 1000));
    l.r.close();
  });
  await t.step("ra.stop() sends 3 final RAs with router lifetime 0 at once", () => {
    const l = lab();
    l.clock.advance(60 * S);
    const n = l.ras().length;
    const now = l.clock.now();
    l.r.ra.stop();
    const fin = l.ras().slice(n);
    assert.equal(fin.length, 3);
    for (const x of fin) {
      assert.equal(x.at, now);
      assert.equal(routerLifetime(x.f), 0);
      assert.equal(readIpv6(x.f).dst, "ff02::1");
    }
    l.clock.advance(1000 * S);
    assert.equal(l.ras().length, n + 3, "nothing after stop");
    assert.equal(l.r.ra.stats.finalSent, 3);
    l.r.close();
  });
  await t.step("stack.close() sends the final RAs too", () => {
    const l = lab();
    l.clock.advance(60 * S);
    const n = l.ras().length;
    l.r.close();
    assert.equal(l.ras().slice(n).filter((x) => routerLifetime(x.f) === 0).length, 3);
  });
  await t.step("an RA of another router with other parameters is counted (§6.2.7)", () => {
    const l = lab({ curHopLimit: 64 });
    l.clock.advance(10 * S);
    const body = new Uint8Array(8);
    const ra = icmp6("fe80::a", "ff02::1", T6.RA, 0, (32 << 24) | 1800, body);
    l.host.sendMulticast(
      ip6({ src: "fe80::a", dst: "ff02::1", proto: NH.ICMP6, hopLimit: 255, payload: ra }),
      "ff02::1",
    );
    l.clock.advance(1);
    assert.equal(l.r.ra.stats.inconsistentAdvertisements, 1);
    l.r.close();
  });
});
