/**
 * RFC 5961 blind-attack defences against a raw peer: resets and SYNs
 * that are in the window but not exact get a challenge ACK and leave the
 * connection alone; an exact reset ends it; an ACK older than any window
 * the peer could have seen is challenged and its data dropped; challenge
 * ACKs are limited per second (tcp_challenge_ack_limit).
 */
import assert from "node:assert/strict";
import { TapirTcpConn, TCP_STATE_NAMES } from "../../../stack/transport/mod.ts";
import {
  ACK,
  flagText,
  peerConnect,
  peerSeg,
  PSH,
  RawPeer,
  RST,
  SYN,
  type WireSeg,
} from "./_tcp_peer.ts";

const sent = (segs: WireSeg[]) => segs.map((s) => flagText(s.flags)).join(",");

function setup(
  o: { family?: 4 | 6; limit?: number; window?: number; wscale?: number | null } = {},
) {
  const p = RawPeer.create({
    family: o.family ?? 4,
    ...(o.limit !== undefined ? { tcp: { challengeAckLimit: o.limit } } : {}),
  });
  const l = p.stack.tcp.listen({ port: 80 });
  const x = peerConnect(p, l, 80, {
    ...(o.window !== undefined ? { window: o.window } : {}),
    ...(o.wscale !== undefined ? { wscale: o.wscale } : {}),
  });
  return { p, ...x };
}

for (const family of [4, 6] as const) {
  Deno.test(`RFC 5961 §3.2: in-window RST that is not exact -> challenge ACK, connection stays (IPv${family})`, () => {
    const { p, conn, pc } = setup({ family });
    const out = p.inject({ sport: pc.sport, dport: pc.dport, seq: pc.seq + 100, flags: RST });
    assert.equal(sent(out), "A");
    assert.equal(out[0]!.seq, pc.ack, "the challenge ACK carries SND.NXT");
    assert.equal(out[0]!.ack, pc.seq, "and RCV.NXT");
    assert.equal(TCP_STATE_NAMES[conn.state], "ESTAB");
    assert.equal(conn.error, null);
    assert.equal(p.stack.stats.tcp.challengeAcksSent, 1);
    assert.equal(p.stack.stats.tcp.resetsReceived, 1);
    p.close();
  });

  Deno.test(`RFC 5961 §3.2: exact RST -> ConnectionReset on read (IPv${family})`, async () => {
    const { p, conn, pc } = setup({ family });
    const tc = new TapirTcpConn(conn);
    const reading = tc.read(new Uint8Array(100));
    const out = p.inject({
      sport: pc.sport,
      dport: pc.dport,
      seq: pc.seq,
      flags: RST | ACK,
      ack: pc.ack,
    });
    assert.equal(out.length, 0, "nothing answers a reset");
    await assert.rejects(reading, Deno.errors.ConnectionReset);
    assert.equal(p.stack.stats.tcp.establishedResets, 1);
    assert.equal(p.stack.tcp.size, 0);
    await assert.rejects(tc.write(new Uint8Array(1)), Deno.errors.ConnectionReset);
    tc.close();
    p.close();
  });
}

Deno.test("RFC 5961 §3.2: RST outside the window is dropped silently", () => {
  const { p, conn, pc } = setup();
  const out = p.inject({ sport: pc.sport, dport: pc.dport, seq: pc.seq - 70_000, flags: RST });
  assert.equal(out.length, 0);
  assert.equal(TCP_STATE_NAMES[conn.state], "ESTAB");
  assert.equal(p.stack.stats.tcp.challengeAcksSent, 0);
  p.close();
});

Deno.test("RFC 5961 §3.2: in-window RST in SYN-RECEIVED -> challenge ACK, the child stays", () => {
  const p = RawPeer.create();
  p.stack.tcp.listen({ port: 80 });
  const synAck = p.inject({
    sport: 40000,
    dport: 80,
    seq: 5000,
    flags: SYN,
    opts: { mss: 1460 },
  })[0]!;
  const out = p.inject({ sport: 40000, dport: 80, seq: 5001 + 10, flags: RST });
  assert.equal(sent(out), "A");
  assert.equal(out[0]!.seq, (synAck.seq + 1) >>> 0);
  const c = [...p.stack.tcp.connections()];
  assert.equal(c.length, 1);
  assert.equal(TCP_STATE_NAMES[c[0]!.state], "SYN-RECV");
  p.close();
});

Deno.test("RFC 5961 §4.2: SYN in ESTABLISHED -> challenge ACK, no reset, connection stays", async (t) => {
  for (const [what, delta] of [["in the window", 10], ["at RCV.NXT", 0]] as const) {
    await t.step(what, () => {
      const { p, conn, pc } = setup();
      const out = p.inject({
        sport: pc.sport,
        dport: pc.dport,
        seq: pc.seq + delta,
        flags: SYN,
        opts: { mss: 1460, ts: p.ts() },
      });
      assert.equal(sent(out), "A");
      assert.equal(out[0]!.ack, pc.seq, "RCV.NXT unchanged");
      assert.equal(TCP_STATE_NAMES[conn.state], "ESTAB");
      assert.equal(p.stack.stats.tcp.challengeAcksSent, 1);
      assert.equal(p.stack.stats.tcp.resetsSent, 0);
      p.close();
    });
  }
});

Deno.test("RFC 5961 §5.2: an ACK older than SND.UNA - MAX.SND.WND -> challenge ACK, data dropped", () => {
  // No window scaling: the largest window the peer offered is 65535 bytes (MAX.SND.WND).
  const { p, conn, pc } = setup({ wscale: null });
  const data = new Uint8Array(100).fill(7);
  const old = p.inject(
    peerSeg(p, pc, ACK | PSH, { payload: data, ack: (pc.ack - 65_536 - 10) >>> 0 }),
  );
  assert.equal(sent(old), "A");
  assert.equal(old[0]!.ack, pc.seq, "the data was not accepted");
  assert.equal(conn.readable, 0);
  assert.equal(p.stack.stats.tcp.challengeAcksSent, 1);
  // An ACK just inside the acceptable range is fine: its data is taken.
  const ok = p.inject(
    peerSeg(p, pc, ACK | PSH, { payload: data, ack: (pc.ack - 65_535) >>> 0 }),
    100,
  );
  assert.equal(conn.readable, 100);
  assert.equal(ok.at(-1)!.ack, pc.seq + 100);
  assert.equal(p.stack.stats.tcp.challengeAcksSent, 1);
  p.close();
});

Deno.test("RFC 5961 §7: challenge ACKs limited per second (challengeAckLimit)", () => {
  const { p, conn, pc } = setup({ limit: 3 });
  const out: WireSeg[] = [];
  for (let i = 0; i < 10; i++) {
    p.send({ sport: pc.sport, dport: pc.dport, seq: pc.seq + 100 + i, flags: RST });
  }
  p.clock.advance(0);
  out.push(...p.take());
  assert.equal(sent(out), "A,A,A", "three challenge ACKs in this second");
  assert.equal(p.stack.stats.tcp.challengeAcksSent, 3);
  assert.equal(p.stack.stats.tcp.challengeAcksLimited, 7);
  assert.equal(TCP_STATE_NAMES[conn.state], "ESTAB");
  p.clock.advance(1000);
  const next = p.inject({ sport: pc.sport, dport: pc.dport, seq: pc.seq + 100, flags: RST });
  assert.equal(sent(next), "A", "a new second, a new budget");
  p.close();
});
