/**
 * RFC 9293 §3.3.2: every transition of the state diagram, one table row
 * each, driven by a raw peer that sends exact segments; then simultaneous
 * open and close between two stacks, half-close, TIME-WAIT's 60 s and
 * RFC 6191 reuse, and the handshake's timeouts.
 */
import assert from "node:assert/strict";
import {
  TapirTcpConn,
  TCP_STATE_NAMES,
  type TcpConnection,
  type TcpListener,
  TcpState,
} from "../../../stack/transport/mod.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import {
  absorb,
  ACK,
  FIN,
  flagText,
  type PeerConn,
  peerConnect,
  peerSeg,
  PSH,
  RawPeer,
  readAll,
  RST,
  stackConnect,
  stackPair,
  SYN,
  type WireSeg,
  writeAll,
} from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

interface Ctx {
  p: RawPeer;
  c: TcpConnection;
  pc: PeerConn;
  l?: TcpListener;
}

const name = (c: TcpConnection) => TCP_STATE_NAMES[c.state]!;
const sent = (segs: WireSeg[]) => segs.map((s) => flagText(s.flags)).join(",");

// ---- ways to reach each state (each checks where it got)

function listening(p: RawPeer): TcpListener {
  return p.stack.tcp.listen({ port: 80 });
}

function established(p: RawPeer): Ctx {
  const l = listening(p);
  const { conn, pc } = peerConnect(p, l, 80);
  return { p, c: conn, pc, l };
}

function synSent(p: RawPeer): Ctx {
  const c = p.stack.tcp.connect({ remote: p.peerIp, port: 5000, localPort: 6000 });
  p.clock.advance(0);
  const syn = p.take()[0]!;
  const pc: PeerConn = {
    sport: 5000,
    dport: 6000,
    seq: 3_000_000,
    ack: (syn.seq + 1) >>> 0,
    stackIss: syn.seq,
    peerIss: 3_000_000,
    tsOk: true,
    sackOk: true,
  };
  return { p, c, pc };
}

/** Simultaneous open: our SYN and the peer's SYN cross. */
function synReceivedActive(p: RawPeer): Ctx {
  const x = synSent(p);
  const out = p.inject({
    sport: 5000,
    dport: 6000,
    seq: x.pc.peerIss,
    flags: SYN,
    opts: { mss: 1460, sackPermitted: true, ts: p.ts(), wscale: 7 },
  });
  assert.equal(sent(out), "SA", "the stack answers a crossing SYN with SYN-ACK");
  assert.equal(out[0]!.seq, x.pc.stackIss, "the SYN-ACK repeats our ISS");
  assert.equal(out[0]!.ack, (x.pc.peerIss + 1) >>> 0);
  x.pc.seq = (x.pc.peerIss + 1) >>> 0;
  return x;
}

function synReceivedPassive(p: RawPeer): Ctx {
  const l = listening(p);
  const out = p.inject({
    sport: 40000,
    dport: 80,
    seq: 1_000_000,
    flags: SYN,
    opts: { mss: 1460, sackPermitted: true, ts: p.ts(), wscale: 7 },
  });
  const c = [...p.stack.tcp.connections()][0]!;
  const pc: PeerConn = {
    sport: 40000,
    dport: 80,
    seq: 1_000_001,
    ack: (out[0]!.seq + 1) >>> 0,
    stackIss: out[0]!.seq,
    peerIss: 1_000_000,
    tsOk: true,
    sackOk: true,
  };
  return { p, c, pc, l };
}

function finWait1(p: RawPeer): Ctx {
  const x = established(p);
  x.c.shutdownWrite();
  p.clock.advance(0);
  absorb(x.pc, p.take());
  return x;
}

function finWait2(p: RawPeer): Ctx {
  const x = finWait1(p);
  p.inject(peerSeg(p, x.pc, ACK));
  return x;
}

function closeWait(p: RawPeer): Ctx {
  const x = established(p);
  absorb(x.pc, p.inject(peerSeg(p, x.pc, FIN | ACK)));
  x.pc.seq++;
  return x;
}

function lastAck(p: RawPeer): Ctx {
  const x = closeWait(p);
  x.c.shutdownWrite();
  p.clock.advance(0);
  absorb(x.pc, p.take());
  return x;
}

/** Simultaneous close: the peer's FIN does not acknowledge ours. */
function closing(p: RawPeer): Ctx {
  const x = finWait1(p);
  const finAck = (x.pc.ack - 1) >>> 0; // acknowledges everything but our FIN
  p.inject(peerSeg(p, x.pc, FIN | ACK, { ack: finAck }));
  x.pc.seq++;
  return x;
}

