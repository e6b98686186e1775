/**
 * BufferPool gives memory back: free buffers beyond what the last interval
 * needed at its peak go to the garbage collector when the stack trims (issue
 * #16 item 11: a burst's buffers used to stay for good).
 */
import assert from "node:assert/strict";
import { BufferPool, type PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { ManualClock, SeededRandom, Stack } from "../../../stack/mod.ts";

Deno.test("BufferPool.trim keeps the last interval's peak (and a floor), lets the rest go", () => {
  const pool = new BufferPool(1000, 256);
  const take = (n: number) => Array.from({ length: n }, () => pool.get()!);
  const give = (bs: PacketBuffer[]) => bs.forEach((b) => pool.put(b));
  give(take(500)); // a burst
  assert.equal(pool.made(), 500);
  // The burst was this interval's peak: kept.
  assert.equal(pool.trim(16), 0);
  // The next interval needs 40 at most: everything beyond goes.
  give(take(40));
  assert.equal(pool.trim(16), 460);
  assert.equal(pool.made(), 40);
  // Buffers in use are never let go: 30 in use, 10 free beyond that peak.
  const held = take(30);
  assert.equal(pool.trim(16), 10);
  assert.equal(pool.trim(16), 0, "all 30 are in use");
  give(held);
  assert.equal(pool.trim(16), 0, "this interval's peak was 30");
  assert.equal(pool.trim(16), 14, "a quiet interval: down to the floor");
  assert.equal(pool.made(), 16);
  assert.equal(pool.inUse(), 0);
});

Deno.test("a stack trims its pool every 10 s", () => {
  const clock = new ManualClock();
  const s = new Stack({ clock, random: new SeededRandom(1), hostname: "t" });
  const bs = Array.from({ length: 300 }, () => s.pool.get()!);
  for (const b of bs) s.pool.put(b);
  clock.advance(10_000); // the interval that had the burst keeps it
  assert.equal(s.pool.made(), 300);
  clock.advance(10_000); // a quiet interval: down to the floor
  assert.equal(s.pool.made(), 64);
  s.close();
});
