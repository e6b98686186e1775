/**
 * ACKs around loss, checked on the wire against a raw peer: a tail loss
 * probe carries PSH, and a receiver ACKs a pushed full-sized segment once
 * the application has read it (Linux's ICSK_ACK_PUSHED), so a probe sent
 * after a lost ACK is answered at once instead of after the 40 ms
 * delayed-ACK timer; out-of-order data is ACKed at once whatever the
 * segment sizes; and a GSO super-frame is not taken for the peer's MSS.
 * Then a bulk transfer with offloads under 1 % loss each way, in which the
 * receiver never waits out its delayed-ACK timer.
 */
import assert from "node:assert/strict";
import {
  ACK,
  peerConnect,
  peerSeg,
  PSH,
  RawPeer,
  readAll,
  stackPair,
  writeAll,
} from "./_tcp_peer.ts";
import { pattern } from "./_tcp_lab.ts";
import type { ManualClock } from "../../../stack/mod.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";

const MSS = 1448; // 1460 less the timestamps option

/**
 * A connection the peer opened, past quick-ACK mode: 18 full-sized
 * segments in order (the first 16 ACKs are quick ones, Linux's
 * TCP_MAX_QUICKACKS), read by the application, every ACK flushed.
 */
function warmConnection() {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const x = peerConnect(p, l, 80);
  const data = pattern(18 * MSS);
  const buf = new Uint8Array(1 << 16);
  for (let i = 0; i < 18; i++) {
    p.inject(peerSeg(p, x.pc, ACK, { payload: data.subarray(i * MSS, (i + 1) * MSS) }));
    x.pc.seq = (x.pc.seq + MSS) >>> 0;
    while (x.conn.read(buf) > 0) { /* drain */ }
  }
  p.clock.advance(100);
  p.take();
  return { p, x, buf };
}

/** Pure ACKs in `segs` and the clock times they were sent. */
const acksOf = (segs: ReturnType<RawPeer["take"]>) => segs.filter((s) => s.payload.length === 0);

Deno.test("a pushed full-sized segment is ACKed when the application reads it; an unpushed one waits for the delayed ACK", () => {
  const { p, x, buf } = warmConnection();
  const one = pattern(MSS, 3);
  // Unpushed: the read does not ACK it; the delayed-ACK timer (40 ms) does.
  assert.deepEqual(acksOf(p.inject(peerSeg(p, x.pc, ACK, { payload: one }))), []);
  x.pc.seq = (x.pc.seq + MSS) >>> 0;
  const t0 = p.clock.now();
  assert.equal(x.conn.read(buf), MSS);
  p.clock.advance(0);
  assert.deepEqual(acksOf(p.take()), [], "no ACK on the read of an unpushed segment");
  p.clock.advance(50);
  const late = acksOf(p.take());
  assert.equal(late.length, 1);
  assert.equal(late[0]!.ack, x.pc.seq);
  assert.ok(late[0]!.at - t0 >= 40, `delayed ACK after ${late[0]!.at - t0} ms`);
  assert.equal(p.stack.stats.tcp.delayedAcks, 1);
  // Pushed (a sender's lone loss probe): held until the application reads it, then ACKed at once.
  assert.deepEqual(acksOf(p.inject(peerSeg(p, x.pc, ACK | PSH, { payload: one }))), []);
  x.pc.seq = (x.pc.seq + MSS) >>> 0;
  const t1 = p.clock.now();
  assert.equal(x.conn.read(buf), MSS);
  p.clock.advance(0);
  const now = acksOf(p.take());
  assert.equal(now.length, 1, "the read ACKed the pushed segment");
  assert.equal(now[0]!.ack, x.pc.seq);
  assert.equal(now[0]!.at, t1);
  p.clock.advance(100);
  assert.deepEqual(acksOf(p.take()), [], "and no delayed ACK follows");
  assert.equal(p.stack.stats.tcp.delayedAcks, 1);
  p.close();
});

Deno.test("RFC 5681 §4.2: out-of-order data is ACKed at once, also when our MSS fell below the peer's segment size", () => {
  const { p, x } = warmConnection();
  // A Packet Too Big lowers our send MSS to 1048; the peer's segments stay 1448 bytes.
  x.conn.pathMtuLowered(1100);
  assert.equal(x.conn.mss, 1048);
  const hole = x.pc.seq;
  const out = p.inject(
    peerSeg(p, x.pc, ACK, { seq: (hole + MSS) >>> 0, payload: pattern(MSS, 4) }),
  );
  const acks = acksOf(out);
  assert.equal(acks.length, 1, "the out-of-order segment was ACKed at once");
  assert.equal(acks[0]!.ack, hole);
  assert.deepEqual(acks[0]!.sack, [[(hole + MSS) >>> 0, (hole + 2 * MSS) >>> 0]]);
  p.close();
});

