import assert from "node:assert/strict";
import { ManualClock, SystemClock } from "../../stack/clock.ts";

Deno.test("ManualClock fires in deadline order, ties in scheduling order, skips cancelled", () => {
  const c = new ManualClock();
  const seen: string[] = [];
  c.schedule(20, () => seen.push("b"));
  c.schedule(10, () => seen.push("a"));
  c.schedule(20, () => seen.push("c"));
  const gone = c.schedule(15, () => seen.push("x"));
  gone.cancel();
  gone.cancel();
  assert.equal(c.pending(), 3);
  assert.equal(c.nextDeadline(), 10);
  c.advance(20);
  assert.deepEqual(seen, ["a", "b", "c"]);
  assert.equal(c.pending(), 0);
  assert.equal(c.nextDeadline(), undefined);
});

Deno.test("SystemClock.runDue fires due timers from the caller, without the event loop", () => {
  const c = new SystemClock();
  let fired = 0;
  c.schedule(0, () => fired++);
  const later = c.schedule(60_000, () => fired += 100);
  // Busy-wait (no await): the armed setTimeout cannot run, runDue does.
  const until = performance.now() + 2;
  while (performance.now() < until) { /* spin */ }
  assert.equal(c.runDue(), 1);
  assert.equal(fired, 1);
  assert.equal(c.pending(), 1);
  const next = c.nextDeadline()!;
  assert.ok(next > c.now() + 59_000);
  later.cancel();
  assert.equal(c.runDue(), 0);
  assert.equal(c.nextDeadline(), undefined);
});

Deno.test("SystemClock fires on its own when the event loop is free", async () => {
  const c = new SystemClock();
  const order: number[] = [];
  const done = new Promise<void>((resolve) => {
    c.schedule(5, () => {
      order.push(5);
      resolve();
    });
    // An earlier timer scheduled after a later one re-arms the setTimeout.
    c.schedule(1, () => order.push(1));
  });
  await done;
  assert.deepEqual(order, [1, 5]);
  assert.equal(c.pending(), 0);
});

Deno.test("SystemClock.hold keeps coarseNow() at the pass's start until release; now() stays exact", () => {
  const c = new SystemClock();
  const before = c.coarseNow();
  const held = c.hold();
  assert.ok(held >= before);
  // Spin past the held time: coarseNow() must not move while held, now() must.
  const spinUntil = performance.now() + 3;
  while (performance.now() < spinUntil) { /* spin */ }
  assert.equal(c.coarseNow(), held);
  assert.ok(c.now() >= held + 3, "now() is the real time");
  // Timers count from the real time.
  const t = c.schedule(1000, () => {});
  assert.ok(c.nextDeadline()! >= held + 1003);
  t.cancel();
  c.release();
  const after = c.coarseNow();
  assert.ok(after >= held + 3, `released: ${after} ≥ ${held} + 3`);
  // A second pass holds a later time: coarseNow() never goes back.
  assert.ok(c.hold() >= after);
  c.release();
});

Deno.test("ManualClock.coarseNow() is its now()", () => {
  const c = new ManualClock(5);
  c.advance(10);
  assert.equal(c.coarseNow(), 15);
  assert.equal(c.coarseNow(), c.now());
});
