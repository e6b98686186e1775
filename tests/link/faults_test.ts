/**
 * Faults on memory links (link/faults.ts): each kind on a ManualClock with
 * a seed — the same seed gives the same frames the same fate, the rates
 * come out where the probabilities put them, delay, jitter, reordering and
 * the rate limit deliver at the times they should, and the PMTU black hole
 * drops ICMP frag-needed and Packet Too Big and nothing else. Every fault
 * is counted in the sender's stats, once.
 */
import assert from "node:assert/strict";
import { type LinkFaults, type MemoryEndpoint, MemoryLink } from "../../link/mod.ts";
import { ManualClock, ping, SeededRandom, Stack } from "../../stack/mod.ts";
import { internetChecksum, ipv4PseudoHeaderSum, onesSum } from "../../stack/wire/checksum.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import {
  GSO_TCPV4,
  HEADROOM,
  PacketBuffer,
  VNET_F_NEEDS_CSUM,
} from "../../stack/wire/packet_buffer.ts";
import { writeIpv4Header } from "../../stack/wire/ipv4.ts";
import { writeIpv6Header } from "../../stack/wire/ipv6.ts";
import { settle } from "../topology/_topology.ts";

const MAC_A = new Uint8Array([2, 0, 0, 0, 0, 1]);
const MAC_B = new Uint8Array([2, 0, 0, 0, 0, 2]);
const SRC4 = 0xc0000201, DST4 = 0xc0000202; // 192.0.2.1 → 192.0.2.2
const SRC6 = new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1]);
const DST6 = new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 2]);

function ethernet(p: PacketBuffer, type: number): void {
  p.data.set(MAC_B, p.start);
  p.data.set(MAC_A, p.start + 6);
  p.view.setUint16(p.start + 12, type);
}

const scratch = new PacketBuffer();

/**
 * A UDP/IPv4 frame with `payload` bytes, its first 4 holding `tag`,
 * checksums right; in one scratch buffer (writePacket copies it).
 */
function udp4(tag: number, payload = 32): PacketBuffer {
  const p = scratch.setFrame(HEADROOM, 14 + 20 + 8 + payload);
  ethernet(p, 0x0800);
  const ip = p.start + 14, l4 = ip + 20;
  writeIpv4Header(p, ip, { src: SRC4, dst: DST4, protocol: 17, payloadLen: 8 + payload, ttl: 64 });
  p.view.setUint16(l4, 5000);
  p.view.setUint16(l4 + 2, 9);
  p.view.setUint16(l4 + 4, 8 + payload);
  for (let i = 0; i < payload; i++) p.data[l4 + 8 + i] = (i * 7) & 0xff;
  p.view.setUint32(l4 + 8, tag);
  p.view.setUint16(l4 + 6, 0);
  const sum = ipv4PseudoHeaderSum(SRC4, DST4, 17, 8 + payload);
  p.view.setUint16(l4 + 6, ~onesSumFold(onesSum(p.data, l4, 8 + payload, sum)) & 0xffff);
  return p;
}

function onesSumFold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The tag of a frame made by {@link udp4}. */
function tagOf(p: PacketBuffer): number {
  return p.view.getUint32(p.start + 14 + 20 + 8);
}

/** True when the IPv4 header checksum and the UDP checksum of a {@link udp4} frame hold. */
function checksumsHold(p: PacketBuffer): boolean {
  const ip = p.start + 14, l4 = ip + 20;
  if (internetChecksum(p.data, ip, 20) !== 0) return false;
  const len = p.end - l4;
  const sum = ipv4PseudoHeaderSum(p.view.getUint32(ip + 12), p.view.getUint32(ip + 16), 17, len);
  return onesSumFold(onesSum(p.data, l4, len, sum)) === 0xffff;
}

interface Arrival {
  tag: number;
  at: number;
  frame: Uint8Array;
}

/** A pair whose b end records what arrives (tag, time, bytes). */
function wire(aToB: LinkFaults | null, opts: { delayMs?: number; offloads?: boolean } = {}) {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({
    clock,
    names: ["a", "b"],
    poolLimit: 20_000,
    ...opts,
    faults: { aToB },
  });
  const got: Arrival[] = [];
  b.attach({
    deliverFrame: (p) =>
      got.push({ tag: tagOf(p), at: clock.now(), frame: p.data.slice(p.start, p.end) }),
  });
  return { clock, a, b, got };
}

