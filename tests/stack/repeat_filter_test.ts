/**
 * The repeat filter NDP asks when its neighbour table is full: a key is
 * known from its second sighting for one to two windows, and random keys
 * at a flood's rate almost never pass as known.
 */
import assert from "node:assert/strict";
import { RepeatFilter } from "../../stack/repeat_filter.ts";
import { SeededRandom } from "../../stack/random.ts";

const MAC = new Uint8Array([2, 0, 0, 0, 0, 1]);

function key(i: number): Uint8Array {
  const k = new Uint8Array(16);
  new DataView(k.buffer).setUint32(12, i);
  k[0] = 0xfe;
  k[1] = 0x80;
  return k;
}

Deno.test("RepeatFilter: a key is known from its second sighting, across one window change, not after two", () => {
  const f = new RepeatFilter(new SeededRandom(1), 2000);
  const k = key(7);
  const seen = (t: number) => f.repeated(t, k, 0, 16, MAC, 0, 6);
  assert.equal(f.bytes, 0, "made on first use");
  assert.equal(seen(0), false, "first sighting");
  assert.equal(f.bytes, 1 << 20);
  assert.equal(seen(1000), true, "again 1 s later");
  // Recorded last at 1000 (window 0–2000); the window from 2500 still knows it.
  assert.equal(seen(2500), true, "in the next window");
  // Last recorded at 2500 (window 2500–4500); from 6500 both windows are over.
  assert.equal(seen(6600), false, "after two windows");
  // The other part of the key counts: another MAC with the same address is new.
  assert.equal(f.repeated(6700, k, 0, 16, new Uint8Array([2, 0, 0, 0, 0, 2]), 0, 6), false);
});

Deno.test("RepeatFilter: 250,000 random keys in a window (an NS flood of 125,000/s) pass as known under 3 %", () => {
  const f = new RepeatFilter(new SeededRandom(2), 2000);
  const r = new SeededRandom(3);
  const k = new Uint8Array(16);
  let known = 0;
  const n = 250_000;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 16; j += 4) new DataView(k.buffer).setUint32(j, r.uint32());
    if (f.repeated(i * 0.008, k, 0, 16, MAC, 0, 6)) known++;
  }
  // Bloom filters of 2^22 bits with 2 positions: (1 - e^(-2n/m))² ≈ 1.4 % at the window's end.
  assert.ok(known / n < 0.03, `${known} of ${n} passed as known`);
  assert.ok(known > 0, "the estimate is of a real filter (some false positives)");
});
