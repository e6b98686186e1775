import assert from "node:assert/strict";
import { ManualClock } from "../../stack/mod.ts";
import { acceptRate, bulkOnce, idleHeap, pump } from "../../bench/_tcp_mem.ts";

for (const offloads of [true, false]) {
  for (const family of [4, 6] as const) {
    Deno.test(`bulkOnce() moves 4 MiB intact over IPv${family}, offloads ${offloads}`, async () => {
      const r = await bulkOnce(4 << 20, offloads, family);
      assert.equal(r.bytes, 4 << 20);
      assert.ok(r.seconds > 0 && r.gbps > 0 && r.cpuSeconds > 0, JSON.stringify(r));
      // A lossless link with a 0 ms RTT: no timer had to fire.
      assert.equal(r.pump.idleJumps, 0, JSON.stringify(r));
      assert.ok(r.segmentsSent >= (offloads ? 64 : (4 << 20) / 1448), JSON.stringify(r));
    });
  }
}

Deno.test("idleHeap() holds every connection established on both ends", async () => {
  const r = await idleHeap(300);
  assert.equal(r.conns, 300);
  assert.equal(r.established, 300);
  // Without --expose-gc the heap figures include garbage; with it, they must grow.
  if (r.gcExposed) assert.ok(r.heapAfter > r.heapBefore, JSON.stringify(r));
  assert.equal(r.bytesPerEnd * 2, r.bytesPerConnection);
});

Deno.test("acceptRate() completes every short connection", async () => {
  const r = await acceptRate(300, 16);
  assert.equal(r.conns, 300);
  assert.ok(r.acceptsPerSecond > 0 && r.seconds > 0, JSON.stringify(r));
});

Deno.test("pump() throws when nothing is left to run", async () => {
  const clock = new ManualClock();
  await assert.rejects(pump(clock, () => false), /nothing left to run/);
});

Deno.test("pump() jumps to the next timer when idle", async () => {
  const clock = new ManualClock();
  let fired = false;
  clock.schedule(30_000, () => fired = true);
  const st = await pump(clock, () => fired);
  assert.equal(clock.now(), 30_000);
  assert.equal(st.idleJumps, 1);
});