/** Write `n` frames tagged 0..n-1, one every `everyMs`, then let everything arrive. */
function run(w: ReturnType<typeof wire>, n: number, everyMs = 0): void {
  for (let i = 0; i < n; i++) {
    assert.equal(w.a.writePacket(udp4(i)), true);
    if (everyMs > 0) w.clock.advance(everyMs);
    else if (i % 100 === 99) w.clock.advance(0); // (so the pool stays small)
  }
  w.clock.advance(60_000);
}

Deno.test("random loss: 2 % of 10,000 frames, the same frames for the same seed, counted once", () => {
  const lost = (seed: number) => {
    const w = wire({ loss: 0.02, seed });
    run(w, 10_000);
    const seen = new Set(w.got.map((g) => g.tag));
    assert.equal(w.got.length + w.a.stats.faultLossDrops, 10_000);
    assert.equal(w.a.stats.txFrames, 10_000, "a lost frame was still sent");
    assert.equal(w.b.stats.rxFrames, w.got.length);
    return [...Array(10_000).keys()].filter((i) => !seen.has(i));
  };
  const one = lost(7), again = lost(7), other = lost(8);
  // Pinned for seeds 7 and 8 (a change here changes every seeded lab's faults).
  assert.deepEqual([one.length, other.length], [211, 193]);
  assert.deepEqual(one.slice(0, 8), [0, 77, 92, 97, 137, 247, 378, 432]);
  assert.ok(one.length >= 150 && one.length <= 250, `${one.length} lost`);
  assert.deepEqual(again, one, "same seed, same frames lost");
  assert.notDeepEqual(other, one, "another seed, other frames");
  assert.ok(other.length >= 150 && other.length <= 250, `${other.length} lost`);
  // Without loss every frame arrives, in order.
  const w = wire({ loss: 0 });
  run(w, 1000);
  assert.deepEqual(w.got.map((g) => g.tag), [...Array(1000).keys()]);
});

Deno.test("Gilbert-Elliott loss comes in bursts at the model's mean rate", () => {
  // p = 1 %, r = 25 %: the bad state holds p/(p+r) = 3.85 % of frames,
  // each bad run lasting 1/r = 4 frames on average; all lost in it.
  const w = wire({ lossBurst: { p: 0.01, r: 0.25 }, seed: 3 });
  run(w, 10_000);
  const seen = new Set(w.got.map((g) => g.tag));
  const lost = [...Array(10_000).keys()].filter((i) => !seen.has(i));
  assert.equal(w.a.stats.faultBurstLossDrops, lost.length);
  assert.equal(w.a.stats.faultLossDrops, 0);
  assert.ok(lost.length >= 250 && lost.length <= 550, `${lost.length} lost`);
  let runs = 0;
  for (let i = 0; i < lost.length; i++) if (i === 0 || lost[i] !== lost[i - 1]! + 1) runs++;
  const meanRun = lost.length / runs;
  assert.ok(meanRun >= 2.5 && meanRun <= 6, `mean burst ${meanRun}`);
  // Random loss at the same mean rate has runs of about one frame.
  const r = wire({ loss: 0.0385, seed: 3 });
  run(r, 10_000);
  const rseen = new Set(r.got.map((g) => g.tag));
  const rlost = [...Array(10_000).keys()].filter((i) => !rseen.has(i));
  let rruns = 0;
  for (let i = 0; i < rlost.length; i++) if (i === 0 || rlost[i] !== rlost[i - 1]! + 1) rruns++;
  assert.ok(rlost.length / rruns < 1.2, `random loss mean run ${rlost.length / rruns}`);
  // Loss in the good state too (netem's 1-k), none in the bad state: the
  // mean is r/(p+r)·lossGood = 0.9615 · 10 % ≈ 9.6 %.
  const g = wire({ lossBurst: { p: 0.01, r: 0.25, lossBad: 0, lossGood: 0.1 }, seed: 3 });
  run(g, 10_000);
  const gl = g.a.stats.faultBurstLossDrops;
  assert.ok(gl >= 850 && gl <= 1080, `${gl} lost`);
});

