import assert from "node:assert/strict";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/clock.ts";
import { GSO_TCPV4, HEADROOM, PacketBuffer } from "../../stack/wire/packet_buffer.ts";

/** A frame of `len` bytes whose byte 14 is `tag`. */
function frame(len: number, tag = 0): PacketBuffer {
  const p = new PacketBuffer().setFrame(HEADROOM, len);
  p.data.fill(0xa5, p.start, p.end);
  p.data[p.start + 14] = tag;
  return p;
}

function collector() {
  const got: number[] = [];
  const lens: number[] = [];
  return {
    got,
    lens,
    deliverFrame(p: PacketBuffer) {
      got.push(p.data[p.start + 14]!);
      lens.push(p.length());
    },
  };
}

Deno.test("MemoryLink delivers on the clock, in order, both ways", async (t) => {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock, names: ["a", "b"] });
  const ca = collector(), cb = collector();
  a.attach(ca);
  b.attach(cb);
  await t.step("nothing arrives before the clock runs", () => {
    for (let i = 0; i < 5; i++) assert.equal(a.writePacket(frame(60, i)), true);
    assert.equal(b.writePacket(frame(60, 9)), true);
    assert.deepEqual(cb.got, []);
    assert.equal(b.pending(), 5);
    assert.equal(clock.pending(), 2, "one flush per direction, not per frame");
  });
  await t.step("advance(0) delivers every queued frame in order", () => {
    clock.advance(0);
    assert.deepEqual(cb.got, [0, 1, 2, 3, 4]);
    assert.deepEqual(ca.got, [9]);
    assert.equal(a.stats.txFrames, 5);
    assert.equal(b.stats.rxFrames, 5);
  });
  await t.step("the receiver gets a copy, not the sender's buffer", () => {
    const p = frame(60, 7);
    a.writePacket(p);
    p.data[p.start + 14] = 8;
    clock.runDue();
    assert.equal(cb.got.at(-1), 7);
  });
});

Deno.test("MemoryLink replies written during delivery go in the next flush, no recursion", () => {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock });
  let depth = 0, maxDepth = 0, bounces = 0;
  const bounce = (self: typeof a) => ({
    deliverFrame(p: PacketBuffer) {
      depth++;
      maxDepth = Math.max(maxDepth, depth);
      if (++bounces < 10) self.writePacket(p);
      depth--;
    },
  });
  a.attach(bounce(a));
  b.attach(bounce(b));
  a.writePacket(frame(60));
  clock.advance(0);
  assert.equal(bounces, 10);
  assert.equal(maxDepth, 1);
});

Deno.test("MemoryLink delay holds frames until the delay has passed", () => {
  const clock = new ManualClock();
  const [a, b] = MemoryLink.pair({ clock, delayMs: 5 });
  const cb = collector();
  b.attach(cb);
  a.writePacket(frame(60, 1));
  clock.advance(4);
  assert.deepEqual(cb.got, []);
  clock.advance(1);
  assert.deepEqual(cb.got, [1]);
});

Deno.test("MemoryLink drops and counts what it cannot carry", async (t) => {
  const clock = new ManualClock();
  await t.step("a frame above mtu + 14", () => {
    const [a, b] = MemoryLink.pair({ clock, mtu: 1500 });
    const cb = collector();
    b.attach(cb);
    assert.equal(a.writePacket(frame(1514)), true);
    assert.equal(a.writePacket(frame(1515)), false);
    clock.advance(0);
    assert.deepEqual(cb.lens, [1514]);
    assert.equal(a.stats.txTooBigDrops, 1);
  });
  await t.step("a GSO super-frame without offloads, but not with them", () => {
    const [a] = MemoryLink.pair({ clock });
    const p = frame(9000);
    p.gsoType = GSO_TCPV4;
    p.gsoSize = 1448;
    assert.equal(a.writePacket(p), false);
    assert.equal(a.stats.txGsoDrops, 1);
    const [c, d] = MemoryLink.pair({ clock, offloads: true });
    let gso = 0;
    d.attach({ deliverFrame: (q) => gso = q.gsoSize });
    assert.equal(c.writePacket(p), true);
    clock.advance(0);
    assert.equal(gso, 1448);
  });
  await t.step("pool exhausted", () => {
    const [a] = MemoryLink.pair({ clock, poolLimit: 2 });
    assert.equal(a.writePacket(frame(60)), true);
    assert.equal(a.writePacket(frame(60)), true);
    assert.equal(a.writePacket(frame(60)), false);
    assert.equal(a.stats.txPoolDrops, 1);
    clock.advance(0);
    assert.equal(a.writePacket(frame(60)), true, "buffers return to the pool after delivery");
  });
  await t.step("peer closed", () => {
    const [a, b] = MemoryLink.pair({ clock });
    a.writePacket(frame(60));
    b.close();
    clock.advance(0);
    assert.equal(b.stats.rxFrames, 0);
    assert.equal(a.writePacket(frame(60)), false);
    assert.equal(a.stats.txDownDrops, 1);
    assert.equal(b.isUp(), false);
  });
  await t.step("no dispatcher attached", () => {
    const [a, b] = MemoryLink.pair({ clock });
    a.writePacket(frame(60));
    clock.advance(0);
    assert.equal(b.stats.rxNoDispatcherDrops, 1);
  });
});
