/**
 * Flow control: a reader that stops reading closes the window; the sender
 * probes the zero window on the persist timer with exponential backoff
 * (RFC 9293 §3.8.6.1), and the transfer resumes and completes when the
 * reader reads again. Memory stays bounded by the receive buffer.
 */
import assert from "node:assert/strict";
import { readAll, stackPair, writeAll } from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

Deno.test("zero window: probes with backoff while the reader sleeps, then the transfer completes", async () => {
  const rbuf = 16_384;
  const lab = stackPair({
    delayMs: 5,
    capture: true,
    bTcp: { rmemDefault: rbuf, rmemMax: rbuf },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const sender = [...lab.a.tcp.connections()][0]!;
  const receiver = [...lab.b.tcp.connections()][0]!;
  const data = pattern(100_000, 9);
  const writing = writeAll(c, data).then(() => c.closeWrite());
  // The reader sleeps for 7 s.
  for (let t = 0; t < 7000; t += 10) {
    await Promise.resolve();
    lab.clock.advance(10);
    assert.ok(receiver.info().receiveQueue <= rbuf, "the receive queue never exceeds its buffer");
    assert.ok(receiver.info().bufferBytes <= rbuf);
  }
  assert.equal(receiver.info().receiveQueue, rbuf, "the buffer filled");
  assert.equal(receiver.info().receiveWindow, 0, "and the window closed");
  assert.equal(sender.info().sendWindow, 0);
  const probes = lab.log.filter((x) =>
    x.dir === "ab" && x.payload.length === 0 && x.flags === 0x10 &&
    ((x.seq - sender.sndUna) | 0) === -1
  );
  assert.equal(lab.a.stats.tcp.zeroWindowProbesSent, probes.length);
  assert.ok(probes.length >= 4, `${probes.length} probes`);
  const gaps = probes.slice(1).map((x, i) => x.at - probes[i]!.at);
  for (let i = 1; i < gaps.length; i++) {
    assert.equal(gaps[i], 2 * gaps[i - 1]!, `persist backoff doubles: ${gaps}`);
  }
  assert.ok(gaps[0]! >= 200, "from at least the 200 ms RTO floor");
  // The probes are answered with the (still zero) window, at most one answer per 500 ms
  // (Linux's tcp_invalid_ratelimit: the 200 ms probe after the first goes unanswered).
  const answers = lab.log.filter((x) => x.dir === "ba" && x.window === 0 && x.at > probes[0]!.at);
  const spaced = probes.filter((p, i) => i === 0 || p.at - probes[i - 1]!.at >= 500).length;
  assert.ok(answers.length >= spaced, `${answers.length} answers for ${spaced} spaced probes`);
  assert.equal(lab.b.stats.tcp.outOfWindowAcksLimited, probes.length - spaced);
  // The reader wakes up: the window opens and everything arrives intact.
  const got = await drive(lab.clock, readAll(s), 20_000);
  await drive(lab.clock, writing, 1000);
  assert.deepEqual(got, data);
  assert.equal(lab.a.stats.tcp.timeouts, 0, "no RTO: the persist timer is no retransmission timer");
  c.close();
  s.close();
  l.close();
  lab.close();
});

Deno.test("back-pressure: a writer waits while the send buffer is full, memory stays bounded", async () => {
  const lab = stackPair({
    delayMs: 1,
    aTcp: { wmemMax: 32_768 },
    bTcp: { rmemDefault: 16_384, rmemMax: 16_384 },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const sender = [...lab.a.tcp.connections()][0]!;
  const data = pattern(500_000, 4);
  let written = 0;
  const writing = (async () => {
    while (written < data.length) written += await c.write(data.subarray(written));
  })();
  for (let t = 0; t < 2000; t += 10) {
    await Promise.resolve();
    lab.clock.advance(10);
    assert.ok(sender.info().sendQueue <= 32_768);
  }
  assert.ok(written <= 32_768 + 16_384, `the writer was held back (${written} bytes taken)`);
  const got = await drive(lab.clock, readAll(s, data.length), 20_000);
  await drive(lab.clock, writing, 1000);
  assert.deepEqual(got, data);
  c.close();
  s.close();
  l.close();
  lab.close();
});

Deno.test("a lost window update while the sender holds a runt window: the persist timer sends into it and recovers", async () => {
  const rbuf = 16_384;
  let dropNext = false;
  let dropped = 0;
  const lab = stackPair({
    delayMs: 5,
    bTcp: { rmemDefault: rbuf, rmemMax: rbuf },
    drop: ({ dir, seg }) => {
      if (dropNext && dir === "ba" && seg !== null && seg.payload.length === 0) {
        dropNext = false;
        dropped++;
        return true;
      }
      return false;
    },
  });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const sender = [...lab.a.tcp.connections()][0]!;
  const data = pattern(40_000, 2);
  const writing = writeAll(c, data).then(() => c.closeWrite());
  for (let t = 0; t < 100; t += 5) {
    await Promise.resolve();
    lab.clock.advance(5);
  }
  const wnd = sender.info().sendWindow - sender.info().unacked;
  assert.ok(wnd > 0 && wnd < sender.mss, `the sender sees a runt window (${wnd} bytes)`);
  // The reader empties the buffer; the window update it sends is lost.
  dropNext = true;
  const buf = new Uint8Array(rbuf);
  let n = 0;
  while (n < rbuf - wnd) n += await s.read(buf.subarray(n)) ?? 0;
  assert.equal(dropped, 1);
  const rest = await drive(lab.clock, readAll(s), 5_000);
  await drive(lab.clock, writing, 1000);
  const got = new Uint8Array(n + rest.length);
  got.set(buf.subarray(0, n));
  got.set(rest, n);
  assert.deepEqual(got, data);
  c.close();
  s.close();
  l.close();
  lab.close();
});