function timeWait(p: RawPeer): Ctx {
  const x = finWait2(p);
  p.inject(peerSeg(p, x.pc, FIN | ACK));
  x.pc.seq++;
  return x;
}

interface Row {
  from: string;
  event: string;
  to: string;
  /** Flags of what the stack sends on the event, in order ("" for nothing). */
  sends: string;
  setup(p: RawPeer): Ctx;
  run(x: Ctx): WireSeg[];
  /** Extra checks. */
  check?(x: Ctx, out: WireSeg[]): void;
}

const ROWS: Row[] = [
  {
    from: "SYN-SENT",
    event: "rcv SYN,ACK",
    to: "ESTAB",
    sends: "A",
    setup: synSent,
    run: ({ p, pc }) =>
      p.inject({
        sport: pc.sport,
        dport: pc.dport,
        seq: pc.peerIss,
        ack: pc.ack,
        flags: SYN | ACK,
        opts: { mss: 1460, sackPermitted: true, ts: p.ts(), wscale: 7 },
      }),
    check: ({ pc }, out) => assert.equal(out[0]!.ack, (pc.peerIss + 1) >>> 0),
  },
  {
    from: "SYN-SENT",
    event: "rcv SYN (simultaneous open)",
    to: "SYN-RECV",
    sends: "SA",
    setup: synSent,
    run: ({ p, pc }) =>
      p.inject({
        sport: pc.sport,
        dport: pc.dport,
        seq: pc.peerIss,
        flags: SYN,
        opts: { mss: 1460, ts: p.ts() },
      }),
  },
  {
    from: "SYN-SENT",
    event: "rcv RST,ACK",
    to: "CLOSED",
    sends: "",
    setup: synSent,
    run: ({ p, pc }) => p.inject({ ...peerSeg(p, pc, RST | ACK), seq: 0, opts: {} }),
    check: ({ p, c }) => {
      assert.ok(c.error instanceof Deno.errors.ConnectionRefused);
      assert.equal(p.stack.tcp.size, 0);
      assert.equal(p.stack.stats.tcp.attemptFails, 1);
    },
  },
  {
    from: "SYN-SENT",
    event: "rcv RST without ACK (ignored)",
    to: "SYN-SENT",
    sends: "",
    setup: synSent,
    run: ({ p, pc }) => p.inject({ sport: pc.sport, dport: pc.dport, seq: 0, flags: RST }),
  },
  {
    from: "SYN-SENT",
    event: "rcv ACK of something never sent",
    to: "SYN-SENT",
    sends: "R",
    setup: synSent,
    run: ({ p, pc }) =>
      p.inject({ sport: pc.sport, dport: pc.dport, seq: 1, ack: pc.ack + 1000, flags: ACK }),
    check: ({ pc }, out) => assert.equal(out[0]!.seq, (pc.ack + 1000) >>> 0, "RST seq = SEG.ACK"),
  },
  {
    from: "SYN-SENT",
    event: "close",
    to: "CLOSED",
    sends: "",
    setup: synSent,
    run: ({ p, c }) => {
      c.close();
      p.clock.advance(0);
      return p.take();
    },
    check: ({ p }) => assert.equal(p.stack.tcp.size, 0),
  },
  {
    from: "SYN-RECV",
    event: "rcv ACK of SYN",
    to: "ESTAB",
    sends: "",
    setup: synReceivedPassive,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, ACK)),
    check: ({ l, c }) => assert.equal(l!.accept(), c, "the connection is in the accept queue"),
  },
  {
    from: "SYN-RECV",
    event: "rcv SYN,ACK (simultaneous open)",
    to: "ESTAB",
    sends: "",
    setup: synReceivedActive,
    run: ({ p, pc }) =>
      p.inject({
        sport: pc.sport,
        dport: pc.dport,
        seq: pc.peerIss,
        ack: pc.ack,
        flags: SYN | ACK,
        opts: { mss: 1460, sackPermitted: true, ts: p.ts(), wscale: 7 },
      }, 10),
  },
  {
    from: "SYN-RECV",
    event: "rcv RST (passive: back to LISTEN)",
    to: "CLOSED",
    sends: "",
    setup: synReceivedPassive,
    run: ({ p, pc }) => p.inject({ sport: pc.sport, dport: pc.dport, seq: pc.seq, flags: RST }),
    check: ({ p, l }) => {
      assert.equal(p.stack.tcp.size, 0);
      assert.equal(l!.synCount, 0);
      assert.equal(l!.closed, false, "the listener goes on");
    },
  },
  {
    from: "SYN-RECV",
    event: "rcv ACK outside SND.UNA..SND.NXT",
    to: "SYN-RECV",
    sends: "R",
    setup: synReceivedPassive,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, ACK, { ack: pc.ack + 5000 })),
  },
  {
    from: "ESTAB",
    event: "close",
    to: "FIN-WAIT-1",
    sends: "FA",
    setup: established,
    run: ({ p, c }) => {
      c.shutdownWrite();
      p.clock.advance(0);
      return p.take();
    },
  },
  {
    from: "ESTAB",
    event: "rcv FIN",
    to: "CLOSE-WAIT",
    sends: "A",
    setup: established,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, FIN | ACK)),
    check: ({ c, pc }, out) => {
      assert.equal(out[0]!.ack, (pc.seq + 1) >>> 0, "the FIN is acknowledged");
      assert.equal(c.readEof, true);
    },
  },
  {
    from: "ESTAB",
    event: "rcv RST at RCV.NXT",
    to: "CLOSED",
    sends: "",
    setup: established,
    run: ({ p, pc }) => p.inject({ sport: pc.sport, dport: pc.dport, seq: pc.seq, flags: RST }),
    check: ({ c }) => assert.ok(c.error instanceof Deno.errors.ConnectionReset),
  },
  {
    from: "FIN-WAIT-1",
    event: "rcv ACK of FIN",
    to: "FIN-WAIT-2",
    sends: "",
    setup: finWait1,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, ACK)),
  },
  {
    from: "FIN-WAIT-1",
    event: "rcv FIN (simultaneous close)",
    to: "CLOSING",
    sends: "A",
    setup: finWait1,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, FIN | ACK, { ack: (pc.ack - 1) >>> 0 })),
    check: ({ pc }, out) => assert.equal(out[0]!.ack, (pc.seq + 1) >>> 0),
  },
  {
    from: "FIN-WAIT-1",
    event: "rcv FIN,ACK of FIN",
    to: "TIME-WAIT",
    sends: "A",
    setup: finWait1,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, FIN | ACK)),
  },
  {
    from: "FIN-WAIT-2",
    event: "rcv FIN",
    to: "TIME-WAIT",
    sends: "A",
    setup: finWait2,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, FIN | ACK)),
    check: ({ pc }, out) => assert.equal(out[0]!.ack, (pc.seq + 1) >>> 0),
  },
  {
    from: "CLOSE-WAIT",
    event: "close",
    to: "LAST-ACK",
    sends: "FA",
    setup: closeWait,
    run: ({ p, c }) => {
      c.close();
      p.clock.advance(0);
      return p.take();
    },
  },
  {
    from: "CLOSING",
    event: "rcv ACK of FIN",
    to: "TIME-WAIT",
    sends: "",
    setup: closing,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, ACK)),
  },
  {
    from: "LAST-ACK",
    event: "rcv ACK of FIN",
    to: "CLOSED",
    sends: "",
    setup: lastAck,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, ACK)),
    check: ({ p, c }) => {
      assert.equal(p.stack.tcp.size, 0, "the connection left the table");
      assert.equal(c.error, null, "an orderly end");
    },
  },
  {
    from: "TIME-WAIT",
    event: "rcv FIN again",
    to: "TIME-WAIT",
    sends: "A",
    setup: timeWait,
    run: ({ p, pc }) => p.inject(peerSeg(p, pc, FIN | ACK, { seq: (pc.seq - 1) >>> 0 })),
  },
  {
    from: "TIME-WAIT",
    event: "2 MSL (60 s)",
    to: "CLOSED",
    sends: "",
    setup: timeWait,
    run: ({ p }) => {
      p.clock.advance(59_990);
      assert.equal(p.stack.tcp.size, 1, "still in TIME-WAIT just before 60 s");
      p.clock.advance(20);
      return p.take();
    },
    check: ({ p }) => assert.equal(p.stack.tcp.size, 0, "gone after 60 s"),
  },
];

