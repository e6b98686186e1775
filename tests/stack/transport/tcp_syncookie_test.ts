/**
 * A SYN flood against a listener whose SYN queue is full (tcp {
 * maxSynBacklog: 8 }): the flood's half-open connections stay bounded,
 * further SYNs are answered with SYN cookies, and a legitimate client on
 * the same wire still connects and moves data. A forged cookie is refused.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../../stack/mod.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import { Hub, RawHost, rawMac } from "../../topology/_lab.ts";
import { ip6 } from "../../topology/_packets6.ts";
import { ipv4 } from "../../topology/_packets.ts";
import { ACK, newStack, readAll, SYN, tcpBytes, writeAll } from "./_tcp_peer.ts";
import { drive, pattern } from "./_tcp_lab.ts";

const ADDR = {
  4: { client: "192.0.2.1", server: "192.0.2.2", flood: "192.0.2.3" },
  6: { client: "2001:db8::1", server: "2001:db8::2", flood: "2001:db8::3" },
} as const;

function floodLab(family: 4 | 6) {
  const clock = new ManualClock();
  const hub = new Hub(clock, "lan");
  const A = ADDR[family];
  const client = newStack(clock, "client", 1, hub.port("client"), undefined, undefined, [
    "192.0.2.1",
    "2001:db8::1",
  ]);
  const server = newStack(clock, "server", 2, hub.port("server"), { maxSynBacklog: 8 }, undefined, [
    "192.0.2.2",
    "2001:db8::2",
  ]);
  const flooder = new RawHost(hub.port("flood"), rawMac(3), {
    ipv4: parseIpv4("192.0.2.3"),
    ipv6: ["2001:db8::3"],
  });
  flooder.gatewayMac = server.nic.mac;
  clock.advance(5000); // DAD
  const syn = (sport: number, seq: number, opts = true) => {
    const tcp = tcpBytes(family, A.flood, A.server, {
      sport,
      dport: 80,
      seq,
      flags: SYN,
      opts: opts
        ? { mss: 1460, sackPermitted: true, wscale: 7, ts: { val: 1000 + sport, ecr: 0 } }
        : { mss: 1460 },
    });
    if (family === 4) {
      flooder.sendIp(ipv4({ src: A.flood, dst: A.server, protocol: 6, payload: tcp }));
    } else {
      flooder.send(ip6({ src: A.flood, dst: A.server, proto: 6, payload: tcp }));
    }
  };
  const ack = (sport: number, seq: number, ackNo: number) => {
    const tcp = tcpBytes(family, A.flood, A.server, {
      sport,
      dport: 80,
      seq,
      ack: ackNo,
      flags: ACK,
    });
    if (family === 4) {
      flooder.sendIp(ipv4({ src: A.flood, dst: A.server, protocol: 6, payload: tcp }));
    } else {
      flooder.send(ip6({ src: A.flood, dst: A.server, proto: 6, payload: tcp }));
    }
  };
  return { clock, hub, client: client.stack, server: server.stack, flooder, syn, ack, A };
}

for (const family of [4, 6] as const) {
  Deno.test(`SYN flood with a full SYN queue: SYN cookies let a real client connect (IPv${family})`, async () => {
    const lab = floodLab(family);
    const { clock, client, server, A } = lab;
    const l = server.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 80 });
    const listener = [...server.tcp.listeners()][0]!;
    // 200 spoofed SYNs, none ever completed.
    for (let i = 0; i < 200; i++) lab.syn(20000 + i, 1_000_000 * (i + 1));
    clock.advance(1);
    const st = server.stats.tcp;
    assert.equal(listener.synCount, 8, "the SYN queue holds maxSynBacklog half-open connections");
    assert.equal(server.tcp.size, 8, "and nothing more is kept");
    assert.equal(st.synCookiesSent, 192, "the rest were answered with cookies");
    // A legitimate client connects while the queue is still full.
    const accepted = l.accept();
    const c = await drive(clock, client.connect({ hostname: A.server, port: 80 }), 2000);
    const s = await drive(clock, accepted, 1000);
    assert.equal(listener.synCount, 8, "the client did not take a SYN-queue slot");
    assert.ok(st.synCookiesSent > 192);
    assert.equal(st.synCookiesReceived, 1);
    // The cookie carried MSS, window scale and SACK through the timestamp (both ends agree).
    const ci = c.info(), si = s.info();
    assert.equal(ci.state, "ESTAB");
    assert.ok(si.mss >= 1200, `server MSS ${si.mss} from the cookie's table`);
    assert.equal(ci.sack, si.sack);
    assert.equal(ci.timestamps, true);
    assert.equal(si.sendWscale, ci.receiveWscale, "the server scales the client's window right");
    assert.equal(ci.sendWscale, si.receiveWscale);
    // Data both ways, more than one unscaled window.
    const up = pattern(300_000, 1), down = pattern(200_000, 2);
    const [, , gotUp, gotDown] = await drive(
      clock,
      Promise.all([
        writeAll(c, up).then(() => c.closeWrite()),
        writeAll(s, down).then(() => s.closeWrite()),
        readAll(s),
        readAll(c),
      ]),
      20_000,
    );
    assert.deepEqual(gotUp, up);
    assert.deepEqual(gotDown, down);
    // The flood's half-open connections give up after their SYN-ACK retries (1+2+4+8+16+32 s).
    clock.advance(70_000);
    assert.equal(listener.synCount, 0);
    c.close();
    s.close();
    l.close();
    client.close();
    server.close();
  });
}

Deno.test("SYN cookies: an ACK with a forged cookie is refused with a reset", () => {
  const lab = floodLab(4);
  const { clock, server } = lab;
  server.listen({ port: 80 });
  for (let i = 0; i < 20; i++) lab.syn(20000 + i, 5000 * (i + 1));
  clock.advance(1);
  assert.ok(server.stats.tcp.synCookiesSent > 0);
  const before = lab.flooder.received.length;
  lab.ack(30000, 777_001, 123_456);
  clock.advance(1);
  assert.equal(server.stats.tcp.synCookiesFailed, 1);
  assert.equal(server.stats.tcp.synCookiesReceived, 0);
  assert.equal(server.stats.tcp.listenSegmentsDropped, 0, "counted once, as a failed cookie");
  const rst = lab.flooder.ipv4(before).filter((f) =>
    f[14 + 9] === 6 && (f[14 + 20 + 13]! & 0x04) !== 0
  );
  assert.equal(rst.length, 1, "answered with a reset");
  server.close();
  lab.client.close();
});

Deno.test("SYN cookies: a cookie SYN-ACK answered by its ACK completes (the raw flooder's own handshake)", () => {
  const lab = floodLab(4);
  const { clock, server } = lab;
  server.listen({ port: 80 });
  for (let i = 0; i < 8; i++) lab.syn(20000 + i, 5000 * (i + 1));
  clock.advance(1);
  const before = lab.flooder.received.length;
  lab.syn(31000, 9_000_000, false);
  clock.advance(1);
  const sa = lab.flooder.ipv4(before).find((f) => f[14 + 9] === 6 && f[14 + 20 + 13] === 0x12)!;
  assert.ok(sa !== undefined, "a cookie SYN-ACK");
  const v = new DataView(sa.buffer, sa.byteOffset);
  const cookie = v.getUint32(14 + 20 + 4);
  assert.equal(v.getUint32(14 + 20 + 8), 9_000_001);
  const segments = server.stats.tcp.segmentsReceived;
  lab.ack(31000, 9_000_001, (cookie + 1) >>> 0);
  clock.advance(1);
  assert.equal(server.stats.tcp.synCookiesReceived, 1);
  // The ACK is the new connection's first segment, as a handshake's final ACK is.
  assert.equal(server.stats.tcp.segmentsReceived - segments, 1);
  const conns = [...server.tcp.connections()].filter((c) => c.remotePort === 31000);
  assert.equal(conns.length, 1);
  assert.equal(conns[0]!.info().state, "ESTAB");
  assert.equal(conns[0]!.info().mss, 1460, "the MSS the cookie encoded (1460 is in the table)");
  assert.equal(conns[0]!.info().timestamps, false, "no timestamps: no window scale or SACK either");
  server.close();
  lab.client.close();
});
