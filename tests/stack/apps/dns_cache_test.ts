/**
 * The DNS forwarder's cache: the path that answers a UDP hit in place (no
 * parse into objects, no string key) against the general path, byte for
 * byte, over IPv4 and IPv6; questions that become local after they were
 * cached; and the cache's own order and hash chains. On memory links with
 * the manual clock:
 *
 *   client 192.0.2.10, 2001:db8:1::10 ── lan0 192.0.2.1, 2001:db8:1::1  gw  wan0 ── resolver 198.51.100.53
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { buildStack } from "../../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import {
  DnsForwarder,
  type DnsForwarderSettings,
  ManualClock,
  SeededRandom,
} from "../../../stack/mod.ts";
import {
  DnsRcode,
  DnsType,
  DnsWriter,
  parseDns,
  parseIpAddress,
  parseIpv4,
  parseIpv6,
} from "../../../stack/wire/mod.ts";
import { AnswerCache, type AnswerKey, answerKey } from "../../../stack/apps/dns/_cache.ts";

/** What the client got: the answer's bytes, from which address family, address and port. */
interface Got {
  bytes: Uint8Array;
  family: 4 | 6;
  from: string;
  port: number;
}

function lab(settings: Partial<DnsForwarderSettings> = {}) {
  const clock = new ManualClock(1_000_000);
  const [cl, gl] = MemoryLink.pair({ clock, names: ["client:eth0", "gw:lan0"] });
  const [gw, rw] = MemoryLink.pair({ clock, names: ["gw:wan0", "resolver:eth0"] });
  const node = (text: string, links: MemoryEndpoint[], seed: number) => {
    let i = 0;
    return buildStack(parseConfig(text), {
      clock,
      random: new SeededRandom(seed),
      openLink: () => links[i++]!,
    }).stack;
  };
  const client = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.10/24", "2001:db8:1::10/64"]\n`,
    [cl],
    1,
  );
  const g = node(
    `[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24", "2001:db8:1::1/64"]\n` +
      `[[interface]]\nname = "wan0"\naddresses = ["198.51.100.1/24"]\n`,
    [gl, gw],
    2,
  );
  const resolver = node(
    `[[interface]]\nname = "eth0"\naddresses = ["198.51.100.53/24"]\n`,
    [rw],
    3,
  );
  clock.advance(5_000);
  const lan = [...g.nics.values()].find((n) => n.name === "lan0")!;
  const fwd = new DnsForwarder(g, [lan], {
    servers: [parseIpAddress("198.51.100.53")],
    ...settings,
  });
  let asked = 0;
  const rep = resolver.udp.bindSocket({
    family: 4,
    port: 53,
    onDatagram: (d) => {
      const q = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof q === "string") return;
      asked++;
      const { name, type } = q.questions[0]!;
      const lc = name.toLowerCase();
      const w = new DnsWriter(new Uint8Array(2048));
      const rd = q.flags & 0x0100;
      // An OPT record back when the query had one (RFC 6891 §6.1.1), with the DO bit.
      const ar = q.edns !== null ? 1 : 0;
      if (lc === "www.example.com" && type === DnsType.A) {
        w.header({ id: q.id, flags: 0x8180 | rd, qd: 1, an: 2, ar }).question(name, type);
        w.nameRecord(name, DnsType.CNAME, 300, "web.example.com");
        w.record("web.example.com", DnsType.A, 60, new Uint8Array([203, 0, 113, 7]));
      } else if (lc === "www.example.com" && type === DnsType.AAAA) {
        w.header({ id: q.id, flags: 0x8180 | rd, qd: 1, an: 1, ar }).question(name, type);
        w.record(name, DnsType.AAAA, 120, parseIpv6("2001:db8:77::7"));
      } else if (lc === "big.example.com") {
        // 40 A records: 700 bytes, more than a client without EDNS takes (RFC 1035 §4.2.1).
        w.header({ id: q.id, flags: 0x8180 | rd, qd: 1, an: 40, ar }).question(name, type);
        for (let i = 0; i < 40; i++) {
          w.record(name, DnsType.A, 600, new Uint8Array([198, 51, 100, 100 + i]));
        }
      } else {
        w.header({ id: q.id, flags: 0x8180 | rd | DnsRcode.NXDOMAIN, qd: 1, ar }).question(
          name,
          type,
        );
      }
      if (q.edns !== null) w.opt(4096, q.edns.dnssecOk);
      rep.send(d.src, d.srcPort, w.bytes(), { src: d.dst });
    },
  });
  const got: Got[] = [];
  const cep = client.udp.bindSocket({
    family: 0,
    port: 5353,
    onDatagram: (d) => {
      const bytes = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
      const from = d.family === 4
        ? `${d.src >>> 24}.${(d.src >>> 16) & 255}.${(d.src >>> 8) & 255}.${d.src & 255}`
        : [...d.buffer.data.subarray(d.src6Offset, d.src6Offset + 16)].map((b) =>
          b.toString(16).padStart(2, "0")
        ).join("");
      got.push({ bytes, family: d.family, from, port: d.srcPort });
    },
  });
  /** Ask `name` over `family` (with an OPT record of `edns` bytes, or none), return what came. */
  const ask = (
    family: 4 | 6,
    name: string,
    type: number = DnsType.A,
    o: { id?: number; edns?: number; dnssecOk?: boolean } = {},
  ): Got[] => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id: o.id ?? 0x4242, flags: 0x0100, qd: 1, ar: o.edns !== undefined ? 1 : 0 })
      .question(name, type);
    if (o.edns !== undefined) w.opt(o.edns, o.dnssecOk ?? false);
    cep.send(family === 4 ? parseIpv4("192.0.2.1") : parseIpv6("2001:db8:1::1"), 53, w.bytes());
    const n = got.length;
    clock.advance(50);
    return got.slice(n);
  };
  const close = () => {
    fwd.close();
    for (const s of [client, g, resolver]) s.close();
  };
  return { clock, fwd, ask, asked: () => asked, close };
}

