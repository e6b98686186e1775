import assert from "node:assert/strict";
import {
  checksumUpdate16,
  checksumUpdate32,
  finishChecksum,
  foldSum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  onesSum,
} from "../../../stack/wire/checksum.ts";
import { parseIpv4, parseIpv6 } from "../../../stack/wire/ip_address.ts";
import { hex, seeded } from "./_helpers.ts";

Deno.test("internetChecksum follows RFC 1071", async (t) => {
  await t.step("onesSum() of the RFC 1071 §3 example words is 0xddf2", () => {
    // RFC 1071 §3 "Numerical Examples": 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2.
    const b = hex("0001", "f203", "f4f5", "f6f7");
    assert.equal(foldSum(onesSum(b, 0, b.length, 0)), 0xddf2);
    assert.equal(internetChecksum(b, 0, b.length), 0x220d);
  });
  await t.step("onesSum() pads an odd last byte with zero", () => {
    assert.equal(onesSum(hex("0102", "03"), 0, 3, 0), 0x0102 + 0x0300);
  });
  await t.step("internetChecksum() of an IPv4 header from scapy verifies to 0", () => {
    // IP(src='192.0.2.1', dst='198.51.100.2', ttl=64, id=0x1234, flags='DF', proto=17, len=33)
    const h = hex("45000021123440004011", "3c61", "c0000201c6336402");
    assert.equal(internetChecksum(h, 0, 20), 0);
    h[10] = 0;
    h[11] = 0;
    assert.equal(internetChecksum(h, 0, 20), 0x3c61);
  });
  await t.step("onesSum() stays exact over a 64 KiB buffer of 0xff", () => {
    const b = new Uint8Array(65_536).fill(0xff);
    assert.equal(foldSum(onesSum(b, 0, b.length, 0)), 0xffff);
    assert.equal(internetChecksum(b, 0, b.length), 0);
  });
  await t.step("ipv4PseudoHeaderSum() reproduces scapy's UDP checksum 0x3355", () => {
    // UDP(sport=40000, dport=53)/b'hello' from 192.0.2.1 to 198.51.100.2
    const udp = hex("9c400035000d0000", "68656c6c6f");
    const s = ipv4PseudoHeaderSum(parseIpv4("192.0.2.1"), parseIpv4("198.51.100.2"), 17, 13);
    assert.equal(finishChecksum(onesSum(udp, 0, udp.length, s)), 0x3355);
  });
  await t.step("ipv6PseudoHeaderSum() reproduces scapy's UDP checksum 0xb62e", () => {
    // IPv6(src='2001:db8::1', dst='2001:db8::2')/UDP(sport=5353, dport=5353)/b'abc'
    const addrs = new Uint8Array(32);
    addrs.set(parseIpv6("2001:db8::1"), 0);
    addrs.set(parseIpv6("2001:db8::2"), 16);
    const udp = hex("14e914e9000b0000", "616263");
    const s = ipv6PseudoHeaderSum(addrs, 0, 16, 17, 11);
    assert.equal(finishChecksum(onesSum(udp, 0, udp.length, s)), 0xb62e);
  });
});

Deno.test("checksumUpdate16/32 follow RFC 1624 eqn. 3", async (t) => {
  await t.step("checksumUpdate16() doc example: TTL 64 → 63 raises the checksum by 0x100", () => {
    assert.equal(checksumUpdate16(0xb861, 0x4001, 0x3f01), 0xb961);
  });
  await t.step("checksumUpdate16() RFC 1624 §4 example never yields 0x0000 for -0", () => {
    // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 → m' = 0x3285 gives HC' = 0x0000
    // with eqn. 3 (not 0xffff as eqn. 2 would).
    assert.equal(checksumUpdate16(0xdd2f, 0x5555, 0x3285), 0x0000);
  });
  await t.step("checksumUpdate16() equals a full recompute over random data", () => {
    const rnd = seeded(1624);
    const data = new Uint8Array(128);
    for (let n = 0; n < 20_000; n++) {
      const len = 2 * (1 + (rnd() % 64));
      for (let i = 0; i < len; i++) data[i] = rnd() & 0xff;
      const before = internetChecksum(data, 0, len);
      const at = 2 * (rnd() % (len / 2));
      const oldWord = (data[at]! << 8) | data[at + 1]!;
      const newWord = rnd() & 0xffff;
      data[at] = newWord >> 8;
      data[at + 1] = newWord & 0xff;
      const full = internetChecksum(data, 0, len);
      const inc = checksumUpdate16(before, oldWord, newWord);
      if (inc !== full) assert.fail(`case ${n}: incremental ${inc} != full ${full}`);
    }
  });
  await t.step("checksumUpdate32() equals a full recompute over random data (NAT rewrite)", () => {
    const rnd = seeded(3022);
    const data = new Uint8Array(64);
    const view = new DataView(data.buffer);
    for (let n = 0; n < 20_000; n++) {
      for (let i = 0; i < 64; i++) data[i] = rnd() & 0xff;
      const before = internetChecksum(data, 0, 64);
      const at = 4 * (rnd() % 16);
      const oldValue = view.getUint32(at);
      const newValue = rnd();
      view.setUint32(at, newValue);
      const full = internetChecksum(data, 0, 64);
      const inc = checksumUpdate32(before, oldValue, newValue);
      if (inc !== full) assert.fail(`case ${n}: incremental ${inc} != full ${full}`);
    }
  });
});
