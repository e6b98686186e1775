/**
 * IPv6 under the floods of bench:floods (issue #16), on the manual clock:
 * what a flood of one kind may cost and what it must not take from others.
 */
import assert from "node:assert/strict";
import { ManualClock, SeededRandom, Stack } from "../../../stack/mod.ts";
import { parseIpv6 } from "../../../stack/wire/mod.ts";
import { RA_NEW_PER_SECOND } from "../../../stack/ipv6/slaac.ts";
import { assertDelta, Hub, rawMac, watch } from "../../topology/_topology.ts";
import {
  icmp6,
  ip6,
  neighbor6,
  NH,
  ns,
  RawHost6,
  readIpv6,
  routerLab6,
  T6,
} from "../../topology/_topology6.ts";

const R = "2001:db8:1::1";

/** fe80::<i> from MAC 02:00:00:00:<i>: a random source of flood_solicitate6. */
function floodSource(i: number): { ll: string; mac: Uint8Array } {
  return {
    ll: `fe80::${(0x1000 + i).toString(16)}`,
    mac: new Uint8Array([0x02, 0, 0, 0, (i >> 8) & 0xff, i & 0xff]),
  };
}

/** An NS for the router from flood source `i`, with a's MAC so that a sees the answers. */
function sendFloodNs(lab: ReturnType<typeof routerLab6>, i: number): void {
  const { ll } = floodSource(i);
  lab.a.sendMulticast(
    ip6({
      src: ll,
      dst: "ff02::1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: ns(ll, "ff02::1", R, { slla: lab.a.mac }),
    }),
    "ff02::1",
  );
}

Deno.test("NS from unknown sources are neither entered nor answered once the neighbour table is full, unless they repeat", () => {
  const lab = routerLab6({ stack: { neighbor: { maxEntries: 16 } } });
  const nic = lab.rLan;
  const sendNs = (i: number) => sendFloodNs(lab, i);
  // Fill the table (a and b hold two entries already, on their own NICs or this one).
  for (let i = 0; i < 40; i++) sendNs(i);
  lab.clock.advance(10);
  let d = watch(lab.r);
  lab.a.clear();
  for (let i = 100; i < 200; i++) sendNs(i);
  lab.clock.advance(10);
  // A flood's random sources solicit once each: no entry (one counter for
  // the refusal), no resolution of the source, no queue, and no answer:
  // an answer is a write per flood packet.
  assertDelta(d(), {
    "ndp.solicitationsReceived": 100,
    "ndp.advertisementsSent": 0,
    "ndp.solicitationsUnanswered": 100,
    "ndp.solicitationsSent": 0,
    [`neigh6.${nic.name}.tableFullDrops`]: 100,
  });
  assert.equal(lab.a.icmp6(T6.NA).length, 0);
  assert.equal(neighbor6(lab.r, nic, floodSource(150).ll), undefined, "not entered");
  // A host repeats its NS after RetransTimer (RFC 4861 §7.2.2): the second
  // is answered straight to its link-layer address, still without an entry.
  lab.clock.advance(1000);
  d = watch(lab.r);
  sendNs(150);
  lab.clock.advance(10);
  assertDelta(d(), {
    "ndp.advertisementsSent": 1,
    "ndp.solicitationsUnanswered": 0,
    [`neigh6.${nic.name}.tableFullDrops`]: 1,
  });
  const nas = lab.a.icmp6(T6.NA);
  assert.equal(nas.length, 1);
  assert.deepEqual(readIpv6(nas[0]!).dst, floodSource(150).ll);
  assert.equal(neighbor6(lab.r, nic, floodSource(150).ll), undefined, "not entered");
  // A source is remembered for 2–4 s: 5 s later its NS is a first one again.
  lab.clock.advance(5000);
  d = watch(lab.r);
  sendNs(150);
  lab.clock.advance(10);
  assertDelta(d(), { "ndp.advertisementsSent": 0, "ndp.solicitationsUnanswered": 1 });
  // A neighbour already in the table is answered at once.
  assert.ok(neighbor6(lab.r, nic, "2001:db8:1::10") !== undefined);
  lab.a.clear();
  lab.a.sendMulticast(
    ip6({
      src: "2001:db8:1::10",
      dst: "ff02::1:ff00:1",
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: ns("2001:db8:1::10", "ff02::1:ff00:1", R, { slla: lab.a.mac }),
    }),
    "ff02::1:ff00:1",
  );
  lab.clock.advance(10);
  assert.equal(lab.a.icmp6(T6.NA).length, 1);
});

