/**
 * SACK (RFC 2018, RFC 2883) and RACK-TLP (RFC 8985): the blocks a
 * receiver reports for out-of-order and duplicate data, checked on the
 * wire against a raw peer; a sender that retransmits only the holes the
 * blocks leave; and a tail loss recovered by a probe instead of an RTO.
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
  type WireSeg,
  writeAll,
} from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

/** The peer sends `[from, to)` (offsets from its first data byte) and returns the stack's answers. */
function sendRange(
  p: RawPeer,
  x: ReturnType<typeof peerConnect>,
  data: Uint8Array,
  from: number,
  to: number,
): WireSeg[] {
  return p.inject(
    peerSeg(p, x.pc, ACK | PSH, {
      seq: (x.pc.seq + from) >>> 0,
      payload: data.subarray(from, to),
    }),
  );
}

/** The SACK blocks of the last ACK in `segs`, as offsets from `base`. */
function blocks(segs: WireSeg[], base: number): { ack: number; sack: [number, number][] } {
  const a = segs.filter((s) => s.payload.length === 0).at(-1);
  if (a === undefined) throw new Error("no ACK sent");
  return {
    ack: (a.ack - base) | 0,
    sack: a.sack.map(([l, r]) => [(l - base) | 0, (r - base) | 0]),
  };
}

for (const ts of [true, false]) {
  Deno.test(`RFC 2018 §4: SACK blocks for out-of-order data, most recent first (timestamps ${ts})`, () => {
    const p = RawPeer.create();
    const l = p.stack.tcp.listen({ port: 80 });
    const x = peerConnect(p, l, 80, { ts });
    assert.ok(x.pc.sackOk);
    const base = x.pc.seq;
    const data = pattern(2000);
    // Each row: the range the peer sends, then the ACK and blocks the stack must answer with.
    const rows: { send: [number, number]; ack: number; sack: [number, number][] }[] = [
      { send: [100, 200], ack: 0, sack: [[100, 200]] },
      { send: [300, 400], ack: 0, sack: [[300, 400], [100, 200]] },
      { send: [500, 600], ack: 0, sack: [[500, 600], [300, 400], [100, 200]] },
      // Extends the oldest block: it becomes the most recent one.
      { send: [150, 250], ack: 0, sack: [[100, 250], [500, 600], [300, 400]] },
      // A fourth block: with timestamps only three fit, and the oldest one is left out.
      {
        send: [700, 800],
        ack: 0,
        sack: ts
          ? [[700, 800], [100, 250], [500, 600]]
          : [[700, 800], [100, 250], [500, 600], [300, 400]],
      },
      // Filling the first hole advances the ACK; the blocks left keep their order.
      { send: [0, 100], ack: 250, sack: [[700, 800], [500, 600], [300, 400]] },
    ];
    for (const r of rows) {
      const out = sendRange(p, x, data, r.send[0], r.send[1]);
      assert.deepEqual(blocks(out, base), { ack: r.ack, sack: r.sack }, `after [${r.send}]`);
    }
    assert.equal(p.stack.stats.tcp.outOfOrderQueued, 5);
    p.close();
  });
}

Deno.test("RFC 2883: duplicate data is reported in a D-SACK block first", async (t) => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const x = peerConnect(p, l, 80);
  const base = x.pc.seq;
  const data = pattern(2000);
  sendRange(p, x, data, 0, 300);
  sendRange(p, x, data, 500, 600);
  await t.step("a duplicate below the ACK", () => {
    const out = sendRange(p, x, data, 0, 100);
    assert.deepEqual(blocks(out, base), { ack: 300, sack: [[0, 100], [500, 600]] });
  });
  await t.step("a segment partly below the ACK: the old part is the D-SACK", () => {
    const out = sendRange(p, x, data, 200, 400);
    assert.deepEqual(blocks(out, base), { ack: 400, sack: [[200, 300], [500, 600]] });
  });
  await t.step("a duplicate of out-of-order data: D-SACK, then the block holding it", () => {
    const out = sendRange(p, x, data, 500, 600);
    assert.deepEqual(blocks(out, base), { ack: 400, sack: [[500, 600], [500, 600]] });
  });
  await t.step("the next ACK carries no D-SACK again", () => {
    const out = sendRange(p, x, data, 700, 800);
    assert.deepEqual(blocks(out, base), { ack: 400, sack: [[700, 800], [500, 600]] });
  });
  assert.equal(p.stack.stats.tcp.dsacksSent, 3);
  // Every byte arrived once in the reader's view.
  sendRange(p, x, data, 400, 500);
  sendRange(p, x, data, 600, 700);
  const buf = new Uint8Array(2000);
  assert.equal(x.conn.read(buf), 800);
  assert.deepEqual(buf.subarray(0, 800), data.subarray(0, 800));
  p.close();
});

/** Sequence ranges of data segments a sent, split by first transmission and retransmission. */
function transmissions(log: WireSeg[]) {
  const seen = new Set<number>();
  let retransmitted = 0;
  const again: [number, number][] = [];
  for (const s of log) {
    if (s.payload.length === 0) continue;
    let dup = 0;
    for (let i = 0; i < s.payload.length; i++) {
      const k = (s.seq + i) >>> 0;
      if (seen.has(k)) dup++;
      else seen.add(k);
    }
    if (dup > 0) {
      retransmitted += dup;
      again.push([s.seq, s.seq + s.payload.length]);
    }
  }
  return { retransmitted, again };
}