for (const family of [4, 6] as const) {
  Deno.test(`RFC 9293 §3.3.2 transitions, IPv${family}`, async (t) => {
    for (const row of ROWS) {
      await t.step(`${row.from} --${row.event}--> ${row.to}`, () => {
        const p = RawPeer.create({ family });
        try {
          const x = row.setup(p);
          p.take();
          assert.equal(name(x.c), row.from, "setup reached the from-state");
          const out = row.run(x);
          assert.equal(name(x.c), row.to);
          assert.equal(sent(out), row.sends, "what the stack sent");
          for (const s of out) assert.ok(s.checksumOk, "segments carry a correct checksum");
          row.check?.(x, out);
        } finally {
          p.close();
        }
      });
    }
  });
}

Deno.test("LISTEN: an ACK gets a reset with SEQ = SEG.ACK; a RST is ignored; no socket: reset", () => {
  const p = RawPeer.create();
  listening(p);
  let out = p.inject({ sport: 40000, dport: 80, seq: 5, ack: 777, flags: ACK });
  assert.equal(sent(out), "R");
  assert.equal(out[0]!.seq, 777);
  out = p.inject({ sport: 40000, dport: 80, seq: 5, flags: RST });
  assert.equal(out.length, 0);
  assert.equal(p.stack.tcp.size, 0);
  out = p.inject({ sport: 40000, dport: 81, seq: 5, flags: SYN });
  assert.equal(sent(out), "RA", "a SYN to a closed port is refused");
  assert.equal(out[0]!.ack, 6);
  assert.equal(p.stack.stats.tcp.noSocketReceived, 1);
  p.close();
});