const hexOf = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("DNS cache: a hit answered in place is byte for byte what the general path answers, over IPv4 and IPv6", () => {
  // A rate limit no client reaches sends every query the general way.
  const fast = lab();
  const general = lab({ rateLimit: 1_000_000, rateBurst: 1_000_000 });
  const cases: [string, number, { id?: number; edns?: number; dnssecOk?: boolean }][] = [
    ["www.example.com", DnsType.A, {}],
    ["WWW.Example.Com", DnsType.A, { id: 7 }],
    ["www.example.com", DnsType.A, { edns: 1232 }],
    ["www.EXAMPLE.com", DnsType.A, { edns: 100, dnssecOk: true }],
    ["www.example.com", DnsType.AAAA, { edns: 4096, dnssecOk: true }],
    ["big.example.com", DnsType.A, {}],
    ["Big.Example.Com", DnsType.A, { edns: 1232 }],
    ["big.example.com", DnsType.A, { edns: 600 }],
  ];
  for (const l of [fast, general]) {
    // Fill: each question once (the DO bit keys apart; the EDNS size does not).
    for (const [name, type, o] of cases) l.ask(4, name, type, o);
  }
  assert.equal(fast.asked(), general.asked());
  const asked = fast.asked();
  const hits0 = fast.fwd.stats.cacheHits;
  for (const family of [4, 6] as const) {
    for (const [k, [name, type, o]] of cases.entries()) {
      // Once at once, once after the clock moved 1.5 s (the TTLs aged by a second).
      for (const age of [0, 1_500]) {
        const a = fast.ask(family, name, type, { ...o, id: 0x1000 + k });
        const b = general.ask(family, name, type, { ...o, id: 0x1000 + k });
        assert.equal(a.length, 1, `${name} over IPv${family}: one answer`);
        assert.deepEqual(
          { ...a[0]!, bytes: hexOf(a[0]!.bytes) },
          { ...b[0]!, bytes: hexOf(b[0]!.bytes) },
          `${name} ${JSON.stringify(o)} over IPv${family} after ${age} ms`,
        );
        // From the address asked, port 53.
        assert.equal(a[0]!.from, family === 4 ? "192.0.2.1" : "20010db8000100000000000000000001");
        assert.equal(a[0]!.port, 53);
        fast.clock.advance(age);
        general.clock.advance(age);
      }
    }
  }
  assert.equal(fast.asked(), asked, "no question was asked upstream again");
  assert.equal(general.asked(), asked);
  // Every one a hit, counted as on the general path.
  assert.equal(fast.fwd.stats.cacheHits - hits0, 2 * 2 * cases.length);
  assert.deepEqual(fast.fwd.stats, general.fwd.stats);
  // The IPv4 answer to a client without EDNS: cut to 512 with TC (RFC 2181 §9).
  const cut = parseDns(fast.ask(4, "big.example.com")[0]!.bytes);
  assert.ok(typeof cut !== "string" && (cut.flags & 0x0200) !== 0 && cut.answers.length === 0);
  const whole = parseDns(fast.ask(6, "big.example.com", DnsType.A, { edns: 1232 })[0]!.bytes);
  assert.ok(typeof whole !== "string" && whole.answers.length === 40 && whole.edns !== null);
  fast.close();
  general.close();
});

