/**
 * The minimiser of `_minimise.ts` on artificial failing targets whose
 * smallest failing input is known, and the `Fuzzer`'s promise that its
 * frames depend on the seed alone (the host target's state kept by
 * `tend()` included).
 */
import assert from "node:assert/strict";
import { minimiseEvents, minimiseFrame } from "./_minimise.ts";
import { Fuzzer, loadEvents, replay, reproduce, saveEvents } from "./_fuzz.ts";
import { Nic, SeededRandom, TcpConnection, type TcpSegment } from "../../stack/mod.ts";
import type { PacketBuffer } from "../../stack/wire/packet_buffer.ts";

function noise(n: number, seed: number): Uint8Array {
  const r = new SeededRandom(seed);
  return Uint8Array.from({ length: n }, () => 1 + (r.uint32() % 255));
}

Deno.test("minimiseFrame: truncates to the shortest failing length and zeroes every byte that does not matter", () => {
  // Fails when byte 7 is 0xab and byte 19 has its low bit set: the answer is 20 bytes, 2 non-zero.
  const fails = (f: Uint8Array) => f.length >= 20 && f[7] === 0xab && (f[19]! & 1) === 1;
  const f = noise(300, 1);
  f[7] = 0xab;
  f[19] = 0x35;
  const calls: number[] = [];
  const m = minimiseFrame(f, (g) => (calls.push(g.length), fails(g)));
  assert.equal(m.length, 20);
  assert.equal(m[7], 0xab);
  assert.equal(m[19], 0x35);
  assert.deepEqual([...m].filter((b, i) => i !== 7 && i !== 19 && b !== 0), []);
  assert.ok(fails(m));
  assert.equal(f.length, 300, "the input is not changed");
  assert.ok(calls.length < 400, `${calls.length} predicate calls`);
});

Deno.test("minimiseFrame: a failure that is not monotonic in length still ends on a failing input", () => {
  // Fails at even lengths ≥ 10 only: halving cuts may skip past; the result must fail.
  const fails = (f: Uint8Array) => f.length >= 10 && f.length % 2 === 0 && f[3] !== 0;
  const m = minimiseFrame(noise(101 * 2, 2), fails);
  assert.ok(fails(m));
  assert.equal(m.length, 10);
  assert.deepEqual([...m].map((b, i) => (i === 3 ? b !== 0 : b === 0)), Array(10).fill(true));
});

Deno.test("minimiseFrame and minimiseEvents refuse an input that does not fail, and respect maxTries", () => {
  assert.throws(() => minimiseFrame(new Uint8Array(4), () => false), /does not fail/);
  assert.throws(() => minimiseEvents([1, 2], () => false), /does not fail/);
  let n = 0;
  const m = minimiseFrame(noise(1000, 3), () => (n++, true), { maxTries: 5 });
  assert.ok(n <= 6, `${n} calls`);
  assert.ok(m.length < 1000);
});

Deno.test("minimiseEvents: keeps only the events the failure needs, in order", () => {
  // Fails when "open" comes before "crash" with "close" not between them.
  const fails = (e: readonly string[]) => {
    let open = false;
    for (const x of e) {
      if (x === "crash" && open) return true;
      if (x === "open") open = true;
      if (x === "close") open = false;
    }
    return false;
  };
  const ev = [
    ...Array.from({ length: 40 }, (_, i) => `a${i}`),
    "open",
    ...Array.from({ length: 70 }, (_, i) => `b${i}`),
    "close",
    "open",
    ...Array.from({ length: 9 }, (_, i) => `c${i}`),
    "crash",
    "d",
  ];
  assert.deepEqual(minimiseEvents(ev, fails), ["open", "crash"]);
});

Deno.test("Fuzzer: the same seed sends the same frames, across run calls and settles", () => {
  const go = (seed: number) => {
    const f = new Fuzzer(seed);
    assert.equal(f.run({ frames: 3000 }), null);
    assert.equal(f.settle(), null);
    assert.equal(f.run({ frames: 1000 }), null);
    assert.equal(f.settle(), null);
    assert.equal(f.frames, 4000);
    return f.reached();
  };
  const a = go(77);
  assert.deepEqual(go(77), a);
  assert.notDeepEqual(go(78), a);
  assert.ok(a["v4 delivered"]! > 0 && a["v6 NDP received"]! > 0);
});

