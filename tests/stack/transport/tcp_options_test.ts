/**
 * RFC 7323 and RFC 2018 option negotiation against a raw peer: window
 * scaling, timestamps and SACK-permitted are used only when both SYNs
 * carry them, scaling applies from the first non-SYN segment, and PAWS
 * (RFC 7323 §5) drops a segment with an old timestamp.
 */
import assert from "node:assert/strict";
import {
  ACK,
  peerConnect,
  peerSeg,
  type PeerSynOptions,
  PSH,
  RawPeer,
  RST,
  stackConnect,
} from "./_tcp_peer.ts";

/** Our window scale for the default tcp_rmem[2] of 6 MiB: 65535 << 7 covers it. */
const OUR_WSCALE = 7;

interface OptRow {
  name: string;
  syn: PeerSynOptions;
  /** What the SYN-ACK carries. */
  synAck: { wscale: number; sackPermitted: boolean; ts: boolean; mss: number };
  /** What info() says afterwards. */
  info: {
    sendWscale: number;
    receiveWscale: number;
    timestamps: boolean;
    sack: boolean;
    mss: number;
  };
}

const PASSIVE: OptRow[] = [
  {
    name: "all options",
    syn: {},
    synAck: { wscale: OUR_WSCALE, sackPermitted: true, ts: true, mss: 1460 },
    info: { sendWscale: 7, receiveWscale: OUR_WSCALE, timestamps: true, sack: true, mss: 1448 },
  },
  {
    name: "no window scale: neither side scales",
    syn: { wscale: null },
    synAck: { wscale: -1, sackPermitted: true, ts: true, mss: 1460 },
    info: { sendWscale: 0, receiveWscale: 0, timestamps: true, sack: true, mss: 1448 },
  },
  {
    name: "window scale 0: the option counts, we still scale ours",
    syn: { wscale: 0 },
    synAck: { wscale: OUR_WSCALE, sackPermitted: true, ts: true, mss: 1460 },
    info: { sendWscale: 0, receiveWscale: OUR_WSCALE, timestamps: true, sack: true, mss: 1448 },
  },
  {
    name: "window scale 15: used as 14 (RFC 7323 §2.3)",
    syn: { wscale: 15 },
    synAck: { wscale: OUR_WSCALE, sackPermitted: true, ts: true, mss: 1460 },
    info: { sendWscale: 14, receiveWscale: OUR_WSCALE, timestamps: true, sack: true, mss: 1448 },
  },
  {
    name: "no timestamps: no TS option, the MSS keeps its 12 bytes",
    syn: { ts: false },
    synAck: { wscale: OUR_WSCALE, sackPermitted: true, ts: false, mss: 1460 },
    info: { sendWscale: 7, receiveWscale: OUR_WSCALE, timestamps: false, sack: true, mss: 1460 },
  },
  {
    name: "no SACK-permitted",
    syn: { sack: false },
    synAck: { wscale: OUR_WSCALE, sackPermitted: false, ts: true, mss: 1460 },
    info: { sendWscale: 7, receiveWscale: OUR_WSCALE, timestamps: true, sack: false, mss: 1448 },
  },
  {
    name: "MSS only",
    syn: { wscale: null, sack: false, ts: false, mss: 1000 },
    synAck: { wscale: -1, sackPermitted: false, ts: false, mss: 1460 },
    info: { sendWscale: 0, receiveWscale: 0, timestamps: false, sack: false, mss: 1000 },
  },
];

Deno.test("RFC 7323 / RFC 2018: options of a SYN-ACK and of the connection follow the SYN", async (t) => {
  for (const row of PASSIVE) {
    await t.step(row.name, () => {
      const p = RawPeer.create();
      const l = p.stack.tcp.listen({ port: 80 });
      const { conn, synAck, pc } = peerConnect(p, l, 80, row.syn);
      assert.deepEqual(
        {
          wscale: synAck.wscale,
          sackPermitted: synAck.sackPermitted,
          ts: synAck.ts !== null,
          mss: synAck.mss,
        },
        row.synAck,
      );
      const i = conn.info();
      assert.deepEqual(
        {
          sendWscale: i.sendWscale,
          receiveWscale: i.receiveWscale,
          timestamps: i.timestamps,
          sack: i.sack,
          mss: i.mss,
        },
        row.info,
      );
      // RFC 7323 §2.2: the SYN-ACK's own window is never scaled.
      assert.ok(synAck.window <= 65535);
      // The peer's window from now on is scaled by its shift.
      p.inject(peerSeg(p, pc, ACK, { window: 100 }));
      assert.equal(conn.info().sendWindow, 100 * 2 ** row.info.sendWscale);
      // Our window field is scaled by our shift: it describes the 128 KiB receive buffer.
      conn.setNoDelay(true);
      conn.write(new Uint8Array(10));
      p.clock.advance(0);
      const seg = p.take().find((s) => s.payload.length === 10)!;
      const expected = Math.min(65535, Math.floor(131_072 / 2 ** row.info.receiveWscale));
      assert.equal(seg.window, expected, "window field");
      assert.equal(seg.ts !== null, row.info.timestamps, "TS on every segment when negotiated");
      p.close();
    });
  }
});

