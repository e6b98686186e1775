/**
 * The send scoreboard across the 2³² sequence wrap (RFC 9293 §3.4): a
 * transmitted range that straddles the wrap, SACKed or lost and resent,
 * keeps the RFC 6675 pipe right. (A range's length taken as end − start
 * came out near −2³² there: the pipe read 4 GiB, nothing more was sent,
 * and the connection sat in RTO backoff until the black-hole fallback cut
 * its MSS.)
 */
import assert from "node:assert/strict";
import { ACK, peerConnect, peerSeg, RawPeer, type WireSeg } from "./_tcp_peer.ts";
import { pattern } from "./_tcp_lab.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";

const MSS = 1448;

/**
 * A connection from the peer whose accepted end has an ISS 5·MSS + 700
 * below 2³², so the sixth segment it sends straddles the wrap. The ISS
 * is RFC 6528's hash of the 4-tuple plus a 4 µs clock: one handshake
 * gives the hash, the clock is moved on to the ISS wanted, and the same
 * 4-tuple connects again.
 */
function connectNearWrap() {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const first = peerConnect(p, l, 80, { sport: 40001 });
  const t0 = p.clock.now();
  first.conn.abort();
  p.clock.advance(0);
  const want = (2 ** 32 - 5 * MSS - 700) >>> 0;
  const ticks = (want - first.pc.stackIss) >>> 0;
  // The neighbour entry goes stale meanwhile: the peer's ARP renews it in the last ms.
  p.clock.advance(t0 + (ticks + 0.5) / 250 - 1 - p.clock.now());
  p.host.arpFor(parseIpv4(p.stackAddr));
  p.clock.advance(1);
  p.take();
  const x = peerConnect(p, l, 80, { sport: 40001 });
  assert.equal(x.pc.stackIss, want);
  return { p, x };
}

const endOf = (s: WireSeg) => (s.seq + s.payload.length) >>> 0;

for (const straddlerLost of [false, true]) {
  Deno.test(`SACK scoreboard across the sequence wrap: the range straddling 2³² ${straddlerLost ? "lost and resent" : "SACKed"}`, () => {
    const { p, x } = connectNearWrap();
    x.conn.setNoDelay(true);
    const data = pattern(14 * MSS, 3);
    x.conn.write(data);
    p.clock.advance(0);
    const burst = p.take().filter((s) => s.payload.length > 0);
    assert.equal(burst.length, 10, "the initial window");
    const k = burst.findIndex((s) => endOf(s) < s.seq);
    assert.equal(k, 5, "the sixth segment straddles the wrap");
    // Straddler SACKed: segments 0-4 missing. Straddler lost: it alone is missing.
    const sackFrom = straddlerLost ? endOf(burst[k]!) : burst[k]!.seq;
    const sackTo = endOf(burst.at(-1)!);
    const ackTo = straddlerLost ? burst[k]!.seq : x.pc.ack;
    const out = p.inject(peerSeg(p, x.pc, ACK, { ack: ackTo, sack: [[sackFrom, sackTo]] }));
    const info = x.conn.info();
    const sacked = (sackTo - sackFrom) >>> 0;
    assert.ok(
      info.inFlight <= info.unacked - sacked,
      `pipe ${info.inFlight} within the ${info.unacked - sacked} unacknowledged, unSACKed bytes`,
    );
    // RACK (RFC 8985 §6.2) took what lies below the SACKed block for lost and resent it at once.
    const resent = out.filter((s) => s.payload.length > 0 && ((s.seq - sackFrom) | 0) < 0);
    const holeStart = straddlerLost ? burst[k]!.seq : burst[0]!.seq;
    assert.equal(resent[0]?.seq, holeStart, "the hole is resent from its start");
    const resentBytes = resent.reduce((n, s) => n + s.payload.length, 0);
    assert.equal(resentBytes, (sackFrom - holeStart) >>> 0, "exactly the hole, straddler included");
    // The peer acknowledges everything sent, until the whole write is through: the pipe
    // is then just what is unacknowledged.
    for (let i = 0; i < 5 && x.conn.info().sendQueue > 0; i++) {
      let top = x.pc.ack;
      for (const s of p.segs) {
        if (s.payload.length > 0 && ((endOf(s) - top) | 0) > 0) top = endOf(s);
      }
      p.inject(peerSeg(p, x.pc, ACK, { ack: top }));
      const now = x.conn.info();
      assert.equal(now.inFlight, now.unacked);
    }
    assert.equal(x.conn.info().sendQueue, 0, "all 14 segments acknowledged");
    assert.equal(p.stack.stats.tcp.timeouts, 0);
    assert.equal(p.stack.stats.tcp.pmtuBlackholeFallbacks, 0);
    p.close();
  });
}
