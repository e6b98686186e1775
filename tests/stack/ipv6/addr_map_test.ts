/**
 * The IPv6 address map and key interner (open addressing over the
 * addresses' words, backward-shift deletion) against a plain Map keyed by
 * the address text, under seeded random operations that make long probe
 * runs, growth and deletions in the middle of runs.
 */
import assert from "node:assert/strict";
import { Ipv6AddressMap, Ipv6KeyInterner } from "../../../stack/ipv6/addr_map.ts";
import { SeededRandom } from "../../../stack/mod.ts";
import { formatIpv6, parseIpv6 } from "../../../stack/wire/ip_address.ts";

/** `n` addresses: most in one /64 differing in the last bytes, some spread over the space. */
function pool(r: SeededRandom, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const a = parseIpv6("2001:db8:1::");
    if (i % 4 === 0) { for (let k = 0; k < 16; k++) a[k] = r.uint32() & 0xff; }
    else {
      a[14] = i >> 8;
      a[15] = i & 0xff;
    }
    out.push(a);
  }
  return out;
}

Deno.test("Ipv6AddressMap agrees with a Map by text over 20,000 random set/get/delete", () => {
  const r = new SeededRandom(16);
  const addrs = pool(r, 300);
  const m = new Ipv6AddressMap<number>();
  const ref = new Map<string, number>();
  // The packet an address sits in, at an offset, as lookups read it.
  const pkt = new Uint8Array(64);
  for (let step = 0; step < 20_000; step++) {
    const a = addrs[r.uint32() % addrs.length]!;
    const text = formatIpv6(a);
    const op = r.uint32() % 10;
    if (op < 4) {
      m.set(a, step);
      ref.set(text, step);
    } else if (op < 7) {
      assert.equal(m.delete(a), ref.delete(text), `delete ${text} at ${step}`);
    } else {
      pkt.set(a, 24);
      assert.equal(m.get(pkt, 24), ref.get(text), `get ${text} at ${step}`);
      assert.equal(m.has(pkt, 24), ref.has(text));
      assert.equal(m.keyText(pkt, 24), ref.has(text) ? text : undefined);
    }
    assert.equal(m.size, ref.size);
    if (step % 1000 === 999) {
      const got = [...m.entries()].map(([k, t, v]) => {
        assert.equal(formatIpv6(k), t);
        return [t, v] as const;
      });
      assert.deepEqual(new Map(got), ref);
    }
  }
  // Every address still findable after the churn, and gone once deleted.
  for (const a of addrs) assert.equal(m.get(a), ref.get(formatIpv6(a)));
  for (const a of addrs) m.delete(a);
  assert.equal(m.size, 0);
  for (const a of addrs) assert.equal(m.get(a), undefined);
});

Deno.test("Ipv6AddressMap copies its keys and clears", () => {
  const m = new Ipv6AddressMap<string>();
  const a = parseIpv6("fd00::1");
  m.set(a, "x");
  a[15] = 2;
  assert.equal(m.get(parseIpv6("fd00::1")), "x");
  assert.equal(m.get(a), undefined);
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.get(parseIpv6("fd00::1")), undefined);
});

Deno.test("Ipv6KeyInterner returns one string per address and starts over when full", () => {
  const k = new Ipv6KeyInterner(8);
  const pkt = new Uint8Array(40);
  pkt.set(parseIpv6("2001:db8::a"), 8);
  const first = k.key(pkt, 8);
  assert.equal(first, "2001:db8::a");
  assert.equal(k.peek(parseIpv6("2001:db8::b")), "2001:db8::b");
  for (let i = 0; i < 7; i++) k.key(parseIpv6(`2001:db8::${i + 1}`));
  // Eight interned: the ninth starts the table over, and the first is made anew.
  k.key(parseIpv6("2001:db8::99"));
  assert.equal(k.key(pkt, 8), "2001:db8::a");
});