Deno.test("simultaneous open: close in SYN-RECEIVED sends the FIN once established (FIN-WAIT-1)", () => {
  const p = RawPeer.create();
  const x = synReceivedActive(p);
  x.c.shutdownWrite();
  p.clock.advance(0);
  assert.equal(name(x.c), "SYN-RECV");
  assert.equal(p.take().length, 0, "nothing is sent before the handshake completes");
  const out = p.inject({
    sport: x.pc.sport,
    dport: x.pc.dport,
    seq: x.pc.peerIss,
    ack: x.pc.ack,
    flags: SYN | ACK,
    opts: { mss: 1460, sackPermitted: true, ts: p.ts(), wscale: 7 },
  });
  assert.equal(name(x.c), "FIN-WAIT-1");
  assert.equal(sent(out), "FA");
  assert.equal(out[0]!.seq, x.pc.ack);
  p.close();
});

Deno.test("simultaneous open between two stacks: SYNs cross, both ESTABLISHED, data both ways", async () => {
  const lab = stackPair({ capture: true });
  const ca = lab.a.tcp.connect({ remote: parseIpv4("192.0.2.2"), port: 7000, localPort: 7001 });
  const cb = lab.b.tcp.connect({ remote: parseIpv4("192.0.2.1"), port: 7001, localPort: 7000 });
  lab.clock.advance(50);
  const flags = (dir: string) =>
    lab.log.filter((s) => s.dir === dir && (s.flags & SYN) !== 0).map((s) => flagText(s.flags));
  assert.deepEqual(flags("ab"), ["S", "SA"], "a: SYN, then SYN-ACK (SYN-RECEIVED)");
  assert.deepEqual(flags("ba"), ["S", "SA"], "b: the same");
  assert.equal(name(ca), "ESTAB");
  assert.equal(name(cb), "ESTAB");
  assert.equal(lab.log.filter((s) => s.flags & SYN).length, 4, "no SYN-ACK ping-pong");
  const ta = new TapirTcpConn(ca), tb = new TapirTcpConn(cb);
  const one = pattern(20_000, 1), two = pattern(30_000, 2);
  const work = Promise.all([
    writeAll(ta, one).then(() => ta.closeWrite()),
    writeAll(tb, two).then(() => tb.closeWrite()),
    readAll(ta),
    readAll(tb),
  ]);
  const [, , atA, atB] = await drive(lab.clock, work, 10_000);
  assert.deepEqual(atA, two);
  assert.deepEqual(atB, one);
  ta.close();
  tb.close();
  lab.close();
});

Deno.test("simultaneous close between two stacks: both FIN-WAIT-1 -> CLOSING -> TIME-WAIT", async () => {
  const lab = stackPair({ capture: true });
  const l = lab.b.listen({ port: 9 });
  const accepted = l.accept();
  const c = await drive(lab.clock, lab.a.connect({ hostname: "192.0.2.2", port: 9 }), 1000);
  const s = await drive(lab.clock, accepted, 1000);
  const ca = [...lab.a.tcp.connections()][0]!, cb = [...lab.b.tcp.connections()][0]!;
  await c.closeWrite();
  await s.closeWrite();
  assert.equal(name(ca), "FIN-WAIT-1");
  assert.equal(name(cb), "FIN-WAIT-1");
  lab.clock.advance(0);
  assert.equal(name(ca), "TIME-WAIT");
  assert.equal(name(cb), "TIME-WAIT");
  // Each saw the other's FIN before its own was acknowledged: CLOSING on the way.
  const fins = lab.log.filter((x) => x.flags & FIN);
  assert.equal(fins.length, 2);
  lab.clock.advance(60_001);
  assert.equal(lab.a.tcp.size + lab.b.tcp.size, 0, "both TIME-WAITs expired");
  c.close();
  s.close();
  l.close();
  lab.close();
});