Deno.test("replay and reproduce: saved events round-trip, and a failure that does not come back falls back to the seed", () => {
  const ev = [
    { frame: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x0a, 8, 6]) },
    { advance: 1500 },
  ];
  assert.deepEqual(loadEvents(saveEvents(ev)), ev);
  assert.equal(replay("ipv4 router", ev), null);
  assert.equal(replay("ipv6 router", ev), null);
  assert.throws(() => replay("no such", ev), /no fuzz target/);
  const r = reproduce("ipv4 router", ev, "TypeError: not this one");
  assert.equal(r.kind, "seed");
  assert.deepEqual(r.events, [ev[0]]);
});

Deno.test("Fuzzer to reproducer: a planted crash is found, reproduced from the frame alone and minimised", () => {
  // A bug planted in the routers' NIC (lan0; the host's is eth0): any IPv4 UDP frame of
  // more than 60 bytes throws.
  const deliver = Object.getOwnPropertyDescriptor(Nic.prototype, "deliverFrame")!;
  Nic.prototype.deliverFrame = function (this: Nic, pkt: PacketBuffer) {
    const d = pkt.data, at = pkt.start;
    if (
      this.name === "lan0" && pkt.end - at > 60 && d[at + 12] === 8 && d[at + 13] === 0 &&
      d[at + 23] === 17
    ) {
      throw new RangeError("planted");
    }
    return deliver.value.call(this, pkt);
  };
  try {
    const f = new Fuzzer(5);
    const fail = f.run({ frames: 10_000 });
    assert.ok(fail !== null, "the planted bug was not hit");
    assert.equal(fail.target, "ipv4 router");
    assert.match(fail.signature, /^RangeError: planted/);
    assert.equal(replay(fail.target, fail.history), fail.signature);
    // The seed and index reproduce it exactly: the same frames, the same failing one.
    assert.equal(fail.index, f.frames - 1);
    const again = new Fuzzer(5).run({ frames: fail.index + 1 });
    assert.equal(again?.index, fail.index);
    assert.equal(again?.frameHex, fail.frameHex);
    const r = reproduce(fail.target, fail.history, fail.signature);
    assert.equal(r.kind, "frame");
    assert.equal(r.events.length, 1);
    const m = (r.events[0] as { frame: Uint8Array }).frame;
    assert.equal(m.length, 61);
    assert.deepEqual([...m.keys()].filter((i) => m[i] !== 0), [12, 23]);
    assert.equal(replay(fail.target, r.events), fail.signature);
  } finally {
    Object.defineProperty(Nic.prototype, "deliverFrame", deliver);
  }
});

Deno.test("Fuzzer: a failure deep in the host's long-lived TCP connection replays from the history", () => {
  // Planted: the IPv6 connection throws on its 41st segment. Reaching it needs the state
  // the host's tend() built (the connection it opened, the data it wrote), so a replay
  // on a fresh host only fails the same way if tend() does the same again.
  const arrives = Object.getOwnPropertyDescriptor(TcpConnection.prototype, "segmentArrives")!;
  TcpConnection.prototype.segmentArrives = function (this: TcpConnection, seg: TcpSegment) {
    if (this.family === 6 && this.segmentsReceived >= 40) throw new RangeError("planted deep");
    return arrives.value.call(this, seg);
  };
  try {
    const fail = new Fuzzer(5).run({ frames: 100_000 });
    assert.ok(fail !== null, "the planted bug was not hit");
    assert.equal(fail.target, "host");
    assert.match(fail.signature, /^RangeError: planted deep/);
    assert.equal(replay(fail.target, fail.history), fail.signature);
    assert.equal(replay(fail.target, fail.history.slice(-1)), null, "the last frame alone fails");
  } finally {
    Object.defineProperty(TcpConnection.prototype, "segmentArrives", arrives);
  }
});
