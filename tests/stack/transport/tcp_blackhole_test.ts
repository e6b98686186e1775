/**
 * A PMTU black hole (big frames vanish, no ICMP comes back): after
 * tcp_retries1 RTOs in a row the MSS falls back to the base MSS (RFC 4821
 * §1, Linux's tcp_mtu_probing = 1) and the transfer completes.
 */
import assert from "node:assert/strict";
import { drive, pattern, tcpLab } from "./_tcp_lab.ts";
import type { PacketBuffer } from "../../../stack/wire/mod.ts";

// The hole swallows frames above `limit`; IPv6 never goes below its 1280-byte minimum MTU.
for (
  const [family, host, limit, mss] of [
    [4, "192.0.2.2", 1200, 1024 - 12],
    [6, "2001:db8::2", 1300, 1220 - 12],
  ] as const
) {
  Deno.test(`PMTU black hole, IPv${family}: the MSS falls back and the data arrives`, async () => {
    const lab = tcpLab();
    const { clock, a, b, ab } = lab;
    let swallowed = 0;
    const w = ab.writePacket.bind(ab);
    ab.writePacket = (p: PacketBuffer) => {
      if (p.end - p.start > limit) {
        swallowed++;
        return true; // gone on the path, and no ICMP says why
      }
      return w(p);
    };
    const l = b.listen({ hostname: "::", port: 80 });
    const acc = l.accept();
    const c = await drive(clock, a.connect({ hostname: host, port: 80 }));
    const s = await drive(clock, acc);
    const data = pattern(200_000);
    const sending = (async () => {
      let off = 0;
      while (off < data.length) off += await c.write(data.subarray(off));
      await c.closeWrite();
    })();
    let got = 0;
    const reading = (async () => {
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await s.read(buf);
        if (n === null) return;
        for (let i = 0; i < n; i++) assert.equal(buf[i], data[got + i]);
        got += n;
      }
    })();
    await drive(clock, Promise.all([sending, reading]), 120_000, 5);
    assert.equal(got, data.length);
    assert.ok(swallowed > 0);
    assert.ok(a.stats.tcp.pmtuBlackholeFallbacks >= 1, JSON.stringify(a.stats.tcp));
    assert.equal(c.info().mss, mss);
    c.close();
    s.close();
    l.close();
    clock.advance(1000);
    lab.close();
  });
}

Deno.test("PMTU black hole with mtu_probing off: the connection gives up (TimedOut)", async () => {
  const lab = tcpLab();
  const { clock, a, b, ab } = lab;
  a.tcp.settings.mtuProbing = false;
  a.tcp.settings.retries2 = 5;
  const w = ab.writePacket.bind(ab);
  ab.writePacket = (p: PacketBuffer) => p.end - p.start > 1200 ? true : w(p);
  const l = b.listen({ port: 80 });
  const acc = l.accept();
  const c = await drive(clock, a.connect({ hostname: "192.0.2.2", port: 80 }));
  await drive(clock, acc);
  await c.write(pattern(20_000));
  await assert.rejects(drive(clock, c.read(new Uint8Array(10)), 600_000, 50), Deno.errors.TimedOut);
  assert.equal(a.stats.tcp.pmtuBlackholeFallbacks, 0);
  l.close();
  lab.close();
});
