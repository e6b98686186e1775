import assert from "node:assert/strict";
import { BufferPool } from "../../../stack/wire/packet_buffer.ts";

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
