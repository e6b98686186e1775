import assert from "node:assert/strict";
import { ManualClock } from "../../stack/clock.ts";
import { SeededRandom } from "../../stack/random.ts";
import {
  type FirstFragmentInfo,
  newReassemblyStats,
  Reassembler,
  type ReassemblerOptions,
  REASSEMBLY_DATAGRAM_OVERHEAD,
  REASSEMBLY_EVICT_AGE_MS,
  REASSEMBLY_FRAGMENT_OVERHEAD,
  type ReassemblyResult,
} from "../../stack/reassembly.ts";
import { BufferPool, PacketBuffer } from "../../stack/wire/packet_buffer.ts";

/** A source buffer: `headerLen` header bytes (0xh0 + i) then the whole payload pattern. */
function source(headerLen: number, payloadLen: number): PacketBuffer {
  const b = new PacketBuffer(headerLen + payloadLen + 16);
  for (let i = 0; i < headerLen; i++) b.data[i] = (0xa0 + i) & 0xff;
  for (let i = 0; i < payloadLen; i++) b.data[headerLen + i] = (i * 7 + i / 256 + 3) & 0xff;
  return b;
}

interface Frag {
  off: number;
  len: number;
  more: boolean;
}

/** Split `total` payload bytes into fragments of `size` (a multiple of 8). */
function split(total: number, size: number): Frag[] {
  const out: Frag[] = [];
  for (let off = 0; off < total; off += size) {
    const len = Math.min(size, total - off);
    out.push({ off, len, more: off + len < total });
  }
  return out;
}

