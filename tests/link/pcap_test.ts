import assert from "node:assert/strict";
import { MemoryLink, PcapEndpoint, PcapWriter } from "../../link/mod.ts";
import { ManualClock } from "../../stack/clock.ts";
import { HEADROOM, PacketBuffer } from "../../stack/wire/packet_buffer.ts";

function frame(len: number, fill: number): PacketBuffer {
  const p = new PacketBuffer().setFrame(HEADROOM, len);
  p.data.fill(fill, p.start, p.end);
  return p;
}

/** A sink collecting every byte written, and how many writes it took. */
function memSink() {
  const chunks: Uint8Array[] = [];
  let closed = false;
  return {
    chunks,
    get closed() {
      return closed;
    },
    writeSync(p: Uint8Array) {
      chunks.push(p.slice());
      return p.length;
    },
    close() {
      closed = true;
    },
    bytes(): Uint8Array {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) out.set(c, o), o += c.length;
      return out;
    },
  };
}

interface Rec {
  sec: number;
  usec: number;
  incl: number;
  orig: number;
  data: Uint8Array;
}

function parsePcap(b: Uint8Array): { header: number[]; records: Rec[] } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const header = [
    v.getUint32(0, true),
    v.getUint16(4, true),
    v.getUint16(6, true),
    v.getInt32(8, true),
    v.getUint32(12, true),
    v.getUint32(16, true),
    v.getUint32(20, true),
  ];
  const records: Rec[] = [];
  for (let o = 24; o < b.length;) {
    const incl = v.getUint32(o + 8, true);
    records.push({
      sec: v.getUint32(o, true),
      usec: v.getUint32(o + 4, true),
      incl,
      orig: v.getUint32(o + 12, true),
      data: b.slice(o + 16, o + 16 + incl),
    });
    o += 16 + incl;
  }
  return { header, records };
}

Deno.test("PcapEndpoint records both directions, parsed back byte by byte", async (t) => {
  const clock = new ManualClock(1500.25);
  const [a, b] = MemoryLink.pair({ clock });
  const sink = memSink();
  const pa = new PcapEndpoint(a, { sink, clock, epochOffsetMs: 1_700_000_000_000 });
  const delivered: number[] = [];
  pa.attach({ deliverFrame: (p) => delivered.push(p.length()) });
  b.attach({ deliverFrame: () => {} });

  assert.equal(pa.writePacket(frame(60, 0x11)), true); // out at t=1500.25
  b.writePacket(frame(100, 0x22));
  clock.advance(0); // both delivered; b→a received at t=1500.25
  clock.advance(2000); // periodic flush fired (1000 ms)
  assert.ok(sink.chunks.length >= 1, "flushed on the interval");
  pa.writePacket(frame(1514, 0x33)); // t=3500.25
  pa.close();

  const { header, records } = parsePcap(sink.bytes());
  await t.step("file header", () => {
    assert.deepEqual(header, [0xa1b2c3d4, 2, 4, 0, 0, 262144, 1]);
    assert.deepEqual([...sink.bytes().subarray(0, 4)], [0xd4, 0xc3, 0xb2, 0xa1]);
  });
  await t.step("records: lengths, order, timestamps, bytes", () => {
    assert.deepEqual(
      records.map((r) => [r.sec, r.usec, r.incl, r.orig, r.data[0], r.data.at(-1)]),
      [
        [1_700_000_001, 500_250, 60, 60, 0x11, 0x11],
        [1_700_000_001, 500_250, 100, 100, 0x22, 0x22],
        [1_700_000_003, 500_250, 1514, 1514, 0x33, 0x33],
      ],
    );
  });
  await t.step("received frames are dispatched after recording", () => {
    assert.deepEqual(delivered, [100]);
  });
  await t.step("close() flushes and closes the sink, and the inner link", () => {
    assert.equal(sink.closed, true);
    assert.equal(a.isUp(), false);
  });
});

Deno.test("PcapEndpoint does not record frames the inner link refused", () => {
  const clock = new ManualClock();
  const [a] = MemoryLink.pair({ clock, mtu: 1500 });
  const sink = memSink();
  const pa = new PcapEndpoint(a, { sink, clock });
  assert.equal(pa.writePacket(frame(2000, 1)), false);
  pa.close();
  assert.equal(parsePcap(sink.bytes()).records.length, 0);
});

Deno.test("PcapWriter writes when its buffer is full and keeps 64 KiB super-frames whole", () => {
  const clock = new ManualClock();
  const sink = memSink();
  const w = new PcapWriter(sink, { clock, bufferSize: 1, flushIntervalMs: 0, epochOffsetMs: 0 });
  for (let i = 0; i < 5; i++) w.write(frame(65_000, i));
  assert.ok(sink.chunks.length >= 1, "flushed before close");
  w.close();
  const { records } = parsePcap(sink.bytes());
  assert.deepEqual(records.map((r) => [r.incl, r.orig, r.data[64_999]]), [
    [65_000, 65_000, 0],
    [65_000, 65_000, 1],
    [65_000, 65_000, 2],
    [65_000, 65_000, 3],
    [65_000, 65_000, 4],
  ]);
});

Deno.test("PcapEndpoint writes a file tshark can read", async () => {
  const path = Deno.makeTempFileSync({ prefix: "tpl-", suffix: ".pcap" });
  try {
    const clock = new ManualClock();
    const [a] = MemoryLink.pair({ clock });
    const pa = new PcapEndpoint(a, { path, clock });
    pa.writePacket(frame(60, 0xff));
    pa.close();
    assert.equal(Deno.readFileSync(path).length, 24 + 16 + 60);
    const has = await new Deno.Command("sh", { args: ["-c", "command -v tshark"], stdout: "null" })
      .output();
    if (has.code !== 0) {
      if (Deno.env.get("CI") === "true") throw new Error("tshark is required (CI=true)");
      return;
    }
    const out = await new Deno.Command("tshark", {
      args: ["-r", path, "-T", "fields", "-e", "frame.len"],
      stderr: "null",
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "60");
  } finally {
    Deno.removeSync(path);
  }
});