Deno.test("SACK recovery (RFC 6675 with RACK): only the holes are sent again", async () => {
  const mss = 1448;
  // Drop the first transmissions of segments 5, 6 and 20 of the transfer (a 2-segment and a 1-segment hole).
  const holes = new Set([5, 6, 20]);
  let isn = -1;
  const droppedBytes: number[] = [];
  const firstSent = new Set<number>();
  const lab = stackPair({
    delayMs: 10,
    capture: true,
    drop: ({ dir, seg }) => {
      if (dir !== "ab" || seg === null || seg.payload.length === 0 || isn < 0) return false;
      const k = (seg.seq - isn) >>> 0;
      if (firstSent.has(k)) return false;
      firstSent.add(k);
      if (k % mss === 0 && holes.has(k / mss)) {
        droppedBytes.push(seg.payload.length);
        return true;
      }
      return false;
    },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const conn = [...lab.a.tcp.connections()][0]!;
  assert.equal(conn.mss, mss);
  isn = conn.sndNxt;
  const data = pattern(40 * mss);
  const work = Promise.all([writeAll(c, data).then(() => c.closeWrite()), readAll(s)]);
  const [, got] = await drive(lab.clock, work, 20_000);
  assert.deepEqual(got, data);
  const ab = lab.log.filter((x) => x.dir === "ab");
  const t = transmissions(ab);
  assert.equal(droppedBytes.length, 3);
  assert.equal(t.retransmitted, droppedBytes.reduce((a, b) => a + b, 0), JSON.stringify(t.again));
  assert.equal(lab.a.stats.tcp.timeouts, 0, "no RTO");
  assert.ok(lab.a.stats.tcp.sackRecoveries >= 1);
  assert.ok(
    lab.log.some((x) => x.dir === "ba" && x.sack.length > 0),
    "the receiver sent SACK blocks",
  );
  c.close();
  s.close();
  l.close();
  lab.close();
});

Deno.test("RACK-TLP (RFC 8985 §7): a tail loss is recovered by a probe, without an RTO", async () => {
  const mss = 1448;
  let isn = -1;
  let dropped = 0;
  const total = 14 * mss;
  const lab = stackPair({
    delayMs: 10,
    capture: true,
    // Drop the first transmission of the last two segments of the burst.
    drop: ({ dir, seg }) => {
      if (dir !== "ab" || seg === null || seg.payload.length === 0 || isn < 0) return false;
      const k = (seg.seq - isn) >>> 0;
      if (k >= total - 2 * mss && dropped < 2) {
        dropped++;
        return true;
      }
      return false;
    },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const conn = [...lab.a.tcp.connections()][0]!;
  isn = conn.sndNxt;
  const data = pattern(total, 5);
  await c.write(data);
  const got = await drive(lab.clock, readAll(s, total), 5000);
  assert.deepEqual(got, data);
  assert.equal(dropped, 2);
  assert.ok(lab.a.stats.tcp.tailLossProbes >= 1, "a tail loss probe was sent");
  assert.equal(lab.a.stats.tcp.timeouts, 0, "and no RTO fired");
  const t = transmissions(lab.log.filter((x) => x.dir === "ab"));
  assert.equal(t.retransmitted, 2 * mss, "only the two lost segments were sent again");
  // The recovery took about one PTO (2·SRTT = 40 ms) plus an RTT, far below the 200 ms RTO floor.
  const last = lab.log.filter((x) => x.dir === "ab" && x.payload.length > 0).at(-1)!;
  const first = lab.log.find((x) => x.dir === "ab" && x.payload.length > 0)!;
  assert.ok(last.at - first.at < 200, `recovered in ${last.at - first.at} ms`);
  c.close();
  s.close();
  l.close();
  lab.close();
});

Deno.test("RFC 2883: D-SACK blocks received are recognised (below SND.UNA, and inside the next block)", () => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const x = peerConnect(p, l, 80);
  x.conn.setNoDelay(true);
  x.conn.write(pattern(4 * 1000));
  p.clock.advance(0);
  const segs = p.take().filter((s) => s.payload.length > 0);
  assert.ok(segs.length >= 3);
  const una = x.pc.ack;
  const s1 = (una + segs[0]!.payload.length) >>> 0;
  const s2 = (s1 + segs[1]!.payload.length) >>> 0;
  const s3 = (s2 + segs[2]!.payload.length) >>> 0;
  // ACK the first segment, SACK the third.
  p.inject(peerSeg(p, x.pc, ACK, { ack: s1, sack: [[s2, s3]] }));
  assert.equal(p.stack.stats.tcp.dsacksReceived, 0);
  // The third arrived twice: D-SACK inside the block that holds it.
  p.inject(peerSeg(p, x.pc, ACK, { ack: s1, sack: [[s2, s3], [s2, s3]] }));
  assert.equal(p.stack.stats.tcp.dsacksReceived, 1);
  // The first arrived twice: D-SACK below the ACK.
  p.inject(peerSeg(p, x.pc, ACK, { ack: s1, sack: [[una, s1], [s2, s3]] }));
  assert.equal(p.stack.stats.tcp.dsacksReceived, 2);
  p.close();
});