Deno.test("delay and jitter: every frame arrives within delay ± jitter, sorted by arrival time", async (t) => {
  await t.step("a fixed delay adds to the link's own, order kept", () => {
    const w = wire({ delayMs: 10 }, { delayMs: 5 });
    for (let i = 0; i < 5; i++) {
      w.a.writePacket(udp4(i));
      w.clock.advance(1);
    }
    assert.equal(w.b.pending(), 5);
    w.clock.advance(100);
    assert.deepEqual(w.got.map((g) => [g.tag, g.at]), [[0, 15], [1, 16], [2, 17], [3, 18], [
      4,
      19,
    ]]);
    assert.equal(w.a.stats.faultDelayed, 5);
    assert.equal(w.b.pending(), 0);
  });
  await t.step("nothing arrives early; jitter spreads and reorders, as netem's", () => {
    const w = wire({ delayMs: 20, jitterMs: 5, seed: 11 });
    const sent: number[] = [];
    for (let i = 0; i < 2000; i++) {
      sent.push(w.clock.now());
      w.a.writePacket(udp4(i));
      w.clock.advance(0.5);
    }
    w.clock.advance(1000);
    assert.equal(w.got.length, 2000);
    let reordered = 0, min = Infinity, max = -Infinity, sum = 0;
    for (let i = 0; i < w.got.length; i++) {
      const g = w.got[i]!;
      const d = g.at - sent[g.tag]!;
      min = Math.min(min, d);
      max = Math.max(max, d);
      sum += d;
      if (i > 0) {
        assert.ok(g.at >= w.got[i - 1]!.at, "delivered in arrival-time order");
        if (g.tag < w.got[i - 1]!.tag) reordered++;
      }
    }
    assert.ok(min >= 15 && max <= 25, `delays ${min}..${max}`);
    assert.ok(min < 15.5 && max > 24.5, "the whole ±5 ms is used");
    assert.ok(Math.abs(sum / 2000 - 20) < 0.5, `mean delay ${sum / 2000}`);
    assert.ok(reordered > 100, `${reordered} frames overtaken`);
  });
  await t.step("jitter larger than the delay never goes below zero", () => {
    const w = wire({ delayMs: 1, jitterMs: 10, seed: 2 });
    run(w, 500);
    assert.ok(w.got.every((g) => g.at >= 0 && g.at <= 11));
    assert.ok(w.got.some((g) => g.at === 0), "clamped to no delay");
    assert.ok(w.a.stats.faultDelayed < 500, "a frame at zero delay is not counted as delayed");
  });
});

Deno.test("reordering: a chosen frame is held back and the next frames overtake it", () => {
  const w = wire({ reorder: 0.25, reorderDelayMs: 3, seed: 5 });
  for (let i = 0; i < 10_000; i++) {
    w.a.writePacket(udp4(i));
    w.clock.advance(1);
  }
  w.clock.advance(100);
  assert.equal(w.got.length, 10_000);
  const n = w.a.stats.faultReordered;
  assert.ok(n >= 2300 && n <= 2700, `${n} reordered`);
  // A held-back frame arrives 3 ms after it was written (at its tag), the
  // others at once; nothing else moves.
  const held = w.got.filter((g) => g.at === g.tag + 3);
  const onTime = w.got.filter((g) => g.at === g.tag);
  assert.equal(held.length, n);
  assert.equal(onTime.length, 10_000 - n);
  // Without reorder_delay it is held back by the direction's delay.
  const d = wire({ reorder: 1, delayMs: 7 }, { delayMs: 3 });
  run(d, 3);
  assert.deepEqual(d.got.map((g) => g.at), [20, 20, 20]);
  const z = wire({ reorder: 1 });
  run(z, 2);
  assert.deepEqual(z.got.map((g) => g.at), [1, 1], "1 ms on a link without delay");
});

Deno.test("duplication: 5 % of frames arrive twice, the copy intact and right behind", () => {
  const w = wire({ duplicate: 0.05, corrupt: 0.5, seed: 9 });
  run(w, 10_000);
  const dups = w.a.stats.faultDuplicates;
  assert.ok(dups >= 400 && dups <= 600, `${dups} duplicates`);
  assert.equal(w.got.length, 10_000 + dups);
  assert.equal(w.b.stats.rxFrames, 10_000 + dups);
  // The copy is made before corruption and sent right after the original:
  // an intact frame within one bit of the frame before it.
  let pairs = 0;
  for (let i = 1; i < w.got.length; i++) {
    const x = w.got[i - 1]!.frame, y = w.got[i]!.frame;
    if (x.length === y.length && hamming(x, y) <= 1 && checksumsHold(frameBuf(y))) pairs++;
  }
  assert.equal(pairs, dups);
});

