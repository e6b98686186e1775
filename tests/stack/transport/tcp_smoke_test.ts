import assert from "node:assert/strict";
import { drive, pattern, tcpLab } from "./_tcp_lab.ts";

async function readAll(conn: { read(p: Uint8Array): Promise<number | null> }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

for (const offloads of [false, true]) {
  for (const [family, host] of [[4, "192.0.2.2"], [6, "2001:db8::2"]] as const) {
    Deno.test(`tcp smoke: IPv${family} 1 MB each way, offloads ${offloads}`, async () => {
      const lab = tcpLab({ offloads });
      const { clock, a, b } = lab;
      const l = b.listen({ hostname: family === 4 ? "0.0.0.0" : "::", port: 7 });
      const server = (async () => {
        const c = await l.accept();
        const got = await readAll(c);
        let off = 0;
        while (off < got.length) off += await c.write(got.subarray(off));
        await c.closeWrite();
        // wait for the client's close
        await c.read(new Uint8Array(1));
        c.close();
        return got.length;
      })();
      const data = pattern(1_000_000);
      const work = (async () => {
        const c = await a.connect({ hostname: host, port: 7 });
        const reader = readAll(c);
        let off = 0;
        while (off < data.length) off += await c.write(data.subarray(off));
        await c.closeWrite();
        const back = await reader;
        const info = c.info();
        c.close();
        return { back, info };
      })();
      const { back, info } = await drive(clock, work, 60_000);
      assert.equal(back.length, data.length);
      assert.deepEqual(back, data);
      assert.equal(await drive(clock, server, 1000), data.length);
      assert.ok(info.timestamps && info.sack, JSON.stringify(info));
      l.close();
      lab.close();
    });
  }
}