function shuffle<T>(a: T[], seed: number): T[] {
  const r = new SeededRandom(seed);
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r.float() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface Rig {
  clock: ManualClock;
  pool: BufferPool;
  r: Reassembler<string>;
  timeouts: { key: string; first: FirstFragmentInfo | null }[];
}

function rig(over: Partial<ReassemblerOptions<string>> = {}, poolLimit = 16): Rig {
  const clock = new ManualClock();
  const pool = over.pool ?? new BufferPool(poolLimit);
  const timeouts: Rig["timeouts"] = [];
  const r = new Reassembler<string>({
    clock,
    pool,
    timeoutMs: 30_000,
    memoryLimit: 4 * 1024 * 1024,
    maxDatagramLen: 65_535,
    onTimeout: (key, first) => timeouts.push({ key, first }),
    ...over,
  });
  return { clock, pool, r, timeouts };
}

/** Feed one fragment of `src` (header `h` bytes at 0, payload after it). */
function feed(r: Reassembler<string>, key: string, src: PacketBuffer, h: number, f: Frag) {
  return r.add(key, f.off, f.more, src, h + f.off, f.len, 0, h);
}

/** Return a completed datagram's buffer to the pool. */
function release(pool: BufferPool, res: ReassemblyResult | null): void {
  if (res !== null && res.kind === "complete") pool.put(res.buffer);
}

function completeBytes(res: ReassemblyResult): Uint8Array {
  assert.equal(res.kind, "complete");
  if (res.kind !== "complete") throw new Error("unreachable");
  const b = res.buffer;
  assert.equal(b.start, res.headerOffset);
  assert.equal(b.end, res.headerOffset + res.headerLen + res.payloadLen);
  assert.equal(b.networkOffset, res.headerOffset);
  return b.data.slice(b.start, b.end);
}

Deno.test("Reassembler reassembles fragments in any order", async (t) => {
  const cases: { name: string; h: number; total: number; size: number; order: string }[] = [
    {
      name: "in order, 4000 bytes in 1480-byte fragments",
      h: 20,
      total: 4000,
      size: 1480,
      order: "in",
    },
    { name: "reverse order", h: 20, total: 4000, size: 1480, order: "reverse" },
    {
      name: "random order (seed 1), 44 fragments",
      h: 20,
      total: 65_000,
      size: 1480,
      order: "random",
    },
    {
      name: "random order (seed 2), 8-byte fragments",
      h: 24,
      total: 1001,
      size: 8,
      order: "random",
    },
    {
      name: "maximal IPv4 datagram, 20 + 65515 bytes",
      h: 20,
      total: 65_515,
      size: 1480,
      order: "random",
    },
    {
      name: "maximal IPv4 header (60) with options",
      h: 60,
      total: 3000,
      size: 1480,
      order: "reverse",
    },
    { name: "one fragment then last alone", h: 20, total: 9, size: 8, order: "reverse" },
  ];
  let seed = 1;
  for (const c of cases) {
    await t.step(c.name, () => {
      const { clock, pool, r } = rig();
      const src = source(c.h, c.total);
      let frags = split(c.total, c.size);
      if (c.order === "reverse") frags = frags.reverse();
      if (c.order === "random") frags = shuffle(frags, seed++);
      let res: ReassemblyResult | null = null;
      frags.forEach((f, i) => {
        res = feed(r, "k", src, c.h, f);
        if (i < frags.length - 1) assert.equal(res.kind, "pending", `fragment ${i}`);
      });
      const got = completeBytes(res!);
      assert.deepEqual(got, src.data.slice(0, c.h + c.total));
      assert.equal(r.stats.datagramsReassembled, 1);
      assert.equal(r.stats.fragmentsReceived, frags.length);
      assert.equal(r.stats.memoryInUse, 0);
      assert.equal(r.size(), 0);
      assert.equal(clock.pending(), 0, "timer cancelled on completion");
      assert.equal(pool.inUse(), 1, "only the returned buffer is out");
      release(pool, res);
      assert.equal(pool.inUse(), 0);
    });
  }
});

Deno.test("Reassembler ignores exact duplicates", async (t) => {
  const cases = [
    { name: "every fragment twice, in order", seed: 0 },
    { name: "every fragment twice, random order", seed: 7 },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { pool, r } = rig();
      const src = source(20, 3000);
      let frags = split(3000, 512);
      if (c.seed !== 0) frags = shuffle(frags, c.seed);
      let res: ReassemblyResult | null = null;
      for (let i = 0; i < frags.length; i++) {
        res = feed(r, "k", src, 20, frags[i]!);
        if (i < frags.length - 1) {
          assert.deepEqual(feed(r, "k", src, 20, frags[i]!), {
            kind: "dropped",
            reason: "duplicate",
          });
        }
      }
      assert.deepEqual(completeBytes(res!), src.data.slice(0, 3020));
      assert.equal(r.stats.duplicatesIgnored, frags.length - 1);
      assert.equal(r.stats.overlapsDropped, 0);
      release(pool, res);
    });
  }
});

Deno.test("Reassembler drops the whole datagram on any overlap and remembers it", async (t) => {
  // Held: [16, 40) with MF. Each case adds one overlapping fragment.
  const cases: { name: string; off: number; end: number; more: boolean }[] = [
    { name: "partial front [8, 24)", off: 8, end: 24, more: true },
    { name: "partial back [32, 48)", off: 32, end: 48, more: true },
    { name: "contained [24, 32)", off: 24, end: 32, more: true },
    { name: "containing [8, 48)", off: 8, end: 48, more: true },
    { name: "same start, shorter [16, 24)", off: 16, end: 24, more: true },
    { name: "same start, longer [16, 48)", off: 16, end: 48, more: true },
    { name: "same end, later start [24, 40)", off: 24, end: 40, more: true },
    { name: "last fragment over the back [32, 45)", off: 32, end: 45, more: false },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { clock, pool, r, timeouts } = rig();
      const src = source(20, 64);
      assert.equal(feed(r, "k", src, 20, { off: 0, len: 8, more: true }).kind, "pending");
      assert.equal(feed(r, "k", src, 20, { off: 16, len: 24, more: true }).kind, "pending");
      const res = feed(r, "k", src, 20, { off: c.off, len: c.end - c.off, more: c.more });
      assert.deepEqual(res, { kind: "dropped", reason: "overlap" });
      assert.equal(r.stats.overlapsDropped, 1);
      assert.equal(pool.inUse(), 0, "buffer returned at once");
      assert.equal(r.stats.memoryInUse, REASSEMBLY_DATAGRAM_OVERHEAD, "only the remembered key");
      // Later fragments of the dropped datagram, even ones that would complete it, are dropped.
      for (const f of [{ off: 8, len: 8, more: true }, { off: 40, len: 8, more: false }]) {
        assert.deepEqual(feed(r, "k", src, 20, f), { kind: "dropped", reason: "late" });
      }
      assert.equal(r.stats.lateFragmentsDropped, 2);
      clock.advance(30_000);
      assert.equal(timeouts.length, 0, "no time exceeded for a dropped datagram");
      assert.equal(r.stats.timeouts, 0);
      assert.equal(r.size(), 0);
      assert.equal(r.stats.memoryInUse, 0);
      // After the timeout the key is free again.
      let last: ReassemblyResult | null = null;
      for (const f of split(48, 16)) last = feed(r, "k", src, 20, f);
      assert.deepEqual(completeBytes(last!), src.data.slice(0, 68));
      release(pool, last);
      assert.equal(pool.inUse(), 0);
    });
  }
});