function hamming(x: Uint8Array, y: Uint8Array): number {
  let bits = 0;
  for (let j = 0; j < x.length; j++) for (let v = x[j]! ^ y[j]!; v !== 0; v &= v - 1) bits++;
  return bits;
}

const scratch2 = new PacketBuffer();

/** A (scratch) PacketBuffer holding a copy of `bytes` as its frame. */
function frameBuf(bytes: Uint8Array): PacketBuffer {
  const p = scratch2.setFrame(HEADROOM, bytes.length);
  p.data.set(bytes, HEADROOM);
  return p;
}

Deno.test("corruption flips one bit past the Ethernet header, and the checksums catch it", () => {
  const w = wire({ corrupt: 0.1, seed: 4 });
  const orig: Uint8Array[] = [];
  for (let i = 0; i < 10_000; i++) {
    const p = udp4(i);
    orig.push(p.data.slice(p.start, p.end));
    w.a.writePacket(p);
    if (i % 100 === 99) w.clock.advance(0);
  }
  w.clock.advance(10);
  assert.equal(w.got.length, 10_000);
  let corrupted = 0;
  for (let i = 0; i < 10_000; i++) {
    const got = w.got[i]!.frame, want = orig[i]!;
    const bits = hamming(got, want);
    const first = want.findIndex((v, j) => v !== got[j]);
    if (bits === 0) {
      assert.ok(checksumsHold(frameBuf(got)));
      continue;
    }
    corrupted++;
    assert.equal(bits, 1, `frame ${i}: one bit`);
    assert.ok(first >= 14, `frame ${i}: past the Ethernet header (byte ${first})`);
    assert.equal(checksumsHold(frameBuf(got)), false, `frame ${i}: the checksum catches it`);
  }
  assert.equal(corrupted, w.a.stats.faultCorrupted);
  assert.ok(corrupted >= 900 && corrupted <= 1100, `${corrupted} corrupted`);
});

Deno.test("corruption completes a partial checksum first (netem's skb_checksum_help); a super-frame is judged whole", () => {
  const w = wire({ corrupt: 1, seed: 1 }, { offloads: true });
  let flags = -1;
  w.b.attach({
    deliverFrame: (p) => {
      flags = p.vnetFlags;
      w.got.push({ tag: 0, at: 0, frame: p.data.slice(p.start, p.end) });
    },
  });
  // A UDP frame with a partial checksum: the field holds the pseudo-header sum.
  const p = udp4(1);
  const l4 = p.start + 34;
  p.view.setUint16(l4 + 6, onesSumFold(ipv4PseudoHeaderSum(SRC4, DST4, 17, p.end - l4)));
  p.vnetFlags = VNET_F_NEEDS_CSUM;
  p.csumStart = 34;
  p.csumOffset = 6;
  w.a.writePacket(p);
  w.clock.advance(0);
  assert.equal(flags, 0, "delivered as a plain frame the receiver checks");
  assert.equal(checksumsHold(frameBuf(w.got[0]!.frame)), false);
  assert.equal(w.a.stats.faultCorrupted, 1);
  // The same frame uncorrupted keeps its partial checksum for the receiver.
  w.a.setFaults({ delayMs: 1 });
  const q = udp4(1);
  q.view.setUint16(l4 + 6, 0);
  q.vnetFlags = VNET_F_NEEDS_CSUM;
  q.csumStart = 34;
  q.csumOffset = 6;
  w.a.writePacket(q);
  w.clock.advance(1);
  assert.equal(flags, VNET_F_NEEDS_CSUM);
  // A super-frame is lost whole: one counter for all its segments.
  w.a.setFaults({ loss: 1 });
  const g = new PacketBuffer().setFrame(HEADROOM, 14 + 20 + 20 + 8000);
  g.gsoType = GSO_TCPV4;
  g.gsoSize = 1448;
  assert.equal(w.a.writePacket(g), true);
  w.clock.advance(1);
  assert.equal(w.a.stats.faultLossDrops, 1);
  assert.equal(w.got.length, 2);
});

