/**
 * Path MTU discovery (RFC 1191, RFC 8201): an ICMPv4 "fragmentation
 * needed" or ICMPv6 Packet Too Big quoting a segment in flight lowers the
 * connection's MSS, what was in flight goes again in smaller segments,
 * and an error quoting a sequence not in flight is ignored (RFC 5927).
 */
import assert from "node:assert/strict";
import { absorb, ACK, peerConnect, peerSeg, RawPeer, type WireSeg } from "./_tcp_peer.ts";
import { pattern } from "./_tcp_lab.ts";

/** The stream the peer saw, rebuilt by sequence from `segs` (first copy of each byte wins). */
function stream(segs: WireSeg[], base: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const have = new Uint8Array(len);
  for (const s of segs) {
    const off = (s.seq - base) | 0;
    for (let i = 0; i < s.payload.length; i++) {
      if (off + i >= 0 && off + i < len && !have[off + i]) {
        out[off + i] = s.payload[i]!;
        have[off + i] = 1;
      }
    }
  }
  assert.ok(have.every((x) => x === 1), "every byte arrived");
  return out;
}

for (const family of [4, 6] as const) {
  Deno.test(`PMTU: a Packet Too Big lowers the MSS and in-flight data is resent smaller (IPv${family})`, () => {
    const p = RawPeer.create({ family });
    const l = p.stack.tcp.listen({ port: 80 });
    const { conn, pc } = peerConnect(p, l, 80);
    const ipHl = family === 4 ? 20 : 40;
    assert.equal(conn.info().mss, 1500 - ipHl - 20 - 12);
    conn.setNoDelay(true);
    const data = pattern(8 * conn.info().mss, family);
    const base = pc.ack;
    conn.write(data);
    p.clock.advance(0);
    const first = p.take().filter((s) => s.payload.length > 0);
    assert.ok(first.length >= 5);
    assert.ok(first.every((s) => s.ipLen === 1500), "full-size segments at first");
    // A forged error quoting a sequence that is not in flight changes nothing (RFC 5927 §4.1).
    const forged = first[0]!.ip.slice();
    new DataView(forged.buffer).setUint32(ipHl + 4, (pc.ack + 1_000_000) >>> 0);
    p.sendTooBig(forged, 1280);
    p.clock.advance(0);
    assert.equal(conn.info().mss, 1500 - ipHl - 20 - 12, "forged error ignored");
    assert.equal(p.take().length, 0);
    // A larger MTU than the current one is no news either.
    p.sendTooBig(first[0]!.ip, 9000);
    p.clock.advance(0);
    assert.equal(conn.info().mss, 1500 - ipHl - 20 - 12);
    // The real one: 1280 bytes.
    p.sendTooBig(first[2]!.ip, 1280);
    p.clock.advance(0);
    assert.equal(
      conn.info().mss,
      1280 - ipHl - 20 - 12,
      "MSS from the new path MTU, less the TS option",
    );
    const again = p.take().filter((s) => s.payload.length > 0);
    assert.ok(again.length > 0, "what was in flight is sent again at once");
    assert.ok(
      again.every((s) => s.ipLen <= 1280),
      `segments fit 1280: ${again.map((s) => s.ipLen)}`,
    );
    assert.ok(conn.info().retransmits > 0);
    // The peer ACKs what it got; the rest comes at the new size too.
    const all = [...again];
    for (let i = 0; i < 20 && ((pc.ack - base) | 0) < data.length; i++) {
      absorb(pc, all);
      const out = p.inject(peerSeg(p, pc, ACK), 1);
      all.push(...out.filter((s) => s.payload.length > 0));
      assert.ok(out.every((s) => s.ipLen <= 1280));
    }
    assert.deepEqual(stream(all, base, data.length), data);
    assert.equal(p.stack.stats.tcp.timeouts, 0);
    if (family === 6) {
      // The path MTU is remembered: a new connection to the peer announces an MSS that fits it.
      p.stack.tcp.connect({ remote: p.peerIp, port: 81 });
      p.clock.advance(0);
      assert.equal(p.take().find((s) => s.dport === 81)!.mss, 1280 - 60);
    }
    p.close();
  });
}

Deno.test("PMTU: an ICMPv4 frag-needed without a next-hop MTU takes the 576 plateau (RFC 1191 §4)", () => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const { conn } = peerConnect(p, l, 80);
  conn.setNoDelay(true);
  conn.write(pattern(3000));
  p.clock.advance(0);
  const seg = p.take().find((s) => s.payload.length > 0)!;
  p.sendTooBig(seg.ip, 0);
  p.clock.advance(0);
  assert.equal(conn.info().mss, 576 - 40 - 12);
  assert.ok(p.take().filter((s) => s.payload.length > 0).every((s) => s.ipLen <= 576));
  p.close();
});
