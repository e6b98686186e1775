/**
 * Forwarding TCP GSO super-frames (virtio-net GSO_TCPV4, as a TAP with
 * TSO hands them over) to a link without offloads: software segmentation,
 * and MTU decisions on the segment size (RFC 1191).
 */
import assert from "node:assert/strict";
import { GSO_TCPV4 } from "../../stack/wire/mod.ts";
import { ADDR, assertDelta, type RouterLab, routerLab, watch } from "./_topology.ts";
import {
  eth,
  expectIcmp,
  expectIpv4,
  ipv4,
  l4ChecksumOk,
  pattern,
  PROTO,
  readIpv4,
  tcp,
} from "./_packets.ts";

const MSS = 1448;
const DATA = 20_000;
const SEQ = 0xfffff000; // wraps during the burst
const ID = 0xfffa; // wraps too

/** A 20 KB TCP super-frame from a to b. */
function superFrame(df = true): { bytes: Uint8Array; data: Uint8Array } {
  const data = pattern(DATA, 11);
  const seg = tcp(ADDR.a, ADDR.b, { sport: 40000, dport: 5201, seq: SEQ, ack: 77, payload: data });
  const bytes = ipv4({
    src: ADDR.a,
    dst: ADDR.b,
    protocol: PROTO.TCP,
    id: ID,
    df,
    payload: seg,
  });
  return { bytes, data };
}

function sendSuper(lab: RouterLab, df = true): Uint8Array {
  const { bytes, data } = superFrame(df);
  assert.ok(lab.a.sendIp(bytes, { gsoType: GSO_TCPV4, gsoSize: MSS }), "the LAN takes GSO");
  lab.clock.advance(0);
  lab.clock.advance(0);
  return data;
}

Deno.test("GSO super-frames forwarded to a link without offloads", async (t) => {
  await t.step("segmented into ceil(20000/1448) valid TCP segments", () => {
    const lab = routerLab({ lanOffloads: true });
    const d = watch(lab.r);
    const data = sendSuper(lab);
    const segs = lab.b.ipv4();
    const n = Math.ceil(DATA / MSS);
    assert.equal(n, 14);
    assert.equal(segs.length, n);
    let got = 0;
    for (const [i, f] of segs.entries()) {
      const len = Math.min(MSS, DATA - i * MSS);
      const ip = expectIpv4(f, {
        ttl: 63,
        df: true,
        mf: false,
        totalLength: 40 + len,
        id: (ID + i) & 0xffff,
        src: ADDR.a,
        dst: ADDR.b,
      }, `segment ${i}`);
      assert.ok(f.length <= 1514, `segment ${i} fits the Ethernet MTU`);
      assert.ok(l4ChecksumOk(ip), `segment ${i} TCP checksum`);
      const v = new DataView(ip.payload.buffer, ip.payload.byteOffset);
      assert.equal(v.getUint32(4), (SEQ + i * MSS) >>> 0, `segment ${i} seq`);
      assert.equal(v.getUint32(8), 77, `segment ${i} ack`);
      const flags = ip.payload[13]!;
      assert.equal(flags & 0x08, i === n - 1 ? 0x08 : 0, `segment ${i} PSH only on the last`);
      assert.equal(flags & 0x10, 0x10, `segment ${i} ACK`);
      assert.deepEqual(ip.payload.subarray(20), data.subarray(i * MSS, i * MSS + len));
      assert.equal(eth(f).src, eth(lab.b.ipv4()[0]!).src);
      got += len;
    }
    assert.equal(got, DATA);
    assertDelta(d(), {
      "ipv4.forwarding.packets": 1,
      "ipv4.gsoSegmented": 1,
      "ipv4.gsoDropped": 0,
      "nic.wan0.framesSent": n,
    });
  });

  await t.step("segment size above the egress MTU with DF: Fragmentation Needed", () => {
    const lab = routerLab({ lanOffloads: true, wanMtu: 1280 });
    const d = watch(lab.r);
    const { bytes } = superFrame();
    sendSuper(lab);
    assert.equal(lab.b.ipv4().length, 0, "nothing forwarded");
    const errs = lab.a.icmp(3);
    assert.equal(errs.length, 1, "never silently dropped");
    const m = expectIcmp(errs[0]!, { type: 3, code: 4, rest: 1280, src: ADDR.rLan, dst: ADDR.a });
    assert.equal(m.ip.totalLength, 576);
    assert.deepEqual(m.body.subarray(0, 40), bytes.subarray(0, 40), "quotes IP and TCP headers");
    assertDelta(d(), {
      "ipv4.forwarding.packetTooBig": 1,
      "ipv4.forwarding.packets": 0,
      "ipv4.gsoDropped": 0,
    });
  });

  await t.step("segment size exactly at the egress MTU: segmented, not refused", () => {
    const lab = routerLab({ lanOffloads: true, wanMtu: 40 + MSS });
    sendSuper(lab);
    assert.equal(lab.a.icmp().length, 0);
    assert.equal(lab.b.ipv4().length, 14);
  });

  await t.step("segment size above the MTU without DF: every byte still arrives", () => {
    const lab = routerLab({ lanOffloads: true, wanMtu: 1280 });
    const d = watch(lab.r);
    sendSuper(lab, false);
    const frames = lab.b.ipv4().map((f) => expectIpv4(f, { ttl: 63 }));
    assert.ok(frames.length > 0, "forwarded");
    for (const ip of frames) assert.ok(ip.totalLength <= 1280);
    // Whatever the shape (segments, fragments of segments), the TCP data
    // must add up to the super-frame's 20 000 bytes.
    const unfragmented = frames.filter((ip) => !ip.mf && ip.fragOffset === 0);
    const fragmented = frames.filter((ip) => ip.mf || ip.fragOffset !== 0);
    const bytes = unfragmented.reduce((s, ip) => s + ip.payload.length - 20, 0) +
      fragmented.reduce((s, ip) => s + ip.payload.length, 0) -
      20 * fragmented.filter((ip) => ip.fragOffset === 0).length;
    assert.equal(bytes, DATA);
    assertDelta(d(), { "ipv4.forwarding.packets": 1, "ipv4.gsoDropped": 0 });
    assert.equal(readIpv4(lab.b.ipv4()[0]!, 14).protocol, PROTO.TCP);
  });
});