Deno.test("rate limit: frames leave one serialisation time apart; a full queue tail-drops", async (t) => {
  await t.step("1 Mbit/s: a 1250-byte frame takes 10 ms, then the link's delay", () => {
    // 1250 bytes = 14 + 20 + 8 + 1208.
    const w = wire({ rateBitsPerSecond: 1_000_000 }, { delayMs: 5 });
    for (let i = 0; i < 4; i++) w.a.writePacket(udp4(i, 1208));
    w.clock.advance(25);
    w.a.writePacket(udp4(4, 1208)); // at 25 ms the serialiser is busy until 40
    w.clock.advance(200);
    assert.deepEqual(w.got.map((g) => [g.tag, g.at]), [
      [0, 15],
      [1, 25],
      [2, 35],
      [3, 45],
      [4, 55],
    ]);
    assert.equal(w.a.stats.faultRateQueued, 4, "every frame but the first waited");
    assert.equal(w.a.stats.faultQueueDrops, 0);
  });
  await t.step("a queue of 3 frames: the 4th and 5th written at once are dropped", () => {
    const w = wire({ rateBitsPerSecond: 1_000_000, queueFrames: 3 });
    for (let i = 0; i < 5; i++) w.a.writePacket(udp4(i, 1208));
    assert.equal(w.a.stats.faultQueueDrops, 2);
    w.clock.advance(10); // the first has left: room for one
    assert.equal(w.a.writePacket(udp4(5, 1208)), true);
    w.a.writePacket(udp4(6, 1208));
    assert.equal(w.a.stats.faultQueueDrops, 3);
    w.clock.advance(100);
    assert.deepEqual(w.got.map((g) => [g.tag, g.at]), [[0, 10], [1, 20], [2, 30], [5, 40]]);
  });
  await t.step("a queue of 3000 bytes holds two 1250-byte frames", () => {
    const w = wire({ rateBitsPerSecond: 1_000_000, queueBytes: 3000 });
    for (let i = 0; i < 4; i++) w.a.writePacket(udp4(i, 1208));
    w.clock.advance(100);
    assert.deepEqual(w.got.map((g) => g.tag), [0, 1]);
    assert.equal(w.a.stats.faultQueueDrops, 2);
  });
  await t.step("the default queue is netem's 1000 frames", () => {
    const w = wire({ rateBitsPerSecond: 1e9 });
    for (let i = 0; i < 1010; i++) w.a.writePacket(udp4(i));
    assert.equal(w.a.stats.faultQueueDrops, 10);
    w.clock.advance(1000);
    assert.equal(w.got.length, 1000);
  });
  await t.step("throughput converges on the rate", () => {
    // 10 Mbit/s, 1000-byte frames offered every 0.5 ms (16 Mbit/s): what
    // arrives arrives at 10 Mbit/s, and the rest is tail-dropped.
    const w = wire({ rateBitsPerSecond: 10_000_000, queueFrames: 50 });
    for (let i = 0; i < 4000; i++) {
      w.a.writePacket(udp4(i, 958));
      w.clock.advance(0.5);
    }
    w.clock.advance(1000);
    const first = w.got[0]!.at, last = w.got.at(-1)!.at;
    const bits = (w.got.length - 1) * 1000 * 8;
    const mbps = bits / (last - first) / 1000;
    assert.ok(mbps > 9.9 && mbps <= 10.0001, `${mbps} Mbit/s`);
    assert.equal(w.got.length + w.a.stats.faultQueueDrops, 4000);
  });
});

/** An Ethernet frame with an IPv4 header and the 8 bytes after it. */
function ipv4Frame(protocol: number, b0: number, b1: number, fragOffset = 0): PacketBuffer {
  const p = new PacketBuffer().setFrame(HEADROOM, 14 + 20 + 36);
  ethernet(p, 0x0800);
  writeIpv4Header(p, p.start + 14, {
    src: SRC4,
    dst: DST4,
    protocol,
    payloadLen: 36,
    fragmentOffset: fragOffset,
  });
  p.data[p.start + 34] = b0;
  p.data[p.start + 35] = b1;
  return p;
}

/** An Ethernet frame with an IPv6 header, optional Hop-by-Hop, and a 40-byte upper layer. */
function ipv6Frame(nextHeader: number, b0: number, hopByHop = false): PacketBuffer {
  const ext = hopByHop ? 8 : 0;
  const p = new PacketBuffer().setFrame(HEADROOM, 14 + 40 + ext + 40);
  ethernet(p, 0x86dd);
  writeIpv6Header(p, p.start + 14, {
    src: SRC6,
    dst: DST6,
    nextHeader: hopByHop ? 0 : nextHeader,
    payloadLen: ext + 40,
  });
  if (hopByHop) {
    p.data.fill(0, p.start + 54, p.start + 62);
    p.data[p.start + 54] = nextHeader;
    p.data[p.start + 56] = 1; // PadN of 4
    p.data[p.start + 57] = 4;
  }
  p.data[p.start + 54 + ext] = b0;
  return p;
}