Deno.test("a GSO super-frame of two segments is not taken for the peer's MSS: every second full-sized segment is still ACKed at once", () => {
  const lab = stackPair({ offloads: true, capture: true });
  const l = lab.b.tcp.listen({ port: 9 });
  lab.a.tcp.connect({ remote: parseIpv4("192.0.2.2"), port: 9 });
  lab.clock.advance(1);
  const a = [...lab.a.tcp.connections()][0]!;
  const b = l.accept()!;
  a.setNoDelay(true);
  // Past quick-ACK mode, and b has seen the peer's segment size: 20 one-segment writes.
  const buf = new Uint8Array(1 << 16);
  for (let i = 0; i < 20; i++) {
    a.write(pattern(MSS, i));
    lab.clock.advance(1);
    while (b.read(buf) > 0) { /* drain */ }
  }
  lab.clock.advance(100);
  const fromB = () => lab.log.filter((x) => x.dir === "ba" && x.payload.length === 0);
  const acked = fromB().length;
  // 1451 bytes leave as one super-frame of 1448 + 3 (GSO): no segment of that size exists.
  a.write(pattern(1451, 30));
  lab.clock.advance(0);
  const frame = lab.log.filter((x) => x.dir === "ab").at(-1)!;
  assert.equal(frame.payload.length, 1451, "one super-frame");
  assert.equal(fromB().length, acked, "one segment's worth: the ACK is delayed");
  // A full-sized segment more: two segments' worth unacknowledged, ACKed at once (RFC 5681 §4.2).
  a.write(pattern(MSS, 31));
  lab.clock.advance(0);
  const acks = fromB().slice(acked);
  assert.equal(acks.length, 1, "ACKed without waiting for the delayed-ACK timer");
  assert.equal(acks[0]!.ack, a.sndNxt);
  assert.equal(lab.b.stats.tcp.delayedAcks, 0);
  lab.close();
});

for (const more of [true, false]) {
  Deno.test(`RFC 8985 §7.3: a tail loss probe carries PSH (${more ? "new data" : "the last segment again"})`, () => {
    const p = RawPeer.create();
    const l = p.stack.tcp.listen({ port: 80 });
    const x = peerConnect(p, l, 80);
    // Ten segments fill the initial window; with `more`, data is left behind them.
    x.conn.write(pattern((more ? 40 : 10) * MSS));
    p.clock.advance(0);
    const burst = p.take().filter((s) => s.payload.length > 0);
    assert.equal(burst.reduce((n, s) => n + s.payload.length, 0), 10 * MSS);
    const last = burst.at(-1)!;
    const end = (last.seq + last.payload.length) >>> 0;
    // Every ACK is lost: the probe timer fires before the RTO.
    let probe: (typeof burst)[number] | undefined;
    for (let t = 0; t < 150 && probe === undefined; t++) {
      p.clock.advance(1);
      probe = p.take().find((s) => s.payload.length > 0);
    }
    assert.ok(probe !== undefined, "a probe was sent");
    assert.equal(p.stack.stats.tcp.tailLossProbes, 1);
    assert.equal(p.stack.stats.tcp.timeouts, 0);
    assert.equal(probe.payload.length, MSS);
    assert.equal(probe.seq, more ? end : (end - MSS) >>> 0);
    assert.ok((probe.flags & PSH) !== 0, "the probe is pushed");
    p.close();
  });
}

/**
 * Drive `clock` event by event until `p` settles: let microtasks run, then
 * jump to the next timer (a frame's delivery, a probe, a delayed ACK).
 * The applications write and read as soon as they can, so the sender is
 * limited by its window, not by the test's steps.
 */
async function untilSettled<T>(clock: ManualClock, p: Promise<T>, maxMs: number): Promise<T> {
  let done = false;
  p.then(() => done = true, () => done = true);
  const start = clock.now();
  while (!done) {
    for (let i = 0; i < 20 && !done; i++) await null;
    const next = clock.nextDeadline();
    if (done || next === undefined || next - start > maxMs) break;
    clock.advance(Math.max(0, next - clock.now()));
  }
  return await p;
}

Deno.test("bulk with offloads under 1 % loss each way: the receiver never waits out its delayed-ACK timer", async () => {
  // A 10 Gbit/s link with a 0.1 ms RTT, 1 % of the frames (super-frames) lost each way.
  const faults = (seed: number) => ({
    loss: 0.01,
    delayMs: 0.05,
    rateBitsPerSecond: 10e9,
    queueFrames: 1000,
    seed,
  });
  const lab = stackPair({ offloads: true, faults: { aToB: faults(13), bToA: faults(14) } });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await untilSettled(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 5000);
  const s = await untilSettled(lab.clock, accepted, 5000);
  const data = pattern(64 << 20, 9);
  const t0 = lab.clock.now();
  const [, got] = await untilSettled(
    lab.clock,
    Promise.all([writeAll(c, data).then(() => c.closeWrite()), readAll(s)]),
    60_000,
  );
  const simMs = lab.clock.now() - t0;
  assert.equal(got.length, data.length);
  for (const at of [0, data.length >> 1, data.length - 4096]) {
    assert.deepEqual(got.subarray(at, at + 4096), data.subarray(at, at + 4096));
  }
  assert.ok(lab.ab.stats.faultLossDrops > 10 && lab.ba.stats.faultLossDrops > 10, "loss both ways");
  const st = lab.a.stats.tcp;
  assert.ok(st.sackRecoveries > 10);
  assert.ok(st.tailLossProbes > 0, "some losses were tail losses, found by a probe");
  // Each probe's ACK came at once: no 40 ms delayed ACK in the whole transfer.
  assert.equal(lab.b.stats.tcp.delayedAcks, 0);
  assert.equal(st.timeouts, 0);
  const gbps = (data.length * 8) / (simMs / 1000) / 1e9;
  assert.ok(gbps > 2, `simulated goodput ${gbps.toFixed(2)} Gbit/s in ${simMs.toFixed(1)} ms`);
  c.close();
  s.close();
  l.close();
  lab.close();
});