Deno.test("a host that comes during an NS flood gets answers though the flood's entries, answered through them, fill the table", () => {
  const lab = routerLab6({ stack: { neighbor: { maxEntries: 16 } } });
  const nic = lab.rLan;
  for (let i = 0; i < 40; i++) sendFloodNs(lab, i);
  lab.clock.advance(10);
  // The first sources were entered and answered through their entries,
  // which moved them to DELAY (RFC 4861 §7.3.3); the rest were refused.
  const entered = Array.from({ length: 40 }, (_, i) => neighbor6(lab.r, nic, floodSource(i).ll))
    .filter((e) => e !== undefined);
  assert.ok(entered.length >= 10, `${entered.length} entered`);
  assert.ok(entered.every((e) => e.state === "DELAY"), JSON.stringify(entered));
  // A new host pings the router: the router's reply needs the host's entry.
  const host = new RawHost6(lab.lan.port("h"), rawMac(7), ["2001:db8:1::77"]);
  host.gatewayMac = nic.mac;
  const d = watch(lab.r);
  host.send(
    ip6({
      src: "2001:db8:1::77",
      dst: R,
      proto: NH.ICMP6,
      payload: icmp6("2001:db8:1::77", R, T6.ECHO_REQUEST, 0, (1 << 16) | 1, new Uint8Array(8)),
    }),
  );
  lab.clock.advance(10);
  assert.equal(host.icmp6(T6.ECHO_REPLY).length, 1, "answered");
  assert.equal(neighbor6(lab.r, nic, "2001:db8:1::77")?.state, "REACHABLE");
  assertDelta(d(), {
    // Down to 7/8 of the limit, as Linux's forced GC frees to gc_thresh2.
    [`neigh6.${nic.name}.entriesEvicted`]: 2,
    [`neigh6.${nic.name}.tableFullDrops`]: 0,
  });
});

/** A seeded linear congruential generator (24-bit values): the floods' randomness, reproducible. */
function lcg(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
}

/** The 25 random /64 prefixes under `top` (their first 16 bits) of one flood_router26 RA. */
function floodPrefixes(rnd: () => number, top: number): Uint8Array[] {
  return Array.from({ length: 25 }, () => {
    const p = new Uint8Array(16);
    p.set([top >> 8, top & 0xff, rnd() & 0xff, rnd() & 0xff, rnd() & 0xff, rnd() & 0xff]);
    return p;
  });
}

/** An RA from `src` to all-nodes: router lifetime `lifetime` s, SLLA `mac`, these prefixes (/64, on-link, autonomous). */
function ra(
  src: string,
  mac: Uint8Array,
  lifetime: number,
  prefixes: Uint8Array[],
  reachableMs = 0,
  retransMs = 0,
): Uint8Array {
  const opts: number[] = [1, 1, ...mac];
  for (const p of prefixes) {
    // RFC 4861 §4.6.2: type 3, length 4, /64, L and A, valid and preferred 130,816 s.
    opts.push(3, 4, 64, 0xc0, 0, 1, 0xff, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, ...p);
  }
  const body = new Uint8Array(8 + opts.length);
  new DataView(body.buffer).setUint32(0, reachableMs);
  new DataView(body.buffer).setUint32(4, retransMs);
  body.set(opts, 8);
  return ip6({
    src,
    dst: "ff02::1",
    proto: NH.ICMP6,
    hopLimit: 255,
    payload: icmp6(src, "ff02::1", T6.RA, 0, (64 << 24) | lifetime, body),
  });
}

