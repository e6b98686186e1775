/**
 * manipIpv6 against a full recomputation: random TCP, UDP and ICMPv6 echo
 * packets with valid checksums get a new source or destination address
 * and port; the incrementally patched checksum must equal the one computed
 * afresh (and a pseudo-header sum, virtio's NEEDS_CSUM, must equal the new
 * pseudo header's sum).
 */
import assert from "node:assert/strict";
import { Manip, manipIpv6 } from "../../../stack/firewall/nat.ts";
import { SeededRandom } from "../../../stack/random.ts";
import {
  finishChecksum,
  foldSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../../../stack/wire/checksum.ts";
import { HEADROOM, PacketBuffer } from "../../../stack/wire/packet_buffer.ts";

const IP = HEADROOM + 14;
const L4 = IP + 40;

/** The checksum field's offset of `proto` at L4. */
const csumAt = (proto: number) => L4 + (proto === 6 ? 16 : proto === 17 ? 6 : 2);

/** A packet of `proto` with `len` L4 bytes of random content and a valid checksum (or a pseudo-header sum). */
function packet(rnd: SeededRandom, proto: number, len: number, partial: boolean): PacketBuffer {
  const pkt = new PacketBuffer();
  const d = pkt.data;
  pkt.setFrame(HEADROOM, 14 + 40 + len);
  d[IP] = 0x60;
  d[IP + 4] = len >>> 8;
  d[IP + 5] = len & 0xff;
  d[IP + 6] = proto;
  d[IP + 7] = 64;
  for (let i = 0; i < 32; i++) d[IP + 8 + i] = rnd.uint32() & 0xff;
  for (let i = 0; i < len; i++) d[L4 + i] = rnd.uint32() & 0xff;
  if (proto === 58) {
    d[L4] = 128; // echo request: the identifier is the "port"
    d[L4 + 1] = 0;
  }
  if (proto === 17) {
    d[L4 + 4] = len >>> 8;
    d[L4 + 5] = len & 0xff;
  }
  const c = csumAt(proto);
  d[c] = d[c + 1] = 0;
  const pseudo = ipv6PseudoHeaderSum(d, IP + 8, IP + 24, proto, len);
  const v = partial ? foldSum(pseudo) : finishChecksum(onesSum(d, L4, len, pseudo));
  d[c] = v >>> 8;
  d[c + 1] = v & 0xff;
  return pkt;
}

/** The field as it should be after the rewrite, computed afresh. */
function fresh(pkt: PacketBuffer, proto: number, len: number, partial: boolean): number {
  const d = new Uint8Array(pkt.data);
  const c = csumAt(proto);
  d[c] = d[c + 1] = 0;
  const pseudo = ipv6PseudoHeaderSum(d, IP + 8, IP + 24, proto, len);
  if (partial) return foldSum(pseudo);
  const v = finishChecksum(onesSum(d, L4, len, pseudo));
  return proto === 17 && v === 0 ? 0xffff : v;
}

/** Ones' complement equality: 0x0000 and 0xffff are the same number (RFC 1624 §3). */
const same = (a: number, b: number) => a === b || (a % 0xffff) === (b % 0xffff);

Deno.test("manipIpv6: the patched checksum equals a fresh one (TCP, UDP, ICMPv6 echo; SRC and DST; full and partial)", () => {
  const rnd = new SeededRandom(66);
  let checked = 0;
  for (let n = 0; n < 3000; n++) {
    const proto = [6, 17, 58][n % 3]!;
    const partial = proto !== 58 && rnd.uint32() % 4 === 0;
    const len = (proto === 6 ? 20 : 8) + (rnd.uint32() % 64);
    const pkt = packet(rnd, proto, len, partial);
    const manip = rnd.uint32() & 1 ? Manip.SRC : Manip.DST;
    const addr = new Uint8Array(16).map(() => rnd.uint32() & 0xff);
    const port = rnd.uint32() % 3 === 0 ? -1 : rnd.uint32() & 0xffff;
    manipIpv6(pkt, IP, L4, proto, pkt.end, manip, addr, port, partial);
    const d = pkt.data;
    assert.deepEqual(d.subarray(IP + (manip === Manip.SRC ? 8 : 24)).subarray(0, 16), addr);
    if (port >= 0) {
      const pAt = proto === 58 ? L4 + 4 : L4 + (manip === Manip.SRC ? 0 : 2);
      assert.equal((d[pAt]! << 8) | d[pAt + 1]!, port);
    }
    const c = csumAt(proto);
    const got = (d[c]! << 8) | d[c + 1]!;
    const want = fresh(pkt, proto, len, partial);
    assert.ok(same(got, want), `case ${n}: proto ${proto} partial ${partial}: ${got} vs ${want}`);
    if (proto === 17 && !partial) assert.notEqual(got, 0, "a UDP checksum never becomes 0");
    checked++;
  }
  assert.equal(checked, 3000);
});

Deno.test("manipIpv6: a UDP checksum of 0 (none) stays 0; the address and port still change", () => {
  const rnd = new SeededRandom(7);
  const pkt = packet(rnd, 17, 16, false);
  const d = pkt.data;
  d[csumAt(17)] = d[csumAt(17) + 1] = 0;
  const addr = new Uint8Array(16).fill(0x20);
  manipIpv6(pkt, IP, L4, 17, pkt.end, Manip.SRC, addr, 4242, false);
  assert.equal((d[csumAt(17)]! << 8) | d[csumAt(17) + 1]!, 0);
  assert.deepEqual(d.subarray(IP + 8, IP + 24), addr);
  assert.equal((d[L4]! << 8) | d[L4 + 1]!, 4242);
});

Deno.test("manipIpv6: a later fragment (no upper layer) gets the address only", () => {
  const rnd = new SeededRandom(8);
  const pkt = packet(rnd, 17, 16, false);
  const before = pkt.data.slice(L4, L4 + 16);
  const addr = new Uint8Array(16).fill(0x30);
  manipIpv6(pkt, IP, -1, 17, pkt.end, Manip.DST, addr, 999, false);
  assert.deepEqual(pkt.data.subarray(IP + 24, IP + 40), addr);
  assert.deepEqual(pkt.data.subarray(L4, L4 + 16), before);
});