Deno.test("DNS cache: a cached question whose name becomes local (hosts on reload, a DHCP lease name) is answered locally", () => {
  const l = lab();
  const first = parseDns(l.ask(4, "www.example.com")[0]!.bytes);
  assert.ok(typeof first !== "string" && first.answers.length === 2);
  assert.equal(l.ask(6, "www.example.com").length, 1);
  assert.equal(l.fwd.stats.cacheHits, 1);
  // A reload names it in hosts: local, not the cached answer.
  const settings = l.fwd.settings;
  l.fwd.configure({
    ...settings,
    hosts: [{ name: "www.example.com", addresses: [parseIpAddress("192.0.2.80")] }],
  });
  for (const family of [4, 6] as const) {
    const m = parseDns(l.ask(family, "WWW.example.com")[0]!.bytes);
    assert.ok(typeof m !== "string");
    assert.ok((m.flags & 0x0400) !== 0, "authoritative: answered locally");
    assert.deepEqual(m.answers.map((r) => [r.type, r.rdataLength]), [[DnsType.A, 4]]);
  }
  assert.equal(l.fwd.stats.localAnswers, 2);
  // Back without it: the cache answers again.
  l.fwd.configure(settings);
  assert.equal(parseDns(l.ask(4, "www.example.com")[0]!.bytes).toString() !== "", true);
  assert.equal(l.fwd.stats.cacheHits, 2);
  // A DHCP client named www in example.com: the lease name wins while the lease is there.
  let leases = [{ name: "www", address: parseIpAddress("192.0.2.81"), domain: "example.com" }];
  l.fwd.leaseNames = () => leases;
  const m = parseDns(l.ask(4, "www.example.com")[0]!.bytes);
  assert.ok(typeof m !== "string" && (m.flags & 0x0400) !== 0 && m.answers.length === 1);
  assert.equal(l.fwd.stats.localAnswers, 3);
  leases = [];
  const back = parseDns(l.ask(6, "www.example.com")[0]!.bytes);
  assert.ok(typeof back !== "string" && back.answers.length === 2);
  assert.equal(l.fwd.stats.cacheHits, 3);
  assert.equal(l.asked(), 1, "the upstream was asked once");
  l.close();
});

Deno.test("DNS cache: the rate limit holds for hits too", () => {
  const l = lab({ rateLimit: 1, rateBurst: 2 });
  l.ask(4, "www.example.com");
  l.ask(4, "www.example.com");
  assert.equal(l.ask(4, "www.example.com").length, 0);
  assert.equal(l.fwd.stats.rateLimitedDropped, 1);
  assert.equal(l.fwd.stats.cacheHits, 1);
  l.close();
});

/** A key whose hash is `hash` (to make chains). */
function keyWithHash(text: string, hash: number): AnswerKey {
  return { ...answerKey(new TextEncoder().encode(text), text.length, 1, 1, false), hash };
}

function answer(tag: number) {
  return {
    bytes: new Uint8Array([tag]),
    stored: 0,
    expires: 1,
    ttlOffsets: [],
    ttls: [],
    questionOffset: 12,
    opt: null,
    localGen: 0,
  };
}

/** The tags of the cache's entries, least recently used first (taking them out). */
function drain(c: AnswerCache): number[] {
  const out: number[] = [];
  for (let e = c.oldest(); e !== null; e = c.oldest()) {
    out.push(e.bytes[0]!);
    c.delete(e);
  }
  return out;
}

Deno.test("AnswerCache: the order of a Map (insertion, a hit to the end, storing again in place)", () => {
  const c = new AnswerCache();
  const keys = ["a", "b", "c", "d"].map((t) =>
    answerKey(new TextEncoder().encode(t), 1, 1, 1, false)
  );
  keys.forEach((k, i) => c.set(k, answer(i)));
  assert.equal(c.size, 4);
  c.touch(c.get(keys[1]!)!);
  c.set(keys[2]!, answer(9)); // in place: c keeps its turn
  assert.deepEqual(drain(c), [0, 9, 3, 1]);
  assert.equal(c.size, 0);
  // The DO bit, type and class are part of the key.
  const n = new TextEncoder().encode("x");
  c.set(answerKey(n, 1, 1, 1, false), answer(1));
  c.set(answerKey(n, 1, 1, 1, true), answer(2));
  c.set(answerKey(n, 1, 28, 1, false), answer(3));
  c.set(answerKey(n, 1, 1, 3, false), answer(4));
  assert.equal(c.size, 4);
  assert.equal(c.get(answerKey(n, 1, 1, 1, true))!.bytes[0], 2);
  assert.equal(c.get(answerKey(n, 1, 28, 1, false))!.bytes[0], 3);
  assert.equal(c.get(answerKey(new TextEncoder().encode("y"), 1, 1, 1, false)), null);
});

Deno.test("AnswerCache: entries with the same hash are told apart by their bytes, and each can go", () => {
  const c = new AnswerCache();
  const ks = ["aa", "bb", "cc"].map((t) => keyWithHash(t, 42));
  ks.forEach((k, i) => c.set(k, answer(i)));
  assert.deepEqual(ks.map((k) => c.get(k)!.bytes[0]), [0, 1, 2]);
  // Out of the middle of the chain, then its head, then the last.
  c.delete(c.get(ks[1]!)!);
  assert.equal(c.get(ks[1]!), null);
  assert.deepEqual([c.get(ks[0]!)!.bytes[0], c.get(ks[2]!)!.bytes[0]], [0, 2]);
  c.delete(c.get(ks[2]!)!);
  c.delete(c.get(ks[0]!)!);
  assert.equal(c.size, 0);
  assert.equal(c.oldest(), null);
  // Same bytes, another length: not the same key.
  c.set(keyWithHash("ab", 7), answer(5));
  const longer = keyWithHash("abc", 7);
  assert.equal(c.find(longer.name, 3, 1, 1, false, 7), null);
  assert.equal(c.find(longer.name, 2, 1, 1, false, 7)!.bytes[0], 5);
});