Deno.test("Reassembler drops malformed fragments alone", async (t) => {
  const cases: { name: string; off: number; len: number; more: boolean }[] = [
    { name: "zero-length datagram (offset 0, no MF, no payload)", off: 0, len: 0, more: false },
    { name: "zero-length middle fragment", off: 8, len: 0, more: true },
    { name: "non-last fragment not a multiple of 8", off: 0, len: 12, more: true },
    { name: "offset not a multiple of 8", off: 4, len: 8, more: false },
    { name: "negative offset", off: -8, len: 8, more: false },
    { name: "payload beyond the source buffer", off: 0, len: 4096, more: false },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { pool, r } = rig();
      const src = source(20, 64);
      assert.deepEqual(feed(r, "k", src, 20, c), { kind: "dropped", reason: "invalid" });
      assert.equal(r.stats.malformedDropped, 1);
      assert.equal(r.size(), 0);
      assert.equal(pool.inUse(), 0);
    });
  }
  await t.step("a malformed fragment does not disturb its datagram", () => {
    const { pool, r } = rig();
    const src = source(20, 64);
    assert.equal(feed(r, "k", src, 20, { off: 0, len: 8, more: true }).kind, "pending");
    assert.equal(feed(r, "k", src, 20, { off: 8, len: 12, more: true }).kind, "dropped");
    const res = feed(r, "k", src, 20, { off: 8, len: 12, more: false });
    assert.deepEqual(completeBytes(res), src.data.slice(0, 40));
    release(pool, res);
  });
});

