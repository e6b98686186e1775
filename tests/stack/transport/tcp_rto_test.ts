/**
 * RFC 6298: the RTO from RTT samples (§2, with Linux's 200 ms floor and
 * the 120 s ceiling), then exponential backoff (§5.5) read from the
 * retransmissions on the wire while every one of them is dropped.
 */
import assert from "node:assert/strict";
import { RawPeer, stackPair } from "./_tcp_peer.ts";
import { drive } from "./_tcp_lab.ts";

interface RttRow {
  name: string;
  samples: number[];
  srtt: number;
  rttvar: number;
  rto: number;
  minRtoMs?: number;
}

// Worked by hand from RFC 6298 §2.2-2.4 (alpha = 1/8, beta = 1/4, K = 4, G = 1 ms).
const RTT_ROWS: RttRow[] = [
  { name: "first sample: SRTT = R, RTTVAR = R/2", samples: [100], srtt: 100, rttvar: 50, rto: 300 },
  {
    name: "second sample moves SRTT by 1/8 and RTTVAR by 1/4",
    samples: [100, 200],
    srtt: 112.5,
    rttvar: 62.5,
    rto: 362.5,
  },
  {
    name: "a falling sample raises RTTVAR",
    samples: [500, 50],
    srtt: 443.75,
    rttvar: 300,
    rto: 1643.75,
  },
  {
    name: "steady samples: SRTT + 4·RTTVAR below the 200 ms floor",
    samples: [100, 100, 100, 100],
    srtt: 100,
    rttvar: 21.09375,
    rto: 200,
  },
  { name: "a short RTT: the 200 ms floor", samples: [10], srtt: 10, rttvar: 5, rto: 200 },
  {
    name: "a long RTT: the 120 s ceiling",
    samples: [60_000],
    srtt: 60_000,
    rttvar: 30_000,
    rto: 120_000,
  },
  {
    name: "without a floor, G (1 ms) bounds K·RTTVAR from below",
    samples: [0],
    srtt: 0,
    rttvar: 0,
    rto: 1,
    minRtoMs: 0,
  },
  {
    name: "without a floor: SRTT + 4·RTTVAR",
    samples: [40, 40],
    srtt: 40,
    rttvar: 15,
    rto: 100,
    minRtoMs: 0,
  },
];

Deno.test("RFC 6298 §2: RTO from RTT samples", async (t) => {
  for (const row of RTT_ROWS) {
    await t.step(row.name, () => {
      const p = RawPeer.create(
        row.minRtoMs !== undefined ? { tcp: { minRtoMs: row.minRtoMs } } : {},
      );
      const c = p.stack.tcp.connect({ remote: p.peerIp, port: 5000 });
      assert.equal(c.info().rttMs, -1, "no sample yet");
      assert.equal(c.info().rtoMs, 1000, "§2.1: the initial RTO is 1 s");
      for (const r of row.samples) c.updateRtt(r);
      assert.equal(c.srtt, row.srtt);
      assert.equal(c.rttvar, row.rttvar);
      assert.equal(c.rto, row.rto);
      assert.equal(c.info().rtoMs, row.rto);
      assert.equal(c.info().minRttMs, Math.min(...row.samples));
      p.close();
    });
  }
});

Deno.test("RFC 6298: the handshake's RTT sample sets the RTO of a live connection", async () => {
  const lab = stackPair({ delayMs: 50 });
  const l = lab.b.listen({ port: 9 });
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const i = c.info();
  assert.equal(i.rttMs, 100);
  assert.equal(i.rttVarMs, 50);
  assert.equal(i.rtoMs, 300);
  c.close();
  l.close();
  lab.close();
});

Deno.test("RFC 6298 §5.5: every retransmission dropped -> the RTO doubles up to 120 s, then TimedOut", async () => {
  let dropping = false;
  const lab = stackPair({
    delayMs: 50,
    capture: true,
    // Drop every data segment from a once dropping starts (the first transmission too).
    drop: ({ dir, seg }) => dropping && dir === "ab" && seg !== null && seg.payload.length > 0,
  });
  const l = lab.b.listen({ port: 9 });
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const conn = [...lab.a.tcp.connections()][0]!;
  assert.equal(conn.rto, 300);
  dropping = true;
  await c.write(new Uint8Array(500).fill(1));
  const failed = c.read(new Uint8Array(10)).then(() => null, (e) => e);
  // A little past the sum of 15 backed-off RTOs.
  let sawBackoff3 = false;
  for (let t = 0; t < 1_000_000 && conn.error === null; t += 100) {
    lab.clock.advance(100);
    if (conn.backoff === 3 && !sawBackoff3) {
      sawBackoff3 = true;
      assert.equal(conn.info().rtoMs, 2400, "info() shows the backed-off RTO");
    }
  }
  const data = lab.log.filter((s) => s.dir === "ab" && s.payload.length > 0);
  const times = data.map((s) => s.at);
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  const expected: number[] = [];
  for (let k = 0; k < 15; k++) expected.push(Math.min(120_000, 300 * 2 ** k));
  assert.deepEqual(gaps, expected, "retransmission gaps");
  assert.ok(data.every((s) => s.seq === data[0]!.seq), "each is the same segment again");
  assert.equal(lab.a.stats.tcp.timeouts, 15);
  assert.ok(conn.error instanceof Deno.errors.TimedOut);
  assert.ok((await drive(lab.clock, failed, 10)) instanceof Deno.errors.TimedOut);
  assert.ok(sawBackoff3);
  c.close();
  l.close();
  lab.close();
});

Deno.test("RFC 6298 §5.7 / Karn: a retransmitted segment's ACK is no RTT sample (no timestamps)", async () => {
  let drops = 1;
  const lab = stackPair({
    delayMs: 50,
    tcp: { timestamps: false },
    drop: ({ dir, seg }) => dir === "ab" && seg !== null && seg.payload.length > 0 && drops-- > 0,
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const conn = [...lab.a.tcp.connections()][0]!;
  assert.equal(conn.srtt, 100);
  await c.write(new Uint8Array(500).fill(2));
  const got = await drive(lab.clock, s.read(new Uint8Array(1000)), 5000);
  assert.equal(got, 500);
  lab.clock.advance(200);
  // The retransmission went out 300 ms after the original and was acknowledged 100 ms later:
  // timed from the original that would be a 400 ms sample. Karn: no sample at all.
  assert.equal(lab.a.stats.tcp.timeouts, 1);
  assert.equal(conn.srtt, 100, "SRTT unchanged by the retransmitted segment's ACK");
  assert.equal(conn.backoff, 0, "the backoff is cleared by the new ACK");
  c.close();
  s.close();
  l.close();
  lab.close();
});
