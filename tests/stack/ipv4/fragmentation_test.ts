import assert from "node:assert/strict";
import { ManualClock } from "../../../stack/clock.ts";
import { SeededRandom } from "../../../stack/random.ts";
import { Reassembler, type ReassemblyResult } from "../../../stack/reassembly.ts";
import {
  addIpv4Fragment,
  FRAGMENT_IP_OFFSET,
  fragmentIpv4,
  ipv4ReassemblyKey,
} from "../../../stack/ipv4/fragmentation.ts";
import { internetChecksum } from "../../../stack/wire/checksum.ts";
import { BufferPool, HEADROOM, PacketBuffer } from "../../../stack/wire/packet_buffer.ts";

// RFC 791 §3.1 option bytes.
/** Record Route (type 7, copied flag 0), room for two addresses. */
const RECORD_ROUTE = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
/** Security (type 130, copied flag 1): S, C, H, TCC fields. */
const SECURITY = [130, 11, 0xf1, 0x35, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x03];
const NOP = [1];

const IP_OFF = HEADROOM + 14;

interface DatagramSpec {
  totalLen: number;
  options?: number[];
  flagsFrag?: number;
}

/** A valid IPv4 datagram at IP_OFF: 192.0.2.1 → 198.51.100.2, UDP, id 0x1234. */
function datagram(spec: DatagramSpec): PacketBuffer {
  const opts = spec.options ?? [];
  const ihl = 20 + ((opts.length + 3) & ~3);
  const b = new PacketBuffer();
  const d = b.data;
  const v = b.view;
  d[IP_OFF] = 0x40 | (ihl >> 2);
  v.setUint16(IP_OFF + 2, spec.totalLen);
  v.setUint16(IP_OFF + 4, 0x1234);
  v.setUint16(IP_OFF + 6, spec.flagsFrag ?? 0);
  d[IP_OFF + 8] = 64;
  d[IP_OFF + 9] = 17;
  v.setUint32(IP_OFF + 12, 0xc0000201);
  v.setUint32(IP_OFF + 16, 0xc6336402);
  d.set(opts, IP_OFF + 20);
  v.setUint16(IP_OFF + 10, internetChecksum(d, IP_OFF, ihl));
  for (let i = ihl; i < spec.totalLen; i++) d[IP_OFF + i] = (i * 13 + 5) & 0xff;
  b.setFrame(HEADROOM, 14 + spec.totalLen);
  b.networkOffset = IP_OFF;
  return b;
}

interface Seen {
  bytes: Uint8Array;
  start: number;
  ipOff: number;
}

function fragment(src: PacketBuffer, mtu: number, pool = new BufferPool(4)) {
  const seen: Seen[] = [];
  const n = fragmentIpv4(src, IP_OFF, mtu, pool, (f, ipOff) => {
    seen.push({ bytes: f.data.slice(ipOff, f.end), start: f.start, ipOff });
  });
  return { n, seen, pool };
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

Deno.test("fragmentIpv4() splits a 4000-byte datagram per MTU", async (t) => {
  const cases: { name: string; mtu: number; lens: number[] }[] = [
    { name: "MTU 576", mtu: 576, lens: [572, 572, 572, 572, 572, 572, 572, 136] },
    { name: "MTU 1280", mtu: 1280, lens: [1276, 1276, 1276, 232] },
    { name: "MTU 1400", mtu: 1400, lens: [1396, 1396, 1248] },
    { name: "MTU 1500", mtu: 1500, lens: [1500, 1500, 1040] },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const src = datagram({ totalLen: 4000 });
      const { n, seen, pool } = fragment(src, c.mtu);
      assert.equal(n, c.lens.length);
      assert.deepEqual(seen.map((s) => s.bytes.length), c.lens);
      let offset = 0;
      seen.forEach((s, i) => {
        const b = s.bytes;
        assert.equal(s.ipOff, FRAGMENT_IP_OFFSET);
        assert.equal(s.start, FRAGMENT_IP_OFFSET);
        assert.equal(b[0], 0x45);
        assert.equal(u16(b, 2), c.lens[i]);
        assert.equal(u16(b, 4), 0x1234, "same identification");
        const ff = u16(b, 6);
        assert.equal((ff & 0x1fff) * 8, offset, `offset of fragment ${i}`);
        assert.equal((ff & 0x2000) !== 0, i < seen.length - 1, `MF of fragment ${i}`);
        assert.equal(internetChecksum(b, 0, 20), 0, `checksum of fragment ${i}`);
        const dataLen = b.length - 20;
        if (i < seen.length - 1) assert.equal(dataLen % 8, 0);
        // The payload is the original's, at the fragment's offset.
        assert.deepEqual(
          b.subarray(20),
          src.data.subarray(IP_OFF + 20 + offset, IP_OFF + 20 + offset + dataLen),
        );
        offset += dataLen;
      });
      assert.equal(offset, 3980);
      assert.equal(pool.inUse(), 0, "every fragment buffer returned");
    });
  }
});