Deno.test("Reassembler enforces the maximum datagram length", async (t) => {
  const cases: {
    name: string;
    fixedHeaderLen: number;
    h: number;
    frags: Frag[];
    want: string[];
  }[] = [
    {
      name: "IPv4: 20 + 65520 bytes is too long (ping of death)",
      fixedHeaderLen: 0,
      h: 20,
      frags: [{ off: 65_512, len: 8, more: false }],
      want: ["tooLong"],
    },
    {
      name: "IPv4: 20 + 65515 fits",
      fixedHeaderLen: 0,
      h: 20,
      frags: [{ off: 65_512, len: 3, more: false }, { off: 0, len: 65_512, more: true }],
      want: ["pending", "complete"],
    },
    {
      name: "IPv4: fragment 0 with a 60-byte header makes held data too long",
      fixedHeaderLen: 0,
      h: 60,
      frags: [{ off: 65_480, len: 3, more: false }, { off: 0, len: 8, more: true }],
      want: ["pending", "tooLong"],
    },
    {
      name: "IPv6: Payload Length 65535 fits (40-byte header not counted)",
      fixedHeaderLen: 40,
      h: 40,
      frags: [{ off: 0, len: 65_528, more: true }, { off: 65_528, len: 7, more: false }],
      want: ["pending", "complete"],
    },
    {
      name: "IPv6: Payload Length 65536 is too long",
      fixedHeaderLen: 40,
      h: 40,
      frags: [{ off: 65_528, len: 8, more: false }],
      want: ["tooLong"],
    },
    {
      name: "IPv6: unfragmentable extension headers count",
      fixedHeaderLen: 40,
      h: 48,
      frags: [{ off: 0, len: 65_520, more: true }, { off: 65_520, len: 8, more: false }],
      want: ["pending", "tooLong"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { pool, r } = rig({ fixedHeaderLen: c.fixedHeaderLen });
      const src = source(c.h, 65_536);
      // The "fragment 0 header" case: the first-arriving fragment claims a 20-byte header.
      const got = c.frags.map((f, i) =>
        r.add("k", f.off, f.more, src, c.h + f.off, f.len, 0, i === 0 && c.h === 60 ? 20 : c.h)
      );
      assert.deepEqual(got.map((g) => g.kind === "dropped" ? g.reason : g.kind), c.want);
      const done = got.at(-1)!;
      if (done.kind === "complete") {
        assert.deepEqual(completeBytes(done), src.data.slice(0, c.h + done.payloadLen));
        release(pool, done);
      }
      if (c.want.at(-1) === "tooLong" && c.frags.length > 1) {
        assert.deepEqual(feed(r, "k", src, c.h, { off: 8, len: 8, more: true }), {
          kind: "dropped",
          reason: "late",
        });
      }
      assert.equal(pool.inUse(), 0);
    });
  }
});

Deno.test("Reassembler drops datagrams with conflicting lengths", async (t) => {
  const cases: { name: string; frags: Frag[]; want: string[] }[] = [
    {
      name: "two last fragments with different ends",
      frags: [{ off: 32, len: 8, more: false }, { off: 40, len: 8, more: false }],
      want: ["pending", "inconsistent"],
    },
    {
      name: "a fragment beyond the end fixed by the last",
      frags: [{ off: 32, len: 8, more: false }, { off: 40, len: 8, more: true }],
      want: ["pending", "inconsistent"],
    },
    {
      name: "a last fragment ending before data already held",
      frags: [{ off: 40, len: 8, more: true }, { off: 16, len: 8, more: false }],
      want: ["pending", "inconsistent"],
    },
    {
      name: "the same last fragment twice is a duplicate, not a conflict",
      frags: [{ off: 32, len: 5, more: false }, { off: 32, len: 5, more: false }],
      want: ["pending", "duplicate"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { pool, r } = rig();
      const src = source(20, 64);
      const got = c.frags.map((f) => feed(r, "k", src, 20, f));
      assert.deepEqual(got.map((g) => g.kind === "dropped" ? g.reason : g.kind), c.want);
      const conflict = c.want.includes("inconsistent");
      assert.equal(r.stats.inconsistentDropped, conflict ? 1 : 0);
      // Pending fragments wait in chunks, not in pool buffers; a conflict frees them.
      assert.equal(pool.inUse(), 0);
      assert.equal(
        r.stats.memoryInUse,
        conflict
          ? REASSEMBLY_DATAGRAM_OVERHEAD
          : REASSEMBLY_DATAGRAM_OVERHEAD + REASSEMBLY_FRAGMENT_OVERHEAD + 64,
      );
    });
  }
});