Deno.test("PMTU black hole drops ICMPv4 frag-needed and ICMPv6 Packet Too Big, nothing else", () => {
  const cases: [string, PacketBuffer, boolean][] = [
    ["ICMPv4 frag needed (3/4)", ipv4Frame(1, 3, 4), true],
    ["ICMPv4 port unreachable (3/3)", ipv4Frame(1, 3, 3), false],
    ["ICMPv4 echo request", ipv4Frame(1, 8, 0), false],
    ["ICMPv4 time exceeded", ipv4Frame(1, 11, 0), false],
    ["UDP whose first bytes read 3, 4", ipv4Frame(17, 3, 4), false],
    ["a later IPv4 fragment of ICMP", ipv4Frame(1, 3, 4, 64), false],
    ["ICMPv6 Packet Too Big", ipv6Frame(58, 2), true],
    ["ICMPv6 Packet Too Big after Hop-by-Hop", ipv6Frame(58, 2, true), true],
    ["ICMPv6 destination unreachable", ipv6Frame(58, 1), false],
    ["ICMPv6 echo request", ipv6Frame(58, 128), false],
    ["UDP/IPv6 whose first byte reads 2", ipv6Frame(17, 2), false],
  ];
  const w = wire({ pmtuBlackhole: true });
  const arrived: string[] = [];
  w.b.attach({ deliverFrame: () => arrived.push("") });
  let expectDropped = 0;
  for (const [name, frame, dropped] of cases) {
    const before = arrived.length;
    assert.equal(w.a.writePacket(frame), true, name);
    w.clock.advance(0);
    assert.equal(arrived.length - before, dropped ? 0 : 1, name);
    if (dropped) expectDropped++;
    assert.equal(w.a.stats.faultPmtuBlackholeDrops, expectDropped, name);
  }
  // Only the direction that has the black hole drops.
  const back: number[] = [];
  w.a.attach({ deliverFrame: () => back.push(1) });
  w.b.writePacket(ipv4Frame(1, 3, 4));
  w.clock.advance(0);
  assert.deepEqual(back, [1]);
});

Deno.test("all faults at once are repeatable from the seed; faults set at run time and cleared", () => {
  const all: LinkFaults = {
    loss: 0.05,
    lossBurst: { p: 0.01, r: 0.3 },
    delayMs: 4,
    jitterMs: 2,
    reorder: 0.1,
    duplicate: 0.05,
    corrupt: 0.05,
    rateBitsPerSecond: 5_000_000, // 0.118 ms per 74-byte frame, offered every 0.05 ms
    queueFrames: 20,
  };
  const trace = (seed: number) => {
    const w = wire({ ...all, seed });
    run(w, 5000, 0.05);
    const s = w.a.stats;
    return {
      order: w.got.map((g) => `${g.tag}@${g.at.toFixed(6)}`).join(" "),
      counts: [
        s.faultLossDrops,
        s.faultBurstLossDrops,
        s.faultDuplicates,
        s.faultCorrupted,
        s.faultDelayed,
        s.faultReordered,
        s.faultQueueDrops,
        s.faultRateQueued,
      ],
    };
  };
  const x = trace(42), y = trace(42), z = trace(43);
  assert.deepEqual(y, x);
  assert.notDeepEqual(z.order, x.order);
  assert.ok(x.counts.every((c) => c > 0), `every kind happened: ${x.counts}`);
  // Pinned for seed 42 (mulberry32 and the order of the draws): a change
  // here changes every seeded lab's faults. The queue saturates, so what
  // passes it (delayed, queued) is set by the rate, not the seed.
  assert.deepEqual(x.counts, [232, 127, 221, 246, 2131, 225, 2731, 2130]);

  // At run time: both ends default to different seeds, so the two directions differ.
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock, poolLimit: 4096 });
  const fromA: number[] = [], fromB: number[] = [];
  b.attach({ deliverFrame: (p) => fromA.push(tagOf(p)) });
  a.attach({ deliverFrame: (p) => fromB.push(tagOf(p)) });
  a.setFaults({ loss: 0.3 });
  b.setFaults({ loss: 0.3 });
  assert.deepEqual(a.faults(), { loss: 0.3 });
  for (let i = 0; i < 200; i++) {
    a.writePacket(udp4(i));
    b.writePacket(udp4(i));
  }
  clock.advance(0);
  assert.notDeepEqual(fromA, fromB);
  a.setFaults(null);
  fromA.length = 0;
  for (let i = 0; i < 100; i++) a.writePacket(udp4(i));
  clock.advance(0);
  assert.equal(fromA.length, 100, "no faults once cleared");
  assert.equal(clock.pending(), 0);
});