Deno.test("fragmentIpv4() copies only options with the copied flag into later fragments", async (t) => {
  const options = [...NOP, ...RECORD_ROUTE, ...SECURITY]; // 23 bytes, padded to 24: IHL 44
  const cases: { name: string; mtu: number; lens: number[] }[] = [
    // First: (576 - 44) & ~7 = 528 data bytes; later: (576 - 32) & ~7 = 544.
    { name: "MTU 576", mtu: 576, lens: [572, 576, 576, 576, 576, 576, 576, 196] },
    // First: 1456; later: 1464; 3956 = 1456 + 1464 + 1036.
    { name: "MTU 1500", mtu: 1500, lens: [1500, 1496, 1068] },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const src = datagram({ totalLen: 4000, options });
      const { seen } = fragment(src, c.mtu);
      assert.deepEqual(seen.map((s) => s.bytes.length), c.lens);
      const first = seen[0]!.bytes;
      assert.equal(first[0], 0x4b, "first fragment keeps IHL 11");
      assert.deepEqual(first.subarray(20, 44), src.data.subarray(IP_OFF + 20, IP_OFF + 44));
      let offset = 0;
      seen.forEach((s, i) => {
        const b = s.bytes;
        const ihl = (b[0]! & 15) * 4;
        assert.equal(internetChecksum(b, 0, ihl), 0);
        assert.equal((u16(b, 6) & 0x1fff) * 8, offset);
        if (i > 0) {
          assert.equal(ihl, 32, "later fragments: Security (11) padded to 12");
          assert.deepEqual([...b.subarray(20, 32)], [...SECURITY, 0]);
        }
        offset += b.length - ihl;
      });
      assert.equal(offset, 3956);
    });
  }
});

Deno.test("fragmentIpv4() fragments a fragment with offsets relative to it", async (t) => {
  const cases: { name: string; flagsFrag: number; mf: boolean[]; offsets: number[] }[] = [
    {
      name: "a middle fragment (MF, offset 100): MF stays set on all",
      flagsFrag: 0x2000 | 100,
      mf: [true, true, true],
      offsets: [100, 285, 470],
    },
    {
      name: "a last fragment (offset 100): MF clear on the last",
      flagsFrag: 100,
      mf: [true, true, false],
      offsets: [100, 285, 470],
    },
    {
      name: "the reserved bit is carried as received",
      flagsFrag: 0x8000,
      mf: [true, true, false],
      offsets: [0, 185, 370],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { seen } = fragment(datagram({ totalLen: 3000, flagsFrag: c.flagsFrag }), 1500);
      assert.deepEqual(seen.map((s) => (u16(s.bytes, 6) & 0x2000) !== 0), c.mf);
      assert.deepEqual(seen.map((s) => u16(s.bytes, 6) & 0x1fff), c.offsets);
      assert.ok(seen.every((s) => (u16(s.bytes, 6) & 0x8000) === (c.flagsFrag & 0x8000)));
    });
  }
});

