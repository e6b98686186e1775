/**
 * Keepalive (RFC 1122 §4.2.3.6; off by default, per socket as
 * SO_KEEPALIVE with idle, interval and count): probes after the idle time,
 * answered ones keep the connection, unanswered ones end it with TimedOut.
 */
import assert from "node:assert/strict";
import { drive, tcpLab } from "./_tcp_lab.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";

async function pair() {
  const lab = tcpLab();
  const { clock, a, b } = lab;
  const l = b.listen({ port: 80 });
  const acc = l.accept();
  const c = await drive(clock, a.connect({ hostname: "192.0.2.2", port: 80 }));
  const s = await drive(clock, acc);
  l.close();
  return { lab, c, s };
}

Deno.test("keepalive: off by default, no probes on an idle connection", async () => {
  const { lab, c, s } = await pair();
  lab.clock.advance(3 * 3600_000);
  assert.equal(lab.a.stats.tcp.keepalivesSent, 0);
  assert.equal(c.info().state, "ESTAB");
  c.close();
  s.close();
  lab.clock.advance(1000);
  lab.close();
});

Deno.test("keepalive: answered probes keep an idle connection", async () => {
  const { lab, c, s } = await pair();
  c.setKeepAlive(true, { idleMs: 10_000, intervalMs: 1000, count: 3 });
  // Idle counts from the last segment received (the handshake, a few ms before).
  lab.clock.advance(9_000);
  assert.equal(lab.a.stats.tcp.keepalivesSent, 0);
  lab.clock.advance(1_500);
  assert.equal(lab.a.stats.tcp.keepalivesSent, 1);
  lab.clock.advance(59_000);
  // One probe per idle period: each answer resets the idle time.
  assert.equal(lab.a.stats.tcp.keepalivesSent, 6); // at 10, 20, ... 60 s
  assert.equal(c.info().state, "ESTAB");
  c.close();
  s.close();
  lab.clock.advance(1000);
  lab.close();
});

Deno.test("keepalive: unanswered probes end the connection with TimedOut after count", async () => {
  const { lab, c } = await pair();
  c.setKeepAlive(true, { idleMs: 10_000, intervalMs: 1000, count: 3 });
  // The peer vanishes: nothing it sends arrives.
  lab.ba.writePacket = (_p: PacketBuffer) => true;
  const pending = c.read(new Uint8Array(10));
  pending.catch(() => {});
  lab.clock.advance(10_001);
  assert.equal(lab.a.stats.tcp.keepalivesSent, 1);
  lab.clock.advance(2_000);
  assert.equal(lab.a.stats.tcp.keepalivesSent, 3);
  lab.clock.advance(1_000);
  await assert.rejects(pending, Deno.errors.TimedOut);
  assert.equal(lab.a.stats.tcp.keepaliveTimeouts, 1);
  lab.close();
});