Deno.test("an RA flood costs a parse a few times a second and locks no router out", () => {
  const clock = new ManualClock();
  const hub = new Hub(clock, "wan");
  const h = new Stack({ clock, random: new SeededRandom(7), hostname: "h" });
  const nic = h.addNic(hub.port("h"), { name: "wan0", ipv6: true });
  h.ra.enableHost(nic, { solicit: false });
  const peer = new RawHost6(hub.port("r"), rawMac(1), ["fe80::1"]);
  const send = (p: Uint8Array) => peer.sendMulticast(p, "ff02::1");
  const routers = () => h.ra.hostState(nic)!.routers.map((r) => r.address);
  const KNOWN = "fe80::1", NEW = "fe80::2";
  const known = () => send(ra(KNOWN, rawMac(1), 9, [parseIpv6("2001:db8:1::")]));
  known();
  clock.advance(100);
  assert.deepEqual(routers(), [KNOWN]);

  // flood_router26 for 15 s: 1,000 RAs a second, each from a new router
  // with 25 new prefixes; the known router goes on with an RA every 3 s
  // (router lifetime 9 s: three missed RAs and it would be gone).
  const rnd = lcg(99);
  const accepted0 = h.ra.stats.advertisementsAccepted;
  for (let ms = 0; ms < 15_000; ms++) {
    const prefixes = floodPrefixes(rnd, 0x2012);
    const r = rnd();
    send(
      // flood_router26's RAs carry Reachable Time 3,145,728 ms and Retrans Timer 1,966,080 ms too.
      ra(
        `fe80::${(r & 0xffff).toString(16)}:${(r >>> 16).toString(16)}`,
        rawMac(2),
        65_535,
        prefixes,
        3_145_728,
        1_966_080,
      ),
    );
    if (ms % 3000 === 0) known();
    clock.advance(1);
    hub.log.length = 0;
    peer.clear();
  }
  const parsed = h.ra.stats.advertisementsAccepted - accepted0;
  // At most RA_NEW_PER_SECOND a second of the flood (and its burst), plus the known router's six.
  assert.ok(parsed <= RA_NEW_PER_SECOND * 16 + 6, `${parsed} RAs parsed`);
  assert.ok(h.ra.stats.advertisementsRateLimited >= 15_000 - parsed);
  const st = h.ra.hostState(nic)!;
  assert.equal(st.routers.length, 16, "the flood filled the default router list");
  assert.ok(routers().includes(KNOWN), "the known router kept its place");
  assert.equal(st.prefixes.length, 16);
  // The RAs not taken touch nothing: their Source Link-Layer Address
  // options do not fill the neighbour table (which would push out the
  // entries of real neighbours).
  const neighbors = h.ipv6.nicState(nic)!.neighbors.size;
  assert.ok(neighbors <= parsed + 2, `${neighbors} neighbour entries`);
  // Nor do the flood's routers set the link's parameters: a 32-minute
  // RetransTimer would leave a neighbour whose first answer was lost
  // unresolved for that long.
  assert.equal(h.ipv6.nicState(nic)!.neighbors.retransTimeMs(), 1000);
  assert.ok(h.ra.stats.linkParametersIgnored > 0);

  // After the flood a new router (RAs every 3.5 s) is learned at its second RA.
  const t0 = clock.now();
  let learnedAt = -1;
  for (let i = 0; i < 3 && learnedAt < 0; i++) {
    send(ra(NEW, rawMac(3), 1800, [parseIpv6("2001:db8:2::")]));
    clock.advance(10);
    if (routers().includes(NEW)) learnedAt = clock.now() - t0;
    else clock.advance(3490);
  }
  assert.ok(learnedAt >= 0 && learnedAt <= 2 * 3500, `learned after ${learnedAt} ms`);
  assert.ok(routers().includes(KNOWN));
  h.close();
});

Deno.test("a router whose WAN learns from RAs forwards both ways through an RA flood on that WAN", () => {
  const lab = routerLab6();
  lab.r.ra.enableHost(lab.rWan, { solicit: false });
  const atk = new RawHost6(lab.wan.port("atk"), rawMac(9), ["fe80::9"]);
  lab.b.gatewayMac = lab.rWan.mac;
  lab.a.gatewayMac = lab.rLan.mac;
  const rnd = lcg(5);
  const echo = (src: string, dst: string, type: number, seq: number) =>
    ip6({
      src,
      dst,
      proto: NH.ICMP6,
      payload: icmp6(src, dst, type, 0, (1 << 16) | seq, new Uint8Array(8)),
    });
  let requests = 0, replies = 0, sent = 0;
  // 5 s of flood_router26 at 3 RAs a millisecond, each from a new router
  // with 25 new prefixes (random, outside both links), router lifetime
  // 65,535 s; an echo request a → b every 50 ms, which b answers.
  for (let ms = 0; ms < 5000; ms++) {
    const prefixes = floodPrefixes(rnd, 0x2004);
    const r = rnd();
    for (let k = 1; k <= 3; k++) {
      atk.sendMulticast(
        ra(
          `fe80::${(r & 0xffff).toString(16)}:${k}`,
          rawMac(2),
          65_535,
          prefixes,
          3_145_728,
          1_966_080,
        ),
        "ff02::1",
      );
    }
    if (ms % 50 === 0) {
      lab.a.send(echo("2001:db8:1::10", "2001:db8:2::10", T6.ECHO_REQUEST, sent++));
    }
    lab.clock.advance(1);
    for (const f of lab.b.icmp6(T6.ECHO_REQUEST)) {
      requests++;
      lab.b.send(echo("2001:db8:2::10", "2001:db8:1::10", T6.ECHO_REPLY, readIpv6(f).l4[7]!));
    }
    lab.clock.advance(0);
    replies += lab.a.icmp6(T6.ECHO_REPLY).length;
    lab.a.clear();
    lab.b.clear();
    atk.clear();
    lab.wan.log.length = 0;
    lab.lan.log.length = 0;
  }
  assert.equal(requests, sent);
  assert.ok(replies >= sent - 1, `${replies} of ${sent} replies`);
  assert.ok(lab.r.ra.stats.advertisementsRateLimited > 10_000);
});