Deno.test("bad fault specs are refused with every problem named", () => {
  const clock = new ManualClock();
  assert.throws(
    () =>
      MemoryLink.pair({
        clock,
        faults: { bToA: { loss: 1.5, delayMs: -1, rateBitsPerSecond: 0, lossBurst: { p: 2 } } },
      }),
    {
      name: "RangeError",
      message: "Invalid link faults: loss must be a probability in 0..1, not 1.5; " +
        "lossBurst.p must be a probability in 0..1, not 2; delayMs must be a finite number ≥ 0, not -1; " +
        "rateBitsPerSecond must be a finite number > 0, not 0",
    },
  );
  const [a] = MemoryLink.pair({ clock });
  assert.throws(() => a.setFaults({ duplicate: NaN }), RangeError);
  assert.equal(a.faults(), null, "a refused spec changes nothing");
});

Deno.test("frames a fault holds take pool buffers until delivered; closing the receiver drops them", () => {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock, poolLimit: 8, faults: { aToB: { delayMs: 50 } } });
  let got = 0;
  b.attach({ deliverFrame: () => got++ });
  for (let i = 0; i < 8; i++) assert.equal(a.writePacket(udp4(i)), true);
  assert.equal(a.writePacket(udp4(8)), false, "every buffer is in flight");
  assert.equal(a.stats.txPoolDrops, 1);
  assert.equal(b.pending(), 8);
  b.close();
  assert.equal(b.pending(), 0);
  clock.advance(100);
  assert.equal(got, 0);
  assert.equal(clock.pending(), 0, "no timer left behind");
  const [c, d] = MemoryLink.pair({ clock, poolLimit: 2, faults: { aToB: { delayMs: 5 } } });
  d.attach({ deliverFrame: () => got++ });
  c.writePacket(udp4(0));
  c.writePacket(udp4(1));
  clock.advance(5);
  assert.equal(got, 2);
  c.writePacket(udp4(2));
  c.writePacket(udp4(3));
  clock.advance(5);
  assert.equal(got, 4, "delivered buffers went back to the pool");
});

/** h1 — h2 on one memory link, IPv4, neighbours resolved. */
async function pair2(): Promise<
  { clock: ManualClock; h1: Stack; h2: Stack; a: MemoryEndpoint }
> {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock, names: ["h1:eth0", "h2:eth0"] });
  const h1 = new Stack({ clock, random: new SeededRandom(1), hostname: "h1" });
  const h2 = new Stack({ clock, random: new SeededRandom(2), hostname: "h2" });
  h1.ipv4.addAddress(h1.addNic(a, { name: "eth0" }), parseIpv4("192.0.2.1"), 24);
  h2.ipv4.addAddress(h2.addNic(b, { name: "eth0" }), parseIpv4("192.0.2.2"), 24);
  const r = await settle(clock, ping(h1, { dst: parseIpv4("192.0.2.2"), count: 1 }));
  assert.equal(r.received, 1);
  return { clock, h1, h2, a };
}

Deno.test("stacks on a corrupting link: every corrupted echo request is dropped by a checksum", async () => {
  const { clock, h1, h2, a } = await pair2();
  const answered = h2.stats.icmpv4.echoRequestsAnswered;
  const s = h2.stats;
  const drops = () =>
    s.ipv4.checksumErrors + s.ipv4.malformedPacketsReceived + s.icmpv4.malformedReceived;
  const before = drops();
  a.setFaults({ corrupt: 1, seed: 5 });
  const r = await settle(
    clock,
    ping(h1, {
      dst: parseIpv4("192.0.2.2"),
      count: 10,
      intervalMs: 10,
      timeoutMs: 100,
    }),
  );
  assert.equal(r.received, 0);
  assert.equal(a.stats.faultCorrupted, 10);
  assert.equal(h2.stats.icmpv4.echoRequestsAnswered, answered, "nothing corrupted was answered");
  assert.equal(drops() - before, 10, "each counted once as a checksum or malformed drop");
});
