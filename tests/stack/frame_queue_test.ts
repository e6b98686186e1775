import assert from "node:assert/strict";
import { FRAME_RECORD_LEN, FrameQueue } from "../../stack/_frame_queue.ts";
import { GSO_TCPV6, HEADROOM, PacketBuffer } from "../../stack/wire/packet_buffer.ts";

/** A frame of `len` bytes at `start` whose bytes and offsets derive from `tag`. */
function frame(tag: number, len: number, start = HEADROOM): PacketBuffer {
  const b = new PacketBuffer(start + len + 16).setFrame(start, len);
  for (let i = 0; i < len; i++) b.data[start + i] = (tag * 31 + i * 7) & 0xff;
  b.networkOffset = start + 14;
  b.transportOffset = start + 54;
  b.mark = 9;
  b.ct = {};
  return b;
}

/** Shift the oldest frame out and check it is `tag`'s frame of `len` bytes. */
function expectFrame(q: FrameQueue, tag: number, len: number, start = HEADROOM): PacketBuffer {
  const out = new PacketBuffer(Math.max(q.frontEnd(), 2048));
  out.mark = 5;
  assert.equal(q.shiftInto(out), len);
  assert.equal(out.start, start);
  assert.equal(out.end, start + len);
  assert.equal(out.networkOffset, start + 14);
  assert.equal(out.transportOffset, start + 54);
  for (let i = 0; i < len; i++) {
    assert.equal(out.data[start + i], (tag * 31 + i * 7) & 0xff, `frame ${tag} byte ${i}`);
  }
  assert.equal(out.mark, 0, "per-packet metadata is not carried (as PacketBuffer.copyTo)");
  assert.equal(out.ct, null);
  return out;
}

Deno.test("FrameQueue carries a super-frame's virtio-net metadata and offsets through the queue", () => {
  const q = new FrameQueue(1 << 20);
  const src = frame(1, 3000);
  src.vnetFlags = 1;
  src.gsoType = GSO_TCPV6;
  src.gsoHdrLen = 86;
  src.gsoSize = 1428;
  src.csumStart = src.start + 54;
  src.csumOffset = 16;
  q.push(src);
  src.data.fill(0); // the queue holds a copy, not the caller's buffer
  assert.equal(q.length, 1);
  assert.equal(q.frameBytes, 3000);
  assert.equal(q.frontLength(), 3000);
  assert.equal(q.frontEnd(), HEADROOM + 3000);
  const out = expectFrame(q, 1, 3000);
  assert.deepEqual(
    [out.vnetFlags, out.gsoType, out.gsoHdrLen, out.gsoSize, out.csumStart, out.csumOffset],
    [1, GSO_TCPV6, 86, 1428, HEADROOM + 54, 16],
  );
  assert.equal(q.length, 0);
  assert.equal(q.frameBytes, 0);
});

Deno.test("FrameQueue keeps order and bytes across wrap-around and growth", () => {
  // Starts with room for two small frames; frames of varied sizes and starts
  // are pushed and shifted so records and frames straddle the ring's end.
  const q = new FrameQueue(1 << 16, 2 * (FRAME_RECORD_LEN + 60));
  const want: { tag: number; len: number; start: number }[] = [];
  let tag = 0;
  for (let round = 0; round < 200; round++) {
    const pushes = 1 + (round % 4);
    for (let i = 0; i < pushes; i++) {
      const len = 60 + ((tag * 37) % 700);
      const start = HEADROOM - (tag % 3) * 14;
      q.push(frame(tag, len, start));
      want.push({ tag, len, start });
      tag++;
    }
    const shifts = round % 5 === 4 ? want.length : 1 + (round % 3);
    for (let i = 0; i < shifts && want.length > 0; i++) {
      const w = want.shift()!;
      expectFrame(q, w.tag, w.len, w.start);
    }
    assert.equal(q.length, want.length);
    assert.equal(q.frameBytes, want.reduce((s, w) => s + w.len, 0));
  }
  while (want.length > 0) {
    const w = want.shift()!;
    expectFrame(q, w.tag, w.len, w.start);
  }
  // The ring grew to what it held at most, not to the cap.
  assert.ok(q.capacity < 1 << 16, `capacity ${q.capacity}`);
  assert.ok(q.capacity >= 2 * (FRAME_RECORD_LEN + 60));
});

Deno.test("FrameQueue: shift drops the oldest, clear drops all and keeps the ring", () => {
  const q = new FrameQueue(4096);
  q.push(frame(1, 100));
  q.push(frame(2, 200));
  q.push(frame(3, 300));
  assert.equal(q.shift(), 100);
  assert.equal(q.frameBytes, 500);
  expectFrame(q, 2, 200);
  const cap = q.capacity;
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.frameBytes, 0);
  assert.equal(q.capacity, cap);
  q.push(frame(4, 64));
  expectFrame(q, 4, 64);
});

Deno.test("FrameQueue: a frame larger than maxBytes still fits (the owner bounds what it pushes)", () => {
  const q = new FrameQueue(256);
  q.push(frame(1, 60));
  q.push(frame(2, 1000));
  assert.ok(q.capacity >= 2 * FRAME_RECORD_LEN + 1060);
  expectFrame(q, 1, 60);
  expectFrame(q, 2, 1000);
});