Deno.test("Reassembler times out incomplete datagrams", async (t) => {
  const cases: { name: string; frags: Frag[]; firstPayload: number | null }[] = [
    {
      name: "fragment 0 arrived: onTimeout gets a copy of it",
      frags: [{ off: 24, len: 8, more: true }, { off: 0, len: 16, more: true }],
      firstPayload: 16,
    },
    {
      name: "fragment 0 missing: onTimeout gets null",
      frags: [{ off: 16, len: 8, more: true }, { off: 24, len: 3, more: false }],
      firstPayload: null,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { clock, pool, r, timeouts } = rig();
      const src = source(20, 64);
      feed(r, "k", src, 20, c.frags[0]!);
      clock.advance(20_000);
      feed(r, "k", src, 20, c.frags[1]!);
      // RFC 8200 §4.5: the timer runs from the first-arriving fragment.
      clock.advance(9_999);
      assert.equal(timeouts.length, 0);
      clock.advance(1);
      assert.equal(timeouts.length, 1);
      assert.equal(timeouts[0]!.key, "k");
      const first = timeouts[0]!.first;
      if (c.firstPayload === null) {
        assert.equal(first, null);
      } else {
        assert.ok(first !== null);
        assert.equal(first.headerLen, 20);
        assert.equal(first.payloadLen, c.firstPayload);
        assert.deepEqual(first.bytes, src.data.slice(0, 20 + c.firstPayload));
      }
      assert.equal(r.stats.timeouts, 1);
      assert.equal(r.size(), 0);
      assert.equal(r.stats.memoryInUse, 0);
      assert.equal(pool.inUse(), 0);
      assert.equal(clock.pending(), 0);
    });
  }
});