Deno.test("RFC 7323 §3.2: the SYN-ACK echoes the SYN's TSval; later segments echo TS.Recent", () => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const synVal = p.ts().val;
  const { conn, synAck, pc } = peerConnect(p, l, 80);
  assert.equal(synAck.ts!.ecr, synVal);
  p.clock.advance(500);
  const val = p.ts().val;
  const out = p.inject(peerSeg(p, pc, ACK | PSH, { payload: new Uint8Array(100) }), 100);
  assert.equal(out.at(-1)!.ts!.ecr, val, "the ACK echoes the data segment's TSval");
  assert.equal(conn.readable, 100);
  p.close();
});

interface ActiveRow {
  name: string;
  settings: { sack?: boolean; timestamps?: boolean; windowScaling?: boolean };
  syn: { wscale: number; sackPermitted: boolean; ts: boolean };
  /** The peer's SYN-ACK options and what the connection uses. */
  synAck: PeerSynOptions;
  info: { sendWscale: number; receiveWscale: number; timestamps: boolean; sack: boolean };
}

const ACTIVE: ActiveRow[] = [
  {
    name: "our SYN offers everything; the peer takes everything",
    settings: {},
    syn: { wscale: OUR_WSCALE, sackPermitted: true, ts: true },
    synAck: { wscale: 9 },
    info: { sendWscale: 9, receiveWscale: OUR_WSCALE, timestamps: true, sack: true },
  },
  {
    name: "the peer's SYN-ACK has no window scale: we do not scale either",
    settings: {},
    syn: { wscale: OUR_WSCALE, sackPermitted: true, ts: true },
    synAck: { wscale: null },
    info: { sendWscale: 0, receiveWscale: 0, timestamps: true, sack: true },
  },
  {
    name: "the peer's SYN-ACK has no timestamps or SACK",
    settings: {},
    syn: { wscale: OUR_WSCALE, sackPermitted: true, ts: true },
    synAck: { ts: false, sack: false },
    info: { sendWscale: 7, receiveWscale: OUR_WSCALE, timestamps: false, sack: false },
  },
  {
    name: "settings off: our SYN offers nothing, even if the peer's SYN-ACK does",
    settings: { sack: false, timestamps: false, windowScaling: false },
    syn: { wscale: -1, sackPermitted: false, ts: false },
    synAck: {},
    info: { sendWscale: 0, receiveWscale: 0, timestamps: false, sack: false },
  },
];

Deno.test("RFC 7323 / RFC 2018: active open offers the settings' options and uses what the SYN-ACK agrees", async (t) => {
  for (const row of ACTIVE) {
    await t.step(row.name, () => {
      const p = RawPeer.create({ tcp: row.settings });
      const { conn, syn } = stackConnect(p, 5000, row.synAck);
      assert.deepEqual(
        { wscale: syn.wscale, sackPermitted: syn.sackPermitted, ts: syn.ts !== null },
        row.syn,
      );
      assert.equal(syn.mss, 1460);
      assert.ok(syn.window <= 65535);
      const i = conn.info();
      assert.equal(i.state, "ESTAB");
      assert.deepEqual(
        {
          sendWscale: i.sendWscale,
          receiveWscale: i.receiveWscale,
          timestamps: i.timestamps,
          sack: i.sack,
        },
        row.info,
      );
      p.close();
    });
  }
});

Deno.test("RFC 7323 §5 PAWS: a segment with an old timestamp is dropped, its data not delivered", () => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const { conn, pc } = peerConnect(p, l, 80);
  const good = p.ts().val;
  p.inject(peerSeg(p, pc, ACK | PSH, { payload: new Uint8Array(100).fill(1) }), 100);
  pc.seq += 100;
  assert.equal(conn.readable, 100);
  // The next bytes, in order, but with a timestamp older than TS.Recent: an old duplicate.
  const out = p.inject(
    peerSeg(p, pc, ACK | PSH, { payload: new Uint8Array(100).fill(2), tsVal: good - 1000 }),
  );
  assert.equal(p.stack.stats.tcp.pawsDropped, 1);
  assert.equal(conn.readable, 100, "not delivered");
  assert.equal(out.length, 1, "answered with an ACK");
  assert.equal(out[0]!.ack, pc.seq, "which does not cover the dropped bytes");
  // The same bytes with a current timestamp are taken.
  p.inject(peerSeg(p, pc, ACK | PSH, { payload: new Uint8Array(100).fill(2) }), 100);
  assert.equal(conn.readable, 200);
  // R1 does not apply to a reset: an exact RST with an old timestamp still resets.
  pc.seq += 100;
  p.inject({ ...peerSeg(p, pc, RST, { tsVal: good - 5000 }) });
  assert.ok(conn.error instanceof Deno.errors.ConnectionReset);
  assert.equal(p.stack.stats.tcp.pawsDropped, 1);
  p.close();
});

Deno.test("RFC 7323 §5: PAWS is not applied without negotiated timestamps", () => {
  const p = RawPeer.create();
  const l = p.stack.tcp.listen({ port: 80 });
  const { conn, pc } = peerConnect(p, l, 80, { ts: false });
  p.inject({
    ...peerSeg(p, pc, ACK | PSH, { payload: new Uint8Array(10) }),
    opts: { ts: { val: 1, ecr: 0 } },
  });
  assert.equal(conn.readable, 10);
  assert.equal(p.stack.stats.tcp.pawsDropped, 0);
  p.close();
});
