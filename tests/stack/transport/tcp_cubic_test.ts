/**
 * CUBIC (RFC 9438) against its formulas: the multiplicative decrease
 * (β = 0.7, §4.6), K and W_cubic(t) (§4.2, eq. 1-2), the window's growth
 * after a loss tracking W_cubic(t), fast convergence (§4.7) and the
 * timeout (§4.8); NewReno's halving for comparison; and one connection
 * whose window after a real loss is what the formula says.
 */
import assert from "node:assert/strict";
import { Cubic, CUBIC_BETA, CUBIC_C, Reno } from "../../../stack/transport/mod.ts";
import { readAll, stackPair, writeAll } from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

const MSS = 1000;
const near = (a: number, b: number, eps: number, msg = "") =>
  assert.ok(Math.abs(a - b) <= eps, `${msg} ${a} is not within ${eps} of ${b}`);

/** Ack one window per RTT, segment by segment, for `rtts` round trips from `start` ms. */
function run(cc: Cubic, start: number, rttMs: number, rtts: number, each: (t: number) => void) {
  let now = start;
  for (let r = 0; r < rtts; r++) {
    const segs = Math.floor(cc.cwnd / MSS);
    for (let i = 0; i < segs; i++) cc.onAck(MSS, MSS, now + (i * rttMs) / segs, rttMs);
    now += rttMs;
    each((now - start) / 1000);
  }
}

Deno.test("RFC 9438 constants: β = 0.7, C = 0.4", () => {
  assert.equal(CUBIC_BETA, 0.7);
  assert.equal(CUBIC_C, 0.4);
});

Deno.test("RFC 9438 §4.2: K and W_cubic(t)", async (t) => {
  const rows = [
    { wMax: 100, cwndEpoch: 70 },
    { wMax: 10, cwndEpoch: 7 },
    { wMax: 1000, cwndEpoch: 700 },
    { wMax: 50, cwndEpoch: 20 },
  ];
  for (const r of rows) {
    await t.step(`W_max ${r.wMax}, cwnd_epoch ${r.cwndEpoch}`, () => {
      const k = Cubic.k(r.wMax, r.cwndEpoch);
      // Eq. 2: K = ∛((W_max − cwnd_epoch) / C).
      near(k, Math.cbrt((r.wMax - r.cwndEpoch) / 0.4), 1e-12);
      // Eq. 1 at t = 0 is where the epoch starts, at t = K the old maximum.
      near(Cubic.window(0, k, r.wMax), r.cwndEpoch, 1e-9);
      near(Cubic.window(k, k, r.wMax), r.wMax, 1e-12);
      // Concave before K, convex after, symmetric around (K, W_max).
      near(r.wMax - Cubic.window(k - 1, k, r.wMax), Cubic.window(k + 1, k, r.wMax) - r.wMax, 1e-9);
      near(Cubic.window(k + 2, k, r.wMax) - r.wMax, 0.4 * 8, 1e-9);
    });
  }
  // After a loss cwnd_epoch = β·W_max, so K = ∛(W_max·(1 − β)/C).
  near(Cubic.k(100, 70), Math.cbrt(75), 1e-12);
});

Deno.test("RFC 9438 §4.6: a loss sets ssthresh = cwnd·β and cwnd = ssthresh; W_max = cwnd", () => {
  const cc = new Cubic(MSS);
  assert.equal(cc.cwnd, 10 * MSS, "RFC 6928 initial window");
  cc.cwnd = 100 * MSS;
  cc.onLoss(MSS, 0, cc.cwnd);
  assert.equal(cc.wMax, 100);
  assert.equal(cc.ssthresh, 70 * MSS);
  assert.equal(cc.cwnd, 70 * MSS);
  // Not below two segments.
  const small = new Cubic(MSS);
  small.cwnd = 2 * MSS;
  small.onLoss(MSS, 0, small.cwnd);
  assert.equal(small.cwnd, 2 * MSS);
});

Deno.test("RFC 9438 §4.2: after a loss the window follows W_cubic(t) through the concave and convex regions", () => {
  const cc = new Cubic(MSS);
  cc.cwnd = 100 * MSS;
  cc.onLoss(MSS, 0, cc.cwnd);
  const k = Cubic.k(100, 70);
  let checked = 0;
  run(cc, 0, 100, 80, (t) => {
    near(cc.cwnd / MSS, Cubic.window(t, k, 100), 0.5, `t = ${t.toFixed(1)} s:`);
    checked++;
  });
  assert.equal(checked, 80);
  assert.ok(cc.cwnd / MSS > 110, "past K it probes beyond W_max");
});

