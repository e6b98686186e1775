import assert from "node:assert/strict";
import {
  BufferPool,
  GSO_TCPV4,
  HEADROOM,
  PacketBuffer,
  SIZED_BUFFER_CLASSES,
  SizedBufferPool,
} from "../../../stack/wire/packet_buffer.ts";

/** A frame of `len` bytes at HEADROOM with a byte pattern, some metadata set. */
function frame(len: number): PacketBuffer {
  const b = new PacketBuffer(HEADROOM + len + 64).setFrame(HEADROOM, len);
  for (let i = 0; i < len; i++) b.data[HEADROOM + i] = (i * 13 + 1) & 0xff;
  b.networkOffset = HEADROOM + 14;
  b.gsoType = GSO_TCPV4;
  b.mark = 7;
  b.ct = {};
  return b;
}

Deno.test("SizedBufferPool copies a packet into the smallest class that holds it", async (t) => {
  const cases: { name: string; len: number; size: number }[] = [
    { name: "a 64-byte frame waits in 256 bytes, not in a 64 KiB pool buffer", len: 64, size: 256 },
    { name: "a full 1,514-byte frame in 2,048", len: 1514, size: 2048 },
    { name: "a 9,000-byte jumbo frame in 9,216", len: 9000 - HEADROOM, size: 9216 },
    { name: "larger than every class: a buffer of its own", len: 20_000, size: HEADROOM + 20_000 },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const pool = new SizedBufferPool();
      const src = frame(c.len);
      const copy = pool.copy(src);
      assert.equal(copy.data.length, c.size);
      assert.deepEqual(
        copy.data.subarray(copy.start, copy.end),
        src.data.subarray(src.start, src.end),
      );
      assert.equal(copy.start, src.start);
      assert.equal(copy.networkOffset, src.networkOffset);
      assert.equal(copy.gsoType, GSO_TCPV4, "offload metadata travels");
    });
  }
});

Deno.test("SizedBufferPool reuses free buffers, clears their metadata and bounds what it keeps", () => {
  const pool = new SizedBufferPool(4 * 256);
  const a = pool.copy(frame(64));
  a.mark = 9;
  a.ct = {};
  a.linkDst = new Uint8Array(6);
  pool.put(a);
  assert.equal(pool.freeBytes, 256);
  const b = pool.copy(frame(100));
  assert.equal(b, a, "the free buffer is taken again: no allocation");
  assert.equal(b.mark, 0);
  assert.equal(b.ct, null);
  assert.equal(b.linkDst, null);
  assert.equal(pool.freeBytes, 0);
  // At most maxFreeBytes are kept: the fifth 256-byte buffer is let go.
  const five = Array.from({ length: 5 }, () => pool.copy(frame(64)));
  for (const x of five) pool.put(x);
  assert.equal(pool.freeBytes, 4 * 256);
  // A buffer of its own (no class) is never kept.
  pool.release();
  pool.put(pool.copy(frame(20_000)));
  assert.equal(pool.freeBytes, 0);
  assert.deepEqual(SIZED_BUFFER_CLASSES, [...SIZED_BUFFER_CLASSES].sort((x, y) => x - y));
});

Deno.test("BufferPool.trim lets free buffers beyond the interval's peak go", () => {
  const pool = new BufferPool(100, 1024);
  const held = Array.from({ length: 80 }, () => pool.get()!);
  for (const b of held) pool.put(b);
  assert.equal(pool.made(), 80);
  // The interval's peak was 80 in use: trim keeps them, and resets the peak.
  assert.equal(pool.trim(10), 0);
  // Nothing was in use since: all but the floor go.
  assert.equal(pool.trim(10), 70);
  assert.equal(pool.made(), 10);
  assert.equal(pool.inUse(), 0);
});
