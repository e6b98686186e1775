import assert from "node:assert/strict";
import { ManualClock, type Timer } from "../../stack/clock.ts";
import { type Random, SeededRandom } from "../../stack/random.ts";
import { HEADROOM, PacketBuffer } from "../../stack/wire/packet_buffer.ts";
import {
  NeighborCache,
  type NeighborConfig,
  type NeighborProtocol,
  type NeighborStats,
  NudState,
} from "../../stack/neighbor_cache.ts";

// ---- harness ----

/** A ManualClock that counts the timers it was asked for. */
class CountingClock extends ManualClock {
  scheduled = 0;
  override schedule(delayMs: number, fn: () => void): Timer {
    this.scheduled++;
    return super.schedule(delayMs, fn);
  }
}

/** Returns the given floats in turn (the last one forever). */
class ListRandom implements Random {
  #i = 0;
  constructor(readonly values: number[]) {}
  float(): number {
    const v = this.values[Math.min(this.#i, this.values.length - 1)]!;
    this.#i++;
    return v;
  }
  uint32(): number {
    return Math.floor(this.float() * 4_294_967_296);
  }
}

/** MACs named by one letter: "a" is 02:00:00:00:00:0a. */
function mac(name: string): Uint8Array {
  return new Uint8Array([2, 0, 0, 0, 0, parseInt(name, 16)]);
}
function macName(m: Uint8Array): string {
  return m[5]!.toString(16);
}

const KEY = 1;
const PKT_SIZE = 256;

interface Harness {
  clock: CountingClock;
  events: string[];
  cache: NeighborCache<number>;
  stats: NeighborStats;
}

function harness(config?: Partial<NeighborConfig>, random: Random = new ListRandom([0.5])) {
  const clock = new CountingClock();
  const events: string[] = [];
  const protocol: NeighborProtocol<number> = {
    sendProbe: (k, to) => events.push(to === null ? `mprobe ${k}` : `uprobe ${k} ${macName(to)}`),
    sendQueued: (k, m, p) => events.push(`send ${k} ${macName(m)} #${p.data[p.start]}`),
    resolutionFailed: (k, p) => events.push(`fail ${k} #${p.data[p.start]}`),
  };
  const cache = new NeighborCache<number>({ clock, random, protocol, config });
  return { clock, events, cache, stats: cache.stats };
}

/** A 60-byte frame whose first byte is `tag` (the caller's packet; the cache queues a copy). */
function pkt(tag: number): PacketBuffer {
  const p = new PacketBuffer(PKT_SIZE);
  p.setFrame(HEADROOM, 60);
  p.data[HEADROOM] = tag;
  return p;
}

function stateOf(h: Harness, key = KEY): string | null {
  const e = h.cache.get(key);
  if (e === undefined) return null;
  return Object.entries(NudState).find(([, v]) => v === e.state)![0];
}

// ---- operations of the transition table ----

type Op = (h: Harness) => void;

const resolve = (tag = 1, key = KEY): Op => (h) => h.cache.resolve(key, pkt(tag));
const advance = (ms: number): Op => (h) => h.clock.advance(ms);
const adv = (m: string | null, s: boolean, o: boolean, key = KEY): Op => (h) =>
  h.cache.handleAdvertisement(key, m === null ? null : mac(m), { solicited: s, override: o });
const sol = (m: string, create = true, key = KEY): Op => (h) =>
  h.cache.handleSolicitation(key, mac(m), create);
const confirm = (key = KEY): Op => (h) => h.cache.confirm(key);
const addStatic = (m: string, key = KEY): Op => (h) => h.cache.addStatic(key, mac(m));
const remove = (key = KEY): Op => (h) => h.cache.remove(key);
const retrans = (ms: number): Op => (h) => h.cache.setRetransTime(ms);

/** The entry's state (null: no entry) and, if given, its MAC. */
const is = (state: string | null, m?: string | null, key = KEY): Op => (h) => {
  assert.equal(stateOf(h, key), state, `state at t=${h.clock.now()}`);
  if (m !== undefined) {
    const got = h.cache.get(key)?.mac ?? null;
    assert.equal(got === null ? null : macName(got), m, `mac at t=${h.clock.now()}`);
  }
};
/** `lookup()` answers this MAC (or null). */
const lookup = (m: string | null, key = KEY): Op => (h) => {
  const got = h.cache.lookup(key);
  assert.equal(got === null ? null : macName(got), m, `lookup at t=${h.clock.now()}`);
};
/** Exactly these protocol calls happened since the last check. */
const events = (...want: string[]): Op => (h) =>
  assert.deepEqual(h.events.splice(0), want, `events at t=${h.clock.now()}`);
/** These counters have these values. */
const counts = (want: Partial<NeighborStats>): Op => (h) => {
  const got: Record<string, number> = {};
  for (const k of Object.keys(want)) got[k] = h.stats[k as keyof NeighborStats];
  assert.deepEqual(got, want);
};
const pending = (n: number): Op => (h) => assert.equal(h.clock.pending(), n, "pending timers");

// Reusable prefixes (ReachableTime is exactly 30 s: the random factor is 1.0).
const toReachable: Op[] = [resolve(1), adv("a", true, false), events("mprobe 1", "send 1 a #1")];
const toStale: Op[] = [sol("a"), is("STALE", "a")];
const toDelay: Op[] = [...toStale, lookup("a"), is("DELAY")];
const toProbe: Op[] = [...toDelay, advance(5000), is("PROBE"), events("uprobe 1 a")];

interface Row {
  name: string;
  config?: Partial<NeighborConfig>;
  ops: Op[];
}

const ROWS: Row[] = [
  {
    name: "INCOMPLETE sends multicastProbes solicitations RetransTimer apart, then FAILED",
    ops: [
      resolve(1),
      events("mprobe 1"),
      is("INCOMPLETE", null),
      lookup(null),
      resolve(2),
      events(),
      advance(999),
      events(),
      advance(1),
      events("mprobe 1"),
      advance(1000),
      events("mprobe 1"),
      advance(999),
      is("INCOMPLETE"),
      advance(1),
      events("fail 1 #1", "fail 1 #2"),
      is("FAILED", null),
      lookup(null),
      pending(0),
      counts({
        resolutionsStarted: 1,
        multicastProbesSent: 3,
        resolutionsFailed: 1,
        queuedPacketsFailed: 2,
        packetsQueued: 2,
      }),
    ],
  },
  {
    name: "FAILED restarts resolution on a new packet",
    ops: [
      resolve(1),
      advance(3000),
      events("mprobe 1", "mprobe 1", "mprobe 1", "fail 1 #1"),
      is("FAILED"),
      resolve(3),
      events("mprobe 1"),
      is("INCOMPLETE"),
      adv("a", true, false),
      events("send 1 a #3"),
      is("REACHABLE", "a"),
      counts({ resolutionsStarted: 2, resolutionsFailed: 1 }),
    ],
  },
  {
    name: "INCOMPLETE + solicited advertisement → REACHABLE, queue sent in order",
    ops: [
      resolve(1),
      resolve(2),
      resolve(3),
      events("mprobe 1"),
      adv("a", true, false),
      events("send 1 a #1", "send 1 a #2", "send 1 a #3"),
      is("REACHABLE", "a"),
      lookup("a"),
      pending(1),
      advance(5000),
      events(),
      counts({ queuedPacketsSent: 3, confirmations: 1 }),
    ],
  },
  {
    name: "INCOMPLETE + unsolicited advertisement → STALE, queue sent",
    ops: [resolve(1), adv("a", false, true), events("mprobe 1", "send 1 a #1"), is("STALE", "a")],
  },
  {
    name: "INCOMPLETE + advertisement without a target link-layer address is ignored",
    ops: [
      resolve(1),
      adv(null, true, true),
      is("INCOMPLETE", null),
      counts({ advertisementsIgnored: 1 }),
    ],
  },
  {
    name: "INCOMPLETE + solicitation from the neighbor → STALE, queue sent",
    ops: [resolve(1), sol("a", false), events("mprobe 1", "send 1 a #1"), is("STALE", "a")],
  },
  {
    name: "REACHABLE → STALE after ReachableTime",
    ops: [
      ...toReachable,
      advance(29_999),
      is("REACHABLE"),
      advance(1),
      is("STALE", "a"),
      pending(0),
      events(),
    ],
  },
  {
    name: "STALE → DELAY on use → PROBE after DELAY_FIRST_PROBE_TIME → unicast probes → FAILED",
    ops: [
      ...toStale,
      pending(0),
      lookup("a"),
      is("DELAY", "a"),
      pending(1),
      advance(4999),
      is("DELAY"),
      events(),
      advance(1),
      is("PROBE", "a"),
      events("uprobe 1 a"),
      lookup("a"),
      advance(1000),
      events("uprobe 1 a"),
      advance(1000),
      events("uprobe 1 a"),
      advance(999),
      is("PROBE"),
      advance(1),
      is("FAILED", null),
      lookup(null),
      pending(0),
      counts({ unicastProbesSent: 3, resolutionsFailed: 1, multicastProbesSent: 0 }),
    ],
  },
  {
    name: "DELAY + upper-layer confirmation → REACHABLE, no probe",
    ops: [...toDelay, advance(2000), confirm(), is("REACHABLE"), advance(10_000), events()],
  },
  {
    name: "DELAY + solicited advertisement, same MAC → REACHABLE",
    ops: [...toDelay, adv("a", true, false), is("REACHABLE", "a"), advance(10_000), events()],
  },
  {
    name: "PROBE + solicited advertisement → REACHABLE, probing stops",
    ops: [...toProbe, adv("a", true, false), is("REACHABLE", "a"), advance(10_000), events()],
  },
  {
    name: "REACHABLE + O=0 with a different MAC → STALE, MAC kept (even if S=1)",
    ops: [
      ...toReachable,
      adv("b", true, false),
      is("STALE", "a"),
      counts({ linkAddressChanges: 0 }),
    ],
  },
  {
    name: "STALE + O=0 with a different MAC → ignored",
    ops: [...toStale, adv("b", false, false), is("STALE", "a")],
  },
  {
    name: "DELAY + O=0 with a different MAC → ignored",
    ops: [...toDelay, adv("b", true, false), is("DELAY", "a")],
  },
  {
    name: "REACHABLE + O=1 S=0 with a different MAC → STALE with the new MAC",
    ops: [
      ...toReachable,
      adv("b", false, true),
      is("STALE", "b"),
      counts({ linkAddressChanges: 1 }),
    ],
  },
  {
    name: "STALE + O=1 S=1 with a different MAC → REACHABLE with the new MAC",
    ops: [...toStale, adv("b", true, true), is("REACHABLE", "b")],
  },
  {
    name: "STALE + S=1 with the same MAC (O=0) → REACHABLE",
    ops: [...toStale, adv("a", true, false), is("REACHABLE", "a")],
  },
  {
    name: "STALE + S=0 O=1 with the same MAC → stays STALE",
    ops: [...toStale, adv("a", false, true), is("STALE", "a")],
  },
  {
    name: "REACHABLE + S=0 with the same MAC → stays REACHABLE",
    ops: [...toReachable, adv("a", false, true), is("REACHABLE", "a")],
  },
  {
    name: "REACHABLE + S=1 same MAC re-confirms: lifetime counts from the advertisement",
    ops: [
      ...toReachable,
      advance(20_000),
      adv("a", true, false),
      advance(29_999),
      is("REACHABLE"),
      advance(1),
      is("STALE"),
    ],
  },
  {
    name: "advertisement for an unknown address is ignored",
    ops: [adv("a", true, true), is(null), counts({ advertisementsIgnored: 1 })],
  },
  {
    name: "solicitation: create=false makes no entry, create=true makes STALE",
    ops: [sol("a", false), is(null), sol("a", true), is("STALE", "a"), pending(0)],
  },
  {
    name: "solicitation with a different MAC on REACHABLE → STALE with the new MAC",
    ops: [...toReachable, sol("b", false), is("STALE", "b"), pending(0)],
  },
  {
    name: "solicitation with the same MAC keeps REACHABLE",
    ops: [...toReachable, sol("a", false), is("REACHABLE", "a"), pending(1)],
  },
  {
    name: "solicitation with the same MAC keeps DELAY and its timer",
    ops: [...toDelay, sol("a"), is("DELAY"), advance(5000), is("PROBE")],
  },
  {
    name: "FAILED + solicitation → STALE",
    ops: [resolve(1), advance(3000), is("FAILED"), sol("a", false), is("STALE", "a")],
  },
  {
    name: "FAILED + advertisement → REACHABLE",
    ops: [resolve(1), advance(3000), is("FAILED"), adv("a", true, true), is("REACHABLE", "a")],
  },
  {
    name: "PERMANENT ignores advertisements and solicitations and never expires",
    ops: [
      addStatic("a"),
      is("PERMANENT", "a"),
      pending(0),
      adv("b", true, true),
      sol("b"),
      confirm(),
      is("PERMANENT", "a"),
      advance(3_600_000),
      lookup("a"),
      is("PERMANENT", "a"),
      events(),
      counts({ advertisementsIgnored: 1 }),
    ],
  },
  {
    name: "addStatic on INCOMPLETE sends its queue and stops probing",
    ops: [
      resolve(1),
      addStatic("c"),
      events("mprobe 1", "send 1 c #1"),
      is("PERMANENT", "c"),
      pending(0),
      advance(10_000),
      events(),
    ],
  },
  {
    name: "addStatic replaces a dynamic entry's MAC",
    ops: [...toReachable, addStatic("c"), is("PERMANENT", "c"), pending(0)],
  },
  {
    name: "REACHABLE + confirm() extends the lifetime",
    ops: [
      ...toReachable,
      advance(20_000),
      confirm(),
      advance(10_000),
      is("REACHABLE"),
      advance(19_999),
      is("REACHABLE"),
      advance(1),
      is("STALE"),
      counts({ confirmations: 2 }),
    ],
  },
  {
    name: "STALE + confirm() → REACHABLE",
    ops: [...toStale, confirm(), is("REACHABLE"), pending(1)],
  },
  {
    name: "PROBE + confirm() → REACHABLE, probing stops",
    ops: [...toProbe, confirm(), is("REACHABLE"), advance(10_000), events()],
  },
  {
    name: "INCOMPLETE + confirm() stays INCOMPLETE",
    ops: [resolve(1), confirm(), is("INCOMPLETE"), counts({ confirmations: 0 })],
  },
  {
    name: "the queue keeps queueLen packets and drops the oldest",
    config: { queueLen: 2 },
    ops: [
      resolve(1),
      resolve(2),
      resolve(3),
      adv("a", true, true),
      events("mprobe 1", "send 1 a #2", "send 1 a #3"),
      counts({ packetsQueued: 3, queuedPacketsDropped: 1, queuedPacketsSent: 2 }),
    ],
  },
  {
    name: "queueLen 0 queues nothing but still resolves",
    config: { queueLen: 0 },
    ops: [
      resolve(1),
      adv("a", true, true),
      events("mprobe 1"),
      counts({ queuedPacketsDropped: 1 }),
    ],
  },
  {
    name: "resolve() on a usable entry sends the packet at once",
    ops: [...toReachable, resolve(7), events("send 1 a #7"), is("REACHABLE")],
  },
  {
    name: "resolve() on STALE sends at once and moves to DELAY",
    ops: [...toStale, resolve(7), events("send 1 a #7"), is("DELAY"), pending(1)],
  },
  {
    name: "remove() cancels the timer and discards the queue",
    ops: [
      resolve(1),
      resolve(2),
      remove(),
      is(null),
      pending(0),
      advance(10_000),
      events("mprobe 1"),
      counts({ queuedPacketsDiscarded: 2 }),
    ],
  },
  {
    name: "setRetransTime() spaces the next solicitations",
    ops: [
      retrans(250),
      resolve(1),
      advance(250),
      advance(250),
      events("mprobe 1", "mprobe 1", "mprobe 1"),
      advance(250),
      is("FAILED"),
    ],
  },
  {
    name: "unicastProbes 0: DELAY expiry fails at once",
    config: { unicastProbes: 0 },
    ops: [...toDelay, advance(5000), is("FAILED"), events(), pending(0)],
  },
  {
    name: "multicastProbes 1: one solicitation then FAILED",
    config: { multicastProbes: 1 },
    ops: [resolve(1), advance(1000), events("mprobe 1", "fail 1 #1"), is("FAILED")],
  },
];

Deno.test("NeighborCache NUD transitions", async (t) => {
  for (const row of ROWS) {
    await t.step(row.name, () => {
      const h = harness(row.config);
      for (const op of row.ops) op(h);
      // No leaks: after flush no timer is pending and no queued copy is held.
      h.cache.flush();
      assert.equal(h.cache.size, 0);
      assert.equal(h.clock.pending(), 0, "timers left after flush");
      assert.equal(h.cache.queuedBytes, 0, "queued bytes left after flush");
    });
  }
});

Deno.test("NeighborCache.lookup() on a hot REACHABLE entry creates no timers", () => {
  const h = harness();
  for (const op of toReachable) op(h);
  const scheduled = h.clock.scheduled;
  const pend = h.clock.pending();
  const lookups = h.stats.lookups;
  for (let i = 0; i < 100_000; i++) {
    if (h.cache.lookup(KEY) === null) throw new Error("miss");
    if (i % 1000 === 0) h.cache.confirm(KEY); // TCP progress: also no timer
  }
  assert.equal(h.clock.scheduled, scheduled);
  assert.equal(h.clock.pending(), pend);
  assert.equal(h.stats.lookups, lookups + 100_000);
  assert.equal(h.stats.lookupMisses, 0);
  // The returned MAC is the same buffer every time (no copy).
  assert.equal(h.cache.lookup(KEY), h.cache.lookup(KEY));
});

Deno.test("NeighborCache ReachableTime is BaseReachableTime × uniform[0.5, 1.5)", async (t) => {
  await t.step("the random factor spans [0.5, 1.5)", () => {
    for (const [f, want] of [[0, 15_000], [0.5, 30_000], [0.999_999_9, 44_999]] as const) {
      assert.equal(harness(undefined, new ListRandom([f])).cache.reachableTimeMs(), want);
    }
    const r = new SeededRandom(42);
    let lo = Infinity, hi = 0;
    for (let i = 0; i < 2000; i++) {
      const v = harness(undefined, r).cache.reachableTimeMs();
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(lo >= 15_000 && lo < 16_000, `min ${lo}`);
    assert.ok(hi < 45_000 && hi > 44_000, `max ${hi}`);
  });
  await t.step("setBaseReachableTime() re-draws; 0 is ignored; values are clamped", () => {
    const h = harness(undefined, new ListRandom([0.5, 0, 1 - 2 ** -20, 0.5]));
    assert.equal(h.cache.reachableTimeMs(), 30_000);
    h.cache.setBaseReachableTime(10_000);
    assert.equal(h.cache.reachableTimeMs(), 5_000);
    h.cache.setBaseReachableTime(10_000); // unchanged: no new draw
    assert.equal(h.cache.reachableTimeMs(), 5_000);
    h.cache.setBaseReachableTime(0);
    h.cache.setBaseReachableTime(NaN);
    assert.equal(h.cache.reachableTimeMs(), 5_000);
    h.cache.setBaseReachableTime(10_000_000); // clamped to 3,600,000
    assert.equal(h.cache.reachableTimeMs(), 5_399_996); // ⌊3.6e6 × (1.5 − 2⁻²⁰)⌋
  });
  await t.step("re-drawn every REACHABLE_TIME_REFRESH_MS", () => {
    const h = harness(undefined, new ListRandom([0.5, 0]));
    assert.equal(h.cache.reachableTimeMs(), 30_000);
    h.clock.advance(299_999);
    assert.equal(h.cache.reachableTimeMs(), 30_000);
    h.clock.advance(1);
    assert.equal(h.cache.reachableTimeMs(), 15_000);
  });
  await t.step("a new BaseReachableTime applies to the next REACHABLE period", () => {
    const h = harness();
    h.cache.setBaseReachableTime(4_000); // factor 1.0 → 4 s
    for (const op of toReachable) op(h);
    h.clock.advance(3_999);
    is("REACHABLE")(h);
    h.clock.advance(1);
    is("STALE")(h);
  });
});

Deno.test("NeighborCache garbage collection and the table limit", async (t) => {
  await t.step(
    "forced GC frees FAILED first, then entries nothing used, idle 5 s, oldest first",
    () => {
      const h = harness({ maxEntries: 8, gcStaleTimeMs: 60_000 });
      // STALE: 10 @0, 11 @100, 12 @200, 20..22 @1000. FAILED: 30 @4000, 31 @4500.
      for (const k of [10, 11, 12]) {
        h.cache.handleSolicitation(k, mac("a"), true);
        h.clock.advance(100);
      }
      h.clock.advance(700);
      for (const k of [20, 21, 22]) h.cache.handleSolicitation(k, mac("a"), true);
      h.cache.resolve(30, pkt(1));
      h.clock.advance(500);
      h.cache.resolve(31, pkt(1));
      h.cache.addStatic(99, mac("f")); // PERMANENT: not counted, never evicted
      h.clock.advance(3000);
      assert.equal(stateOf(h, 30), "FAILED");
      assert.equal(stateOf(h, 31), "FAILED");
      assert.equal(h.cache.size, 9);
      // Full (8 dynamic). A new entry reaps the FAILED entry that failed first.
      h.cache.resolve(40, pkt(1));
      assert.equal(stateOf(h, 30), null);
      assert.equal(stateOf(h, 31), "FAILED");
      assert.equal(stateOf(h, 40), "INCOMPLETE");
      h.cache.resolve(41, pkt(1));
      assert.equal(stateOf(h, 31), null);
      assert.equal(h.stats.entriesEvicted, 2);
      // Full again, nothing FAILED: a solicitation from a new neighbour is
      // refused, the entries solicitations made being younger than 5 s ...
      h.cache.handleSolicitation(43, mac("a"), true);
      assert.equal(stateOf(h, 43), null);
      assert.equal(h.stats.tableFullDrops, 1);
      // ... but a packet of ours to send takes the oldest one's place at once.
      h.cache.resolve(42, pkt(1));
      assert.equal(stateOf(h, 42), "INCOMPLETE");
      assert.equal(stateOf(h, 10), null);
      // At t=60.2 s, 40, 41 and 42 have failed and go first, then the
      // entries solicitations made and nothing used, idle 5 s or more
      // (Linux's neigh_forced_gc spares the last 5 s), oldest first, one
      // per new entry.
      h.clock.advance(60_200 - h.clock.now());
      assert.equal(stateOf(h, 42), "FAILED");
      const order: (number | null)[] = [];
      for (const k of [50, 51, 52, 53, 54, 55]) {
        const before = new Set(h.cache.entries().map((e) => e.key));
        h.cache.resolve(k, pkt(1));
        const after = new Set(h.cache.entries().map((e) => e.key));
        order.push([...before].find((x) => !after.has(x)) ?? null);
      }
      assert.deepEqual(order, [40, 41, 42, 11, 12, 20]);
      assert.equal(stateOf(h, 55), "INCOMPLETE");
      assert.equal(stateOf(h, 21), "STALE");
      assert.equal(stateOf(h, 99), "PERMANENT");
      assert.equal(h.cache.size, 9);
      assert.equal(h.stats.tableFullDrops, 1);
      assert.equal(h.stats.entriesEvicted, 9);
      h.cache.flush();
      assert.equal(h.clock.pending(), 0);
      assert.equal(h.cache.queuedBytes, 0);
    },
  );

  await t.step(
    "a flood of solicitations from new sources does not push out a neighbour that carried traffic",
    () => {
      const h = harness({ maxEntries: 8, gcStaleTimeMs: 60_000 });
      // Key 1 carried traffic: resolved, answered, REACHABLE, then STALE and
      // unchanged for two minutes.
      h.cache.resolve(1, pkt(1));
      h.cache.handleAdvertisement(1, mac("a"), { solicited: true, override: true });
      h.clock.advance(120_000);
      assert.equal(stateOf(h, 1), "STALE");
      // The flood (NS or ARP from random sources, 1,000 a second) fills the table.
      for (let k = 100; k < 200; k++) {
        h.cache.handleSolicitation(k, mac("b"), true);
        h.clock.advance(1);
      }
      assert.equal(h.cache.size, 8);
      assert.equal(stateOf(h, 1), "STALE", "kept: the flood's entries are in the table");
      assert.equal(h.stats.tableFullDrops, 93);
      // A packet of ours to a new neighbour takes the place of the flood's
      // oldest entry at once (a host whose entry had expired gets back in).
      h.cache.resolve(2, pkt(1));
      assert.equal(stateOf(h, 2), "INCOMPLETE");
      assert.equal(stateOf(h, 100), null);
      assert.equal(h.stats.tableFullDrops, 93);
      // 5 s on, the flood's own entries make room for its new ones, oldest first.
      h.clock.advance(5_000);
      // (2 failed meanwhile: FAILED entries go first.)
      h.cache.handleSolicitation(300, mac("b"), true);
      assert.equal(stateOf(h, 2), null);
      h.cache.handleSolicitation(301, mac("b"), true);
      assert.equal(stateOf(h, 300), "STALE");
      assert.equal(stateOf(h, 301), "STALE");
      assert.equal(stateOf(h, 101), null);
      assert.equal(stateOf(h, 1), "STALE");
      // Traffic to 1 still finds its address.
      assert.deepEqual(h.cache.lookup(1), mac("a"));
    },
  );

  await t.step(
    "the flood's entries that our answers moved to DELAY and PROBE still give way to our traffic",
    () => {
      const h = harness({ maxEntries: 8, gcStaleTimeMs: 60_000 });
      // Each NS of the flood is answered through its new entry (RFC 4861
      // §7.3.3: STALE, sent to, DELAY), as ndp.ts does while there is room.
      for (let k = 100; k < 108; k++) {
        h.cache.handleSolicitation(k, mac("b"), true);
        assert.deepEqual(h.cache.lookup(k), mac("b"));
        assert.equal(stateOf(h, k), "DELAY");
      }
      assert.equal(h.cache.size, 8);
      // A host whose entry must be made now (its NS answered without an
      // entry, then our reply to its echo) takes the place of the oldest.
      assert.equal(
        h.cache.handleSolicitation(2, mac("c"), true),
        false,
        "no room for the host's NS",
      );
      h.cache.resolve(2, pkt(1));
      assert.equal(stateOf(h, 2), "INCOMPLETE");
      assert.equal(stateOf(h, 100), null);
      h.cache.handleAdvertisement(2, mac("c"), { solicited: true, override: true });
      assert.equal(stateOf(h, 2), "REACHABLE");
      // In PROBE (after DELAY's 5 s) they still give way.
      h.clock.advance(5_000);
      assert.equal(stateOf(h, 101), "PROBE");
      h.cache.resolve(3, pkt(1));
      assert.equal(stateOf(h, 3), "INCOMPLETE");
      assert.equal(stateOf(h, 101), null);
      // The host's confirmed entry is never taken for the flood's.
      for (let k = 200; k < 300; k++) {
        h.cache.handleSolicitation(k, mac("b"), true);
        h.clock.advance(100);
      }
      assert.notEqual(stateOf(h, 2), null, "the host's entry is kept");
      assert.ok(h.cache.size <= 8);
    },
  );

  await t.step("gc() sweeps FAILED and STALE entries unchanged for gcStaleTime", () => {
    const h = harness({ gcStaleTimeMs: 60_000 });
    h.cache.handleSolicitation(1, mac("a"), true); // STALE at 0
    h.cache.resolve(2, pkt(1)); // FAILED at 3000
    h.cache.addStatic(3, mac("b"));
    h.clock.advance(59_999);
    h.cache.handleSolicitation(4, mac("a"), true); // STALE at 59,999
    assert.equal(h.cache.gc(), 0);
    h.clock.advance(1);
    assert.equal(h.cache.gc(), 1); // key 1
    h.clock.advance(3_000);
    assert.equal(h.cache.gc(), 1); // key 2
    assert.deepEqual(h.cache.entries().map((e) => e.key), [3, 4]);
    assert.equal(h.stats.entriesEvicted, 2);
  });

  await t.step("scanning a /16: 65536 keys keep the table ≤ maxEntries", () => {
    const h = harness({ maxEntries: 1024 });
    let maxSize = 0, maxQueued = 0, maxPending = 0;
    const p = pkt(1);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 65_536; i++) {
        h.cache.resolve(0xc6120000 + i, p); // 198.18.0.0/16 (RFC 2544 benchmarking), never sent
        h.clock.advance(1);
        maxSize = Math.max(maxSize, h.cache.size);
        maxQueued = Math.max(maxQueued, h.cache.queuedBytes);
        if ((i & 255) === 0) maxPending = Math.max(maxPending, h.clock.pending());
      }
    }
    const s = h.stats;
    assert.ok(maxSize <= 1024, `size ${maxSize}`);
    // At most one 60-byte packet queued per entry.
    assert.ok(maxQueued <= 1024 * 60, `queued bytes ${maxQueued}`);
    assert.ok(maxPending <= 1024, `timers ${maxPending}`);
    // The counters say why: every packet either started a resolution or was refused.
    assert.equal(s.resolutionsStarted + s.tableFullDrops, 3 * 65_536);
    assert.ok(s.tableFullDrops > 0);
    assert.ok(s.entriesEvicted > 0);
    assert.equal(s.multicastProbesSent, h.events.filter((e) => e.startsWith("mprobe")).length);
    assert.equal(s.queuedPacketsFailed, h.events.filter((e) => e.startsWith("fail")).length);
    h.cache.flush();
    assert.equal(h.clock.pending(), 0);
    assert.equal(h.cache.queuedBytes, 0);
  });

  await t.step("a burst at one instant is refused cheaply once full", () => {
    const h = harness({ maxEntries: 1024 });
    const p = pkt(1);
    for (let i = 0; i < 65_536; i++) h.cache.resolve(0xc6120000 + i, p);
    assert.equal(h.cache.size, 1024);
    assert.equal(h.stats.tableFullDrops, 65_536 - 1024);
    assert.equal(h.stats.entriesEvicted, 0);
    h.cache.flush();
    assert.equal(h.clock.pending(), 0);
  });
});

Deno.test("NeighborCache buffers, flush and re-entrancy", async (t) => {
  await t.step(
    "queued copies are bounded in bytes per entry and per cache (unres_qlen_bytes)",
    () => {
      const sent: number[] = [];
      const cache = new NeighborCache<number>({
        clock: new ManualClock(),
        random: new SeededRandom(1),
        config: { queueLen: 64, queueBytes: 150, queueBytesTotal: 200 },
        protocol: {
          sendProbe() {},
          sendQueued: (_k, _m, p) => sent.push(p.data[p.start]!),
          resolutionFailed() {},
        },
      });
      // 60-byte frames: two fit in 150 bytes, the third pushes the oldest out.
      for (const tag of [1, 2, 3]) cache.resolve(1, pkt(tag));
      assert.equal(cache.stats.queuedPacketsDropped, 1);
      assert.equal(cache.queuedBytes, 120);
      // Another entry: one more fits the cache's 200 bytes, none after it.
      cache.resolve(2, pkt(4));
      cache.resolve(2, pkt(5));
      assert.equal(cache.stats.queueBytesDrops, 1);
      assert.equal(cache.queuedBytes, 180);
      cache.handleAdvertisement(1, mac("a"), { solicited: true, override: true });
      assert.deepEqual(sent, [2, 3], "the oldest went");
      assert.equal(cache.queuedBytes, 60);
      // A copy is its frame's size, not the caller's buffer: the caller may reuse its buffer.
      cache.flush();
      assert.equal(cache.queuedBytes, 0);
    },
  );

  await t.step("flush() cancels every timer and drops every queued copy; keepPermanent", () => {
    const h = harness();
    h.cache.resolve(1, pkt(1)); // INCOMPLETE
    h.cache.handleSolicitation(2, mac("a"), true);
    h.cache.lookup(2); // DELAY
    h.cache.handleSolicitation(3, mac("a"), true);
    h.cache.confirm(3); // REACHABLE
    h.cache.addStatic(4, mac("b"));
    assert.equal(h.clock.pending(), 3);
    assert.equal(h.cache.queuedBytes, 60, "one 60-byte frame queued");
    h.cache.flush(true);
    assert.deepEqual(h.cache.entries().map((e) => [e.key, e.state]), [[4, "PERMANENT"]]);
    assert.equal(h.clock.pending(), 0);
    assert.equal(h.cache.queuedBytes, 0);
    h.cache.flush();
    assert.equal(h.cache.size, 0);
  });

  await t.step("entries() reports state, queue and time to the next timer", () => {
    const h = harness();
    h.cache.resolve(1, pkt(1));
    h.cache.resolve(1, pkt(2));
    h.cache.handleSolicitation(2, mac("a"), true);
    h.cache.confirm(2);
    h.clock.advance(400);
    assert.deepEqual(h.cache.entries(), [
      {
        key: 1,
        mac: null,
        state: "INCOMPLETE",
        queued: 2,
        probes: 1,
        isRouter: false,
        expiresInMs: 600,
      },
      {
        key: 2,
        mac: mac("a"),
        state: "REACHABLE",
        queued: 0,
        probes: 0,
        isRouter: false,
        expiresInMs: 29_600,
      },
    ]);
    h.cache.flush();
  });

  await t.step("a neighbor that answers inside sendProbe resolves at once", () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const protocol: NeighborProtocol<string> = {
      sendProbe: (k) => cache.handleAdvertisement(k, mac("a"), { solicited: true, override: true }),
      sendQueued: (k, _m, p) => log.push(`${k} #${p.data[p.start]}`),
      resolutionFailed: () => log.push("fail"),
    };
    const cache: NeighborCache<string> = new NeighborCache<string>({
      clock,
      random: new SeededRandom(1),
      protocol,
    });
    cache.resolve("2001:db8::2", pkt(5));
    assert.deepEqual(log, ["2001:db8::2 #5"]);
    assert.equal(cache.get("2001:db8::2")?.state, NudState.REACHABLE);
    assert.equal(cache.queuedBytes, 0);
    assert.equal(clock.pending(), 1);
    cache.flush();
    assert.equal(clock.pending(), 0);
  });

  await t.step("resolutionFailed may resolve the same key again without looping", () => {
    const clock = new ManualClock();
    let failures = 0;
    const cache: NeighborCache<number> = new NeighborCache<number>({
      clock,
      random: new SeededRandom(1),
      protocol: {
        sendProbe() {},
        sendQueued() {},
        resolutionFailed: (k) => {
          failures++;
          if (failures < 3) cache.resolve(k, pkt(9));
        },
      },
    });
    cache.resolve(7, pkt(1));
    clock.advance(3000);
    assert.equal(failures, 1);
    assert.equal(cache.get(7)?.state, NudState.INCOMPLETE);
    clock.advance(3000);
    assert.equal(failures, 2);
    clock.advance(3000);
    assert.equal(failures, 3);
    assert.equal(cache.get(7)?.state, NudState.FAILED);
    assert.equal(clock.pending(), 0);
    assert.equal(cache.queuedBytes, 0);
    assert.equal(cache.stats.resolutionsStarted, 3);
  });

  await t.step("a bad config is a programmer error", () => {
    for (const config of [{ retransTimeMs: -1 }, { queueLen: 1.5 }, { baseReachableTimeMs: 0 }]) {
      assert.throws(() => harness(config), RangeError);
    }
  });
});
