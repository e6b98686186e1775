/**
 * ECN (RFC 3168) on tapir's TCP: negotiated as Linux's tcp_ecn says (1:
 * ask and accept, 2: accept only, 0: off), ECT(0) on new data only, and a
 * CE mark on the path answered with ECE, one window reduction and CWR.
 */
import assert from "node:assert/strict";
import { drive, pattern, tcpLab } from "./_tcp_lab.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";
import { internetChecksum } from "../../../stack/wire/mod.ts";

const ECE = 0x40, CWR = 0x80;

for (
  const [client, server, want] of [
    [1, 2, true],
    [1, 1, true],
    [1, 0, false],
    [2, 2, false],
    [0, 1, false],
  ] as const
) {
  Deno.test(`ECN negotiation: client tcp_ecn=${client}, server ${server} -> ${want}`, async () => {
    const lab = tcpLab();
    const { clock, a, b } = lab;
    a.tcp.settings.ecn = client;
    b.tcp.settings.ecn = server;
    const l = b.listen({ port: 80 });
    const acc = l.accept();
    const c = await drive(clock, a.connect({ hostname: "192.0.2.2", port: 80 }));
    const s = await drive(clock, acc);
    assert.equal(c.info().ecn, want);
    assert.equal(s.info().ecn, want);
    c.close();
    s.close();
    l.close();
    clock.advance(1000);
    lab.close();
  });
}

Deno.test("ECN: a CE mark is echoed (ECE), the sender reduces once per window and sends CWR", async () => {
  const lab = tcpLab();
  const { clock, a, b, ab, ba } = lab;
  a.tcp.settings.ecn = 1;
  let marked = 0, ectSeen = 0, cwrSeen = 0, eceSeen = 0;
  const wa = ab.writePacket.bind(ab);
  ab.writePacket = (p: PacketBuffer) => {
    const ip = p.start + 14;
    const d = p.data;
    if (d[ip] === 0x45 && d[ip + 9] === 6) {
      if ((d[ip + 1]! & 3) === 2) {
        ectSeen++;
        // The router on the path marks every 50th ECT packet CE.
        if (ectSeen % 50 === 0) {
          d[ip + 1] = d[ip + 1]! | 3;
          p.view.setUint16(ip + 10, 0);
          p.view.setUint16(ip + 10, internetChecksum(d, ip, 20));
          marked++;
        }
      }
      if ((d[ip + 20 + 13]! & (CWR | 0x02)) === CWR) cwrSeen++;
    }
    return wa(p);
  };
  const wb = ba.writePacket.bind(ba);
  ba.writePacket = (p: PacketBuffer) => {
    const ip = p.start + 14;
    if (
      p.data[ip] === 0x45 && p.data[ip + 9] === 6 && (p.data[ip + 20 + 13]! & ECE) !== 0 &&
      (p.data[ip + 20 + 13]! & 0x02) === 0
    ) {
      eceSeen++;
    }
    // Pure ACKs are never ECT (RFC 3168 §6.1.4).
    if (p.data[ip] === 0x45 && p.end - ip === 20 + ((p.data[ip + 20 + 12]! >> 4) << 2)) {
      assert.equal(p.data[ip + 1]! & 3, 0);
    }
    return wb(p);
  };
  const l = b.listen({ port: 80 });
  const acc = l.accept();
  const c = await drive(clock, a.connect({ hostname: "192.0.2.2", port: 80 }));
  const s = await drive(clock, acc);
  const data = pattern(2_000_000);
  const sending = (async () => {
    let off = 0;
    while (off < data.length) off += await c.write(data.subarray(off));
    await c.closeWrite();
  })();
  const got: Uint8Array[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await s.read(buf);
      if (n === null) return;
      got.push(buf.slice(0, n));
    }
  })();
  await drive(clock, Promise.all([sending, reading]), 60_000);
  const total = got.reduce((n, x) => n + x.length, 0);
  assert.equal(total, data.length);
  assert.ok(marked > 0 && ectSeen > 0, `marked ${marked} of ${ectSeen}`);
  assert.ok(b.stats.tcp.ecnCeReceived >= marked, JSON.stringify(b.stats.tcp));
  assert.ok(eceSeen > 0, "ECE echoed");
  assert.ok(a.stats.tcp.ecnReductions > 0 && a.stats.tcp.ecnReductions <= marked);
  assert.ok(cwrSeen >= 1 && cwrSeen <= a.stats.tcp.ecnReductions, `CWR ${cwrSeen}`);
  assert.equal(a.stats.tcp.retransmittedSegments, 0, "a CE mark is no loss");
  c.close();
  s.close();
  l.close();
  clock.advance(1000);
  lab.close();
});