Deno.test("RFC 9438 §4.7: fast convergence", async (t) => {
  await t.step("a loss below the last W_max lowers W_max to cwnd·(1 + β)/2", () => {
    const cc = new Cubic(MSS);
    cc.cwnd = 100 * MSS;
    cc.onLoss(MSS, 0, cc.cwnd);
    cc.cwnd = 90 * MSS;
    cc.onLoss(MSS, 1000, cc.cwnd);
    near(cc.wMax, 90 * (1 + 0.7) / 2, 1e-9);
    assert.equal(cc.cwnd, 63 * MSS);
  });
  await t.step("a loss above the (reduced) W_max takes cwnd as W_max", () => {
    const cc = new Cubic(MSS);
    cc.cwnd = 100 * MSS;
    cc.onLoss(MSS, 0, cc.cwnd);
    cc.cwnd = 90 * MSS;
    cc.onLoss(MSS, 1000, cc.cwnd); // W_max = 76.5
    cc.cwnd = 80 * MSS;
    cc.onLoss(MSS, 2000, cc.cwnd);
    assert.equal(cc.wMax, 80, "80 ≥ W_max 76.5: no further reduction");
  });
  await t.step("a loss at or above W_max takes cwnd as W_max", () => {
    const cc = new Cubic(MSS);
    cc.cwnd = 100 * MSS;
    cc.onLoss(MSS, 0, cc.cwnd);
    cc.cwnd = 120 * MSS;
    cc.onLoss(MSS, 1000, cc.cwnd);
    assert.equal(cc.wMax, 120);
  });
});

Deno.test("RFC 9438 §4.8: a timeout leaves one segment and ssthresh = cwnd·β; growth restarts in slow start", () => {
  const cc = new Cubic(MSS);
  cc.cwnd = 100 * MSS;
  cc.onTimeout(MSS, 0, cc.cwnd);
  assert.equal(cc.cwnd, MSS);
  assert.equal(cc.ssthresh, 70 * MSS);
  cc.onAck(MSS, MSS, 10, 100);
  assert.equal(cc.cwnd, 2 * MSS, "slow start below ssthresh");
});

Deno.test("NewReno (RFC 5681 §3.1): half the flight on a loss, one MSS per window after", () => {
  const cc = new Reno(MSS);
  cc.cwnd = 100 * MSS;
  cc.onLoss(MSS, 0, 100 * MSS);
  assert.equal(cc.ssthresh, 50 * MSS);
  assert.equal(cc.cwnd, 50 * MSS);
  for (let i = 0; i < 50; i++) cc.onAck(MSS, MSS);
  assert.equal(cc.cwnd, 51 * MSS);
});

Deno.test("CUBIC on a connection: after a real loss ssthresh = β·cwnd and W_max = cwnd at the loss", async () => {
  let isn = -1;
  let dropped = false;
  const lab = stackPair({
    delayMs: 10,
    drop: ({ dir, seg }) => {
      // Drop segment 60 of the transfer once (past slow start's first rounds).
      if (dropped || isn < 0 || dir !== "ab" || seg === null || seg.payload.length === 0) {
        return false;
      }
      if (((seg.seq - isn) >>> 0) === 60 * 1448) {
        dropped = true;
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
  assert.equal(conn.info().congestion, "cubic");
  isn = conn.sndNxt;
  let atLoss = -1;
  const cc = conn.cc as Cubic;
  const onLoss = cc.onLoss.bind(cc);
  cc.onLoss = (mss, now, inFlight) => {
    atLoss = cc.cwnd;
    onLoss(mss, now, inFlight);
  };
  const data = pattern(400 * 1448, 3);
  const [, got] = await drive(
    lab.clock,
    Promise.all([writeAll(c, data).then(() => c.closeWrite()), readAll(s)]),
    20_000,
  );
  assert.deepEqual(got, data);
  assert.ok(dropped);
  assert.ok(atLoss > 0, "the loss was detected");
  assert.equal(lab.a.stats.tcp.timeouts, 0);
  assert.equal(cc.ssthresh, Math.floor((atLoss * 7) / 10), "ssthresh = floor(β·cwnd)");
  assert.equal(cc.wMax, atLoss / conn.mss);
  assert.equal(conn.info().ssthresh, cc.ssthresh);
  c.close();
  s.close();
  l.close();
  lab.close();
});