Deno.test("half-close: after closeWrite the peer keeps sending and we read it all", () => {
  const p = RawPeer.create();
  const x = finWait2(p);
  const data = pattern(3000);
  const out: WireSeg[] = [];
  for (let off = 0; off < data.length; off += 1000) {
    out.push(...p.inject(peerSeg(p, x.pc, ACK | PSH, { payload: data.subarray(off, off + 1000) })));
    x.pc.seq += 1000;
  }
  p.clock.advance(200);
  const acks = [...out, ...p.take()].filter((s) => s.flags === ACK);
  assert.equal(acks.at(-1)!.ack, x.pc.seq, "everything acknowledged");
  const buf = new Uint8Array(5000);
  assert.equal(x.c.read(buf), 3000);
  assert.deepEqual(buf.subarray(0, 3000), data);
  assert.equal(name(x.c), "FIN-WAIT-2");
  p.inject(peerSeg(p, x.pc, FIN | ACK));
  assert.equal(name(x.c), "TIME-WAIT");
  assert.equal(x.c.readEof, true);
  p.close();
});

Deno.test("half-close the other way: in CLOSE-WAIT we keep sending, then LAST-ACK", () => {
  const p = RawPeer.create();
  const x = closeWait(p);
  x.c.setNoDelay(true);
  const data = pattern(4000, 3);
  assert.equal(x.c.write(data), 4000);
  p.clock.advance(0);
  const segs = absorb(x.pc, p.take());
  const got = new Uint8Array(segs.reduce((n, s) => n + s.payload.length, 0));
  let o = 0;
  for (const s of segs) {
    got.set(s.payload, o);
    o += s.payload.length;
  }
  assert.deepEqual(got, data);
  p.inject(peerSeg(p, x.pc, ACK));
  x.c.close();
  p.clock.advance(0);
  assert.equal(sent(absorb(x.pc, p.take())), "FA");
  assert.equal(name(x.c), "LAST-ACK");
  p.inject(peerSeg(p, x.pc, ACK));
  assert.equal(p.stack.tcp.size, 0);
  p.close();
});

Deno.test("RFC 6191: a newer SYN takes a TIME-WAIT connection's place, an older one does not", async (t) => {
  for (const ts of [true, false]) {
    await t.step(`timestamps ${ts}`, () => {
      const p = RawPeer.create();
      const l = listening(p);
      const { conn, pc } = peerConnect(p, l, 80, { ts });
      // The server closes first and ends in TIME-WAIT.
      conn.close();
      p.clock.advance(0);
      absorb(pc, p.take());
      p.inject(peerSeg(p, pc, FIN | ACK));
      pc.seq++;
      assert.equal(name(conn), "TIME-WAIT");
      p.clock.advance(1000);
      // An old SYN: older timestamp, or (without timestamps) a sequence below RCV.NXT.
      const old = p.inject({
        sport: pc.sport,
        dport: 80,
        seq: (pc.seq - 10) >>> 0,
        flags: SYN,
        opts: ts ? { mss: 1460, ts: { val: 5, ecr: 0 } } : { mss: 1460 },
      });
      assert.equal(p.stack.stats.tcp.timeWaitReused, 0);
      assert.equal(name(conn), "TIME-WAIT", "an old SYN does not end TIME-WAIT");
      assert.ok(old.every((s) => (s.flags & SYN) === 0), "no SYN-ACK for an old SYN");
      // A newer incarnation.
      const fresh = p.inject({
        sport: pc.sport,
        dport: 80,
        seq: (pc.seq + 100_000) >>> 0,
        flags: SYN,
        opts: ts ? { mss: 1460, ts: p.ts(), sackPermitted: true } : { mss: 1460 },
      });
      assert.equal(p.stack.stats.tcp.timeWaitReused, 1);
      assert.equal(sent(fresh), "SA");
      assert.equal(fresh[0]!.ack, (pc.seq + 100_001) >>> 0);
      assert.equal(conn.state, TcpState.CLOSED);
      const child = [...p.stack.tcp.connections()];
      assert.equal(child.length, 1);
      assert.equal(name(child[0]!), "SYN-RECV");
      p.close();
    });
  }
});