Deno.test("fragmentIpv4() refuses what it cannot fragment", async (t) => {
  const cases: {
    name: string;
    src: () => PacketBuffer;
    mtu: number;
    pool?: BufferPool;
    want: number | string;
    emitted: number;
  }[] = [
    {
      name: "DF set: dontFragment (caller sends Fragmentation Needed)",
      src: () => datagram({ totalLen: 2000, flagsFrag: 0x4000 }),
      mtu: 1500,
      want: "dontFragment",
      emitted: 0,
    },
    {
      name: "MTU 67: mtuTooSmall",
      src: () => datagram({ totalLen: 2000 }),
      mtu: 67,
      want: "mtuTooSmall",
      emitted: 0,
    },
    {
      name: "MTU 68 with a 60-byte header: 8 data bytes per fragment",
      src: () => datagram({ totalLen: 100, options: new Array(40).fill(1) }),
      mtu: 68,
      want: 2, // 40 data bytes: 8 under IHL 60, then 32 under IHL 20 (NOP is not copied)
      emitted: 2,
    },
    {
      name: "pool exhausted: noBuffer",
      src: () => datagram({ totalLen: 2000 }),
      mtu: 1500,
      pool: new BufferPool(0),
      want: "noBuffer",
      emitted: 0,
    },
    {
      name: "not IPv4: malformed",
      src: () => {
        const b = datagram({ totalLen: 2000 });
        b.data[IP_OFF] = 0x65;
        return b;
      },
      mtu: 1500,
      want: "malformed",
      emitted: 0,
    },
    {
      name: "total length beyond the buffer: malformed",
      src: () => {
        const b = new PacketBuffer(IP_OFF + 100);
        b.data[IP_OFF] = 0x45;
        b.view.setUint16(IP_OFF + 2, 2000);
        return b;
      },
      mtu: 1500,
      want: "malformed",
      emitted: 0,
    },
    {
      name: "already fits (even with DF): emitted as is",
      src: () => datagram({ totalLen: 1500, flagsFrag: 0x4000 }),
      mtu: 1500,
      want: 1,
      emitted: 1,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const src = c.src();
      const { n, seen } = fragment(src, c.mtu, c.pool);
      assert.equal(n, c.want);
      assert.equal(seen.length, c.emitted);
      if (c.want === 1) assert.equal(seen[0]!.ipOff, IP_OFF);
    });
  }
});

Deno.test("fragmentIpv4() then Reassembler gives the original datagram back", async (t) => {
  const cases: { name: string; spec: DatagramSpec; mtu: number; seed: number }[] = [
    { name: "4000 bytes, MTU 576, random order", spec: { totalLen: 4000 }, mtu: 576, seed: 1 },
    { name: "4000 bytes, MTU 1280, reverse order", spec: { totalLen: 4000 }, mtu: 1280, seed: 0 },
    {
      name: "4000 bytes with options, MTU 1400",
      spec: { totalLen: 4000, options: [...NOP, ...RECORD_ROUTE, ...SECURITY] },
      mtu: 1400,
      seed: 2,
    },
    { name: "65535 bytes, MTU 1500, random order", spec: { totalLen: 65_535 }, mtu: 1500, seed: 3 },
    { name: "1501 bytes, MTU 1500", spec: { totalLen: 1501 }, mtu: 1500, seed: 4 },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const src = datagram(c.spec);
      const original = src.data.slice(IP_OFF, IP_OFF + c.spec.totalLen);
      const { seen } = fragment(src, c.mtu);
      let order = seen.map((s) => s.bytes);
      if (c.seed === 0) order = order.reverse();
      else {
        const r = new SeededRandom(c.seed);
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(r.float() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      }
      const pool = new BufferPool(4);
      const r = new Reassembler<string>({
        clock: new ManualClock(),
        pool,
        timeoutMs: 30_000,
        maxDatagramLen: 65_535,
      });
      let res: ReassemblyResult | null = null;
      const frame = new PacketBuffer();
      for (const bytes of order) {
        frame.data.set(bytes, 200);
        assert.equal(ipv4ReassemblyKey(frame, 200), "3221225985/3325256706/17/4660");
        res = addIpv4Fragment(r, frame, 200);
      }
      assert.ok(res !== null && res.kind === "complete");
      const b = res.buffer;
      assert.deepEqual(b.data.slice(res.headerOffset, b.end), original);
      pool.put(b);
      assert.equal(pool.inUse(), 0);
    });
  }
});