Deno.test("Reassembler bounds memory: a flood past the limit is refused, datagrams that waited a second are evicted", async (t) => {
  // A datagram holding one 8-byte fragment (no header): its record, the
  // fragment's record and a 64-byte chunk.
  const perDatagram = REASSEMBLY_DATAGRAM_OVERHEAD + REASSEMBLY_FRAGMENT_OVERHEAD + 64;
  await t.step("fragments are charged their own size, not a 64 KiB pool buffer", () => {
    // The first run of bench:floods: every 1,000-byte first fragment was
    // charged 66,000 bytes, so 63 of them filled 4 MiB and nearly every
    // fragment of a flood evicted another.
    const limit = 4 * 1024 * 1024;
    const { clock, pool, r, timeouts } = rig({ memoryLimit: limit }, 256);
    const src = source(20, 992);
    // The datagram, its fragment's record, a 64-byte header chunk, a 1,024-byte payload chunk.
    const each = REASSEMBLY_DATAGRAM_OVERHEAD + REASSEMBLY_FRAGMENT_OVERHEAD + 64 + 1024;
    const held = Math.floor(limit / each);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const res = feed(r, `k${i}`, src, 20, { off: 0, len: 992, more: true });
      assert.equal(res.kind, i < held ? "pending" : "dropped", `k${i}`);
      assert.ok(r.stats.memoryInUse <= limit);
    }
    assert.equal(r.stats.memoryInUse, r.memoryInUse());
    assert.equal(r.size(), held);
    assert.ok(held > 2000, `${held} datagrams held`);
    // On a still clock nothing held has waited a second: the rest of the
    // flood is refused and copies nothing, the datagrams held stay.
    assert.equal(r.stats.memoryLimitDropped, n - held);
    assert.equal(r.stats.evictedForMemory, 0);
    assert.equal(pool.inUse(), 0, "no pool buffer is held while fragments wait");
    assert.equal(pool.made(), 0);
    assert.equal(clock.pending(), 1, "one timer for every datagram");
    // A datagram held still completes; a refused one starts over.
    const first = feed(r, "k0", src, 20, { off: 992, len: 4, more: false });
    assert.equal(first.kind, "complete");
    assert.deepEqual(completeBytes(first), src.data.slice(0, 20 + 996));
    release(pool, first);
    const late = `k${n - 1}`;
    assert.equal(feed(r, late, src, 20, { off: 992, len: 4, more: false }).kind, "pending");
    // What k0 left is taken by new datagrams until one is refused.
    let filled = 0;
    while (feed(r, `fill${filled}`, src, 20, { off: 0, len: 992, more: true }).kind === "pending") {
      filled++;
    }
    assert.ok(filled <= 1, `${filled} filled`);
    // One millisecond short of the age, a new datagram is still refused;
    // at the age, it evicts the oldest (k1: k0 is done).
    clock.advance(REASSEMBLY_EVICT_AGE_MS - 1);
    const refused = r.stats.memoryLimitDropped;
    assert.equal(feed(r, "new", src, 20, { off: 0, len: 992, more: true }).kind, "dropped");
    assert.equal(r.stats.memoryLimitDropped, refused + 1);
    assert.equal(r.stats.evictedForMemory, 0);
    clock.advance(1);
    assert.equal(feed(r, "new", src, 20, { off: 0, len: 992, more: true }).kind, "pending");
    const evicted = r.stats.evictedForMemory;
    assert.ok(evicted >= 1 && evicted <= 2, `${evicted} evicted`);
    assert.equal(
      feed(r, "k1", src, 20, { off: 992, len: 4, more: false }).kind,
      "pending",
      "k1 starts over",
    );
    const kept = feed(r, `k${evicted + 2}`, src, 20, { off: 992, len: 4, more: false });
    assert.equal(kept.kind, "complete", "the next oldest was kept");
    release(pool, kept);
    assert.ok(r.stats.memoryInUse <= limit);
    clock.advance(31_000);
    assert.ok(timeouts.length > held - 10, `${timeouts.length} timed out`);
    for (const x of timeouts) {
      // Those that came back with only their last fragment have no fragment 0 to quote.
      assert.equal(
        x.first?.payloadLen ?? null,
        x.key === late || x.key === "k1" ? null : 992,
        x.key,
      );
    }
    assert.equal(r.size(), 0);
    assert.equal(r.stats.memoryInUse, 0);
    assert.equal(pool.inUse(), 0);
    assert.equal(clock.pending(), 0);
    assert.equal(r.freeChunkBytes(), 0, "the flood's chunks are let go once it is over");
  });
  await t.step("datagrams time out in order on one timer", () => {
    const { clock, r, timeouts } = rig();
    const src = source(20, 64);
    for (let i = 0; i < 100; i++) {
      feed(r, `k${i}`, src, 20, { off: 8, len: 8, more: true });
      clock.advance(100);
    }
    assert.equal(clock.pending(), 1);
    // k_i came at 100·i ms and times out at 30 s + 100·i: at 35 s, k0 … k50.
    clock.advance(35_000 - clock.now());
    assert.deepEqual(timeouts.map((x) => x.key), [...Array(51).keys()].map((i) => `k${i}`));
    assert.equal(r.size(), 49);
    clock.advance(10_000);
    assert.equal(r.size(), 0);
    assert.equal(clock.pending(), 0);
  });
  await t.step("remembered (dropped) keys are evicted like the rest", () => {
    const { clock, r } = rig({ memoryLimit: perDatagram + REASSEMBLY_DATAGRAM_OVERHEAD });
    const src = source(20, 64);
    feed(r, "a", src, 20, { off: 8, len: 8, more: true });
    feed(r, "a", src, 20, { off: 0, len: 16, more: true }); // overlap: "a" remembered
    feed(r, "b", src, 20, { off: 8, len: 8, more: true });
    assert.equal(r.size(), 2);
    assert.equal(
      feed(r, "c", src, 20, { off: 8, len: 8, more: true }).kind,
      "dropped",
      "both are young",
    );
    clock.advance(REASSEMBLY_EVICT_AGE_MS);
    feed(r, "c", src, 20, { off: 8, len: 8, more: true });
    assert.equal(r.stats.evictedForMemory, 2);
    assert.equal(r.size(), 1);
    clock.advance(REASSEMBLY_EVICT_AGE_MS);
    assert.equal(feed(r, "a", src, 20, { off: 8, len: 8, more: true }).kind, "pending");
  });
  await t.step(
    "dropIfFull: refused before a key is made only when no fragment could be taken",
    () => {
      const { clock, r } = rig({ memoryLimit: perDatagram });
      const src = source(20, 64);
      assert.equal(r.dropIfFull(8), false, "empty");
      assert.equal(feed(r, "k", src, 20, { off: 8, len: 8, more: true }).kind, "pending");
      assert.equal(r.stats.memoryInUse, perDatagram);
      const received = r.stats.fragmentsReceived;
      assert.equal(r.dropIfFull(8), true);
      assert.equal(r.stats.fragmentsReceived, received + 1);
      assert.equal(r.stats.memoryLimitDropped, 1);
      clock.advance(REASSEMBLY_EVICT_AGE_MS - 1);
      assert.equal(r.dropIfFull(8), true);
      clock.advance(1);
      assert.equal(r.dropIfFull(8), false, "k has waited long enough to be evicted");
      assert.equal(r.stats.memoryLimitDropped, 2);
      assert.equal(feed(r, "n", src, 20, { off: 8, len: 8, more: true }).kind, "pending");
      assert.equal(r.stats.evictedForMemory, 1);
    },
  );
  await t.step("a limit smaller than one datagram drops every fragment", () => {
    const { pool, r } = rig({ memoryLimit: perDatagram - 1 });
    const src = source(20, 64);
    assert.deepEqual(feed(r, "k", src, 20, { off: 8, len: 8, more: true }), {
      kind: "dropped",
      reason: "memory",
    });
    assert.equal(r.stats.memoryLimitDropped, 1);
    assert.equal(pool.inUse(), 0);
    assert.equal(r.size(), 0);
  });
  await t.step("an exhausted pool drops the datagram when it completes", () => {
    const { clock, pool, r } = rig({}, 1);
    const taken = pool.get()!;
    const src = source(20, 64);
    assert.equal(feed(r, "a", src, 20, { off: 8, len: 8, more: false }).kind, "pending");
    assert.deepEqual(feed(r, "a", src, 20, { off: 0, len: 8, more: true }), {
      kind: "dropped",
      reason: "memory",
    });
    assert.equal(r.stats.bufferPoolExhausted, 1);
    assert.equal(r.stats.memoryInUse, REASSEMBLY_DATAGRAM_OVERHEAD, "only the remembered key");
    pool.put(taken);
    assert.deepEqual(feed(r, "a", src, 20, { off: 8, len: 8, more: false }), {
      kind: "dropped",
      reason: "late",
    });
    r.clear();
    assert.equal(pool.inUse(), 0);
    assert.equal(clock.pending(), 0);
    assert.equal(r.stats.memoryInUse, 0);
  });
});