Deno.test("SYN-SENT: SYN retransmitted with exponential backoff, then TimedOut", () => {
  const p = RawPeer.create({ tcp: { synRetries: 4 } });
  const c = p.stack.tcp.connect({ remote: p.peerIp, port: 5000 });
  p.clock.advance(200_000);
  const syns = p.take().filter((s) => s.flags === SYN);
  assert.equal(syns.length, 5);
  const gaps = syns.slice(1).map((s, i) => s.at - syns[i]!.at);
  assert.deepEqual(gaps, [1000, 2000, 4000, 8000]);
  assert.ok(c.error instanceof Deno.errors.TimedOut);
  assert.equal(p.stack.stats.tcp.synRetransmits, 4);
  assert.equal(p.stack.tcp.size, 0);
  p.close();
});

Deno.test("FIN-WAIT-2 of a closed socket ends after tcp_fin_timeout (60 s); a half-closed one stays", () => {
  const p = RawPeer.create();
  const orphan = established(p);
  orphan.c.close();
  p.clock.advance(0);
  absorb(orphan.pc, p.take());
  p.inject(peerSeg(p, orphan.pc, ACK));
  assert.equal(name(orphan.c), "FIN-WAIT-2");
  const half = peerConnect(p, orphan.l!, 80, { sport: 40001 });
  half.conn.shutdownWrite();
  p.clock.advance(0);
  absorb(half.pc, p.take());
  p.inject(peerSeg(p, half.pc, ACK));
  assert.equal(name(half.conn), "FIN-WAIT-2");
  p.clock.advance(59_000);
  assert.equal(name(orphan.c), "FIN-WAIT-2");
  p.clock.advance(2_000);
  assert.equal(orphan.c.state, TcpState.CLOSED, "the orphan is gone");
  assert.equal(name(half.conn), "FIN-WAIT-2", "the application may still read: no timeout");
  p.close();
});

Deno.test("RFC 6928: the window after the handshake is the initial window, on both sides", () => {
  const p = RawPeer.create();
  const l = listening(p);
  const passive = peerConnect(p, l, 80).conn;
  assert.equal(passive.info().cwnd, 10 * passive.mss, "the ACK of our SYN-ACK does not grow it");
  const active = stackConnect(p, 5000).conn;
  assert.equal(active.info().cwnd, 10 * active.mss);
  p.close();
});

Deno.test("RFC 9293 §3.10.7.4: with our window at zero, a segment's ACK is still taken (its data is not)", () => {
  const p = RawPeer.create({ tcp: { rmemDefault: 4096, rmemMax: 4096 } });
  const l = listening(p);
  const x = peerConnect(p, l, 80, { wscale: null });
  // The stack sends data the peer has not acknowledged yet.
  x.conn.setNoDelay(true);
  x.conn.write(new Uint8Array(1000).fill(3));
  p.clock.advance(0);
  const ours = absorb(x.pc, p.take()).filter((s) => s.payload.length > 0);
  assert.equal(ours.length, 1);
  // The peer fills our 4 KiB window without acknowledging our data.
  const unacked = (x.pc.ack - 1000) >>> 0;
  const acks: WireSeg[] = [];
  for (let i = 0; i < 4; i++) {
    acks.push(
      ...p.inject(peerSeg(p, x.pc, ACK | PSH, { payload: new Uint8Array(1024), ack: unacked })),
    );
    x.pc.seq += 1024;
  }
  p.clock.advance(50);
  acks.push(...p.take());
  const zero = acks.filter((s) => s.payload.length === 0).at(-1)!;
  assert.equal(zero.window, 0, "our window is closed");
  assert.equal(x.conn.info().unacked, 1000);
  // A zero-window probe with one byte of new data, acknowledging our 1000 bytes.
  const out = p.inject(peerSeg(p, x.pc, ACK | PSH, { payload: new Uint8Array(1) }));
  assert.equal(x.conn.info().unacked, 0, "the ACK in it was processed");
  assert.equal(x.conn.readable, 4096, "the byte was not taken");
  assert.equal(out.length, 1);
  assert.equal(out[0]!.ack, x.pc.seq, "and the answer does not acknowledge it");
  assert.equal(out[0]!.window, 0);
  p.close();
});