Deno.test("Reassembler handles small pool buffers", async (t) => {
  await t.step("fragment 0 with a longer header than the first-arriving one moves the data", () => {
    const pool = new BufferPool(2, 2048);
    // maxDatagramLen 2040 in 2048-byte buffers leaves 8 bytes in front: too few for 60.
    const { r } = rig({ pool, maxDatagramLen: 2040 });
    const src = source(60, 1000);
    assert.equal(r.add("k", 504, false, src, 60 + 504, 496, 0, 20).kind, "pending");
    const res = r.add("k", 0, true, src, 60, 504, 0, 60);
    assert.deepEqual(completeBytes(res), src.data.slice(0, 1060));
    release(pool, res);
  });
  await t.step("data that cannot fit the buffer is too long", () => {
    const pool = new BufferPool(2, 2048);
    const { r } = rig({ pool });
    const src = source(20, 4096);
    assert.deepEqual(r.add("k", 2040, false, src, 2060, 8, 0, 20), {
      kind: "dropped",
      reason: "tooLong",
    });
    assert.equal(pool.inUse(), 0);
  });
  await t.step("stats can be shared with the caller", () => {
    const stats = newReassemblyStats();
    const { r } = rig({ stats });
    feed(r, "k", source(20, 8), 20, { off: 0, len: 8, more: true });
    assert.equal(stats.fragmentsReceived, 1);
    assert.equal(stats.memoryInUse, r.memoryInUse());
  });
});
