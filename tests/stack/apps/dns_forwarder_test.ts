/**
 * The DNS forwarder on memory links with the manual clock:
 *
 *   client 192.0.2.10 ── lan0 192.0.2.1  gw  wan0 198.51.100.1 ── resolver 198.51.100.53 (and .54)
 *
 * The resolver is a scripted UDP server on port 53 answering from a small
 * zone (and, when told, lying or keeping silent); the client sends queries
 * built with the wire writer and reads the answers with the wire reader.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { controlAnswer } from "../../../cmd/control.ts";
import { formatDns } from "../../../cmd/_show_text.ts";
import { buildStack } from "../../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import {
  DnsForwarder,
  type DnsForwarderSettings,
  ManualClock,
  type Stack,
} from "../../../stack/mod.ts";
import {
  type DnsMessage,
  DnsRcode,
  DnsType,
  DnsWriter,
  parseDns,
  parseIpAddress,
  parseIpv4,
} from "../../../stack/wire/mod.ts";
import type { UdpDatagram } from "../../../stack/transport/udp.ts";

const A = (s: string) => parseIpv4(s);

function lab(settings: Partial<DnsForwarderSettings> = {}) {
  const clock = new ManualClock(1_000_000);
  const [cl, gl] = MemoryLink.pair({ clock, names: ["client:eth0", "gw:lan0"] });
  const [gw, rw] = MemoryLink.pair({ clock, names: ["gw:wan0", "resolver:eth0"] });
  const node = (text: string, links: MemoryEndpoint[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! }).stack;
  };
  const client = node(
    `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.10/24"]\n[[route]]\nto = "0.0.0.0/0"\nvia = "192.0.2.1"\n`,
    [cl],
  );
  const g = node(
    `[router]\nforwarding = { ipv4 = true, ipv6 = false }\n[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n` +
      `[[interface]]\nname = "wan0"\naddresses = ["198.51.100.1/24"]\n`,
    [gl, gw],
  );
  const resolver = node(
    `[[interface]]\nname = "eth0"\naddresses = ["198.51.100.53/24", "198.51.100.54/24"]\n[[route]]\nto = "0.0.0.0/0"\nvia = "198.51.100.1"\n`,
    [rw],
  );
  clock.advance(3_000);
  const lan = [...g.nics.values()].find((n) => n.name === "lan0")!;
  const fwd = new DnsForwarder(g, [lan], {
    servers: [parseIpAddress("198.51.100.53"), parseIpAddress("198.51.100.54")],
    ...settings,
  });
  /** What the resolver saw: server address, question name, source port. */
  const seen: { server: string; name: string; port: number; id: number }[] = [];
  /** How the resolver behaves per server address: answer, or stay silent. */
  const silent = new Set<string>();
  let lastQuery: UdpDatagram | null = null;
  const zone = (name: string, type: number, w: DnsWriter, id: number, rd: number) => {
    const lc = name.toLowerCase();
    if (lc === "www.example.com" && type === DnsType.A) {
      w.header({ id, flags: 0x8180 | rd, qd: 1, an: 2 }).question(name, type);
      w.nameRecord(name, DnsType.CNAME, 300, "web.example.com");
      w.record("web.example.com", DnsType.A, 60, new Uint8Array([203, 0, 113, 7]));
    } else if (lc.endsWith(".example.com")) {
      // NXDOMAIN with the zone's SOA: TTL 3600, MINIMUM 120 (RFC 2308 §5).
      const rdata = new Uint8Array(22 + 4);
      // mname "." rname "." then five 32-bit fields: serial, refresh, retry, expire, minimum.
      rdata[0] = 0;
      rdata[1] = 0;
      const v = new DataView(rdata.buffer);
      v.setUint32(2, 1);
      v.setUint32(6, 7200);
      v.setUint32(10, 900);
      v.setUint32(14, 1209600);
      v.setUint32(18, 120);
      w.header({ id, flags: 0x8180 | rd | DnsRcode.NXDOMAIN, qd: 1, ns: 1 }).question(name, type);
      w.record("example.com", DnsType.SOA, 3600, rdata.subarray(0, 22));
    } else {
      w.header({ id, flags: 0x8180 | rd | DnsRcode.REFUSED, qd: 1 }).question(name, type);
    }
  };
  const rep = resolver.udp.bindSocket({
    family: 4,
    port: 53,
    onDatagram: (d) => {
      lastQuery = d;
      const q = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof q === "string") return;
      const server = `198.51.100.${d.dst & 255}`;
      seen.push({ server, name: q.questions[0]!.name, port: d.srcPort, id: q.id });
      if (silent.has(server)) return;
      const w = new DnsWriter(new Uint8Array(512));
      zone(q.questions[0]!.name, q.questions[0]!.type, w, q.id, q.flags & 0x0100);
      rep.send(d.src, d.srcPort, w.bytes(), { src: d.dst });
    },
  });
  const answers: DnsMessage[] = [];
  const cep = client.udp.bindSocket({
    family: 4,
    port: 5353,
    onDatagram: (d) => {
      const m = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof m !== "string") answers.push(m);
    },
  });
  /** Ask `name` (as written), return the answers that came within `ms`. */
  const ask = (name: string, type: number = DnsType.A, id = 0x4242, ms = 50): DnsMessage[] => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id, flags: 0x0100, qd: 1 }).question(name, type);
    cep.send(A("192.0.2.1"), 53, w.bytes());
    const n = answers.length;
    clock.advance(ms);
    return answers.slice(n);
  };
  const raw = (bytes: Uint8Array) => {
    cep.send(A("192.0.2.1"), 53, bytes);
    const n = answers.length;
    clock.advance(50);
    return answers.slice(n);
  };
  const close = () => {
    fwd.close();
    for (const s of [client, g, resolver]) (s as Stack).close();
  };
  return {
    clock,
    g,
    resolver,
    fwd,
    seen,
    silent,
    ask,
    raw,
    rep,
    last: () => lastQuery,
    close,
  };
}

Deno.test("DNS forwarder: forwards, passes the answer through with the client's ID and case, then answers from the cache with aged TTLs", () => {
  const l = lab();
  const [a] = l.ask("WwW.Example.COM", DnsType.A, 0x1234);
  assert.ok(a);
  assert.equal(a.id, 0x1234);
  assert.equal(a.rcode, DnsRcode.NOERROR);
  assert.equal(a.questions[0]!.name, "WwW.Example.COM");
  assert.deepEqual(a.answers.map((r) => [r.type, r.ttl]), [[DnsType.CNAME, 300], [DnsType.A, 60]]);
  assert.equal(l.seen.length, 1);
  // RFC 5452: not the client's ID, a port from the ephemeral range.
  assert.notEqual(l.seen[0]!.id, 0x1234);
  assert.ok(l.seen[0]!.port >= 32768 && l.seen[0]!.port <= 60999);
  l.clock.advance(10_000);
  const [b] = l.ask("www.example.com", DnsType.A, 0x5678);
  assert.equal(l.seen.length, 1, "answered from the cache");
  assert.equal(b!.id, 0x5678);
  assert.equal(b!.questions[0]!.name, "www.example.com");
  assert.deepEqual(b!.answers.map((r) => r.ttl), [290, 50]);
  assert.equal(l.fwd.stats.cacheHits, 1);
  // Past the smallest TTL (60 s): asked again.
  l.clock.advance(60_000);
  l.ask("www.example.com");
  assert.equal(l.seen.length, 2);
  l.close();
});

Deno.test("DNS forwarder: NXDOMAIN is cached for the SOA minimum (RFC 2308 §5)", () => {
  const l = lab();
  const [a] = l.ask("nope.example.com");
  assert.equal(a!.rcode, DnsRcode.NXDOMAIN);
  l.clock.advance(100_000);
  assert.equal(l.ask("nope.example.com")[0]!.rcode, DnsRcode.NXDOMAIN);
  assert.equal(l.seen.length, 1);
  l.clock.advance(30_000); // 130 s > MINIMUM 120
  l.ask("nope.example.com");
  assert.equal(l.seen.length, 2);
  l.close();
});

Deno.test("DNS forwarder: answers with a wrong ID, port, source or question are dropped and counted; the cache is not poisoned", () => {
  const l = lab();
  l.silent.add("198.51.100.53");
  // Send the query; the resolver stays silent; an attacker answers instead.
  l.ask("www.example.com", DnsType.A, 9, 1);
  const q = l.seen.at(-1)!;
  const forge = (o: { id?: number; name?: string; fromPort?: number; from?: string }) => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id: o.id ?? q.id, flags: 0x8180, qd: 1, an: 1 }).question(
      o.name ?? "www.example.com",
      DnsType.A,
    );
    w.record(o.name ?? "www.example.com", DnsType.A, 86400, new Uint8Array([6, 6, 6, 6]));
    // From port 53: the resolver's own socket; from another port: a socket of its own.
    const ep = o.fromPort === 53
      ? l.rep
      : l.resolver.udp.bindSocket({ family: 4, port: o.fromPort ?? 0, onDatagram: () => {} });
    ep.send(A("198.51.100.1"), q.port, w.bytes(), { src: A(o.from ?? "198.51.100.53") });
    if (ep !== l.rep) ep.close();
  };
  const unknown = l.g.stats.udp.unknownPortReceived;
  forge({ id: (q.id + 1) & 0xffff, fromPort: 53 });
  forge({ fromPort: 53, name: "evil.example.com" });
  l.clock.advance(1);
  assert.equal(l.fwd.stats.spoofDropped, 2);
  // From another port or another server: the query's socket is connected to .53:53, so the
  // UDP layer does not deliver them (and counts them, answering Port Unreachable).
  forge({ fromPort: 5300 });
  forge({ fromPort: 53, from: "198.51.100.54" });
  l.clock.advance(1);
  assert.equal(l.fwd.stats.spoofDropped, 2);
  assert.equal(l.g.stats.udp.unknownPortReceived - unknown, 2);
  // The real server answers after its silence: .53 timed out, .54 asked.
  l.clock.advance(2_100);
  assert.equal(l.seen.at(-1)!.server, "198.51.100.54");
  const [later] = l.ask("www.example.com");
  assert.equal(l.fwd.stats.cacheHits, 1);
  assert.equal(later!.answers.at(-1)!.ttl, 60, "the cached answer is the real one");
  l.close();
});

Deno.test("DNS forwarder: an upstream that times out is skipped, then marked down; none answering gives SERVFAIL", () => {
  const l = lab({ deadAfter: 2 });
  l.silent.add("198.51.100.53");
  const [a] = l.ask("www.example.com", DnsType.A, 1, 2_100);
  assert.equal(a!.rcode, DnsRcode.NOERROR);
  assert.deepEqual(l.seen.map((s) => s.server), ["198.51.100.53", "198.51.100.54"]);
  l.ask("x1.example.com", DnsType.A, 2, 2_100);
  // Two timeouts in a row: .53 is down; the next query goes straight to .54.
  const before = l.seen.length;
  l.ask("x2.example.com", DnsType.A, 3, 50);
  assert.deepEqual(l.seen.slice(before).map((s) => s.server), ["198.51.100.54"]);
  assert.deepEqual(l.fwd.upstreams().map((u) => u.up), [false, true]);
  l.silent.add("198.51.100.54");
  const [f] = l.ask("x3.example.com", DnsType.A, 4, 4_500);
  assert.equal(f!.rcode, DnsRcode.SERVFAIL);
  assert.equal(f!.id, 4);
  assert.equal(l.fwd.stats.servfailSent, 1);
  l.close();
});

Deno.test("DNS forwarder: hosts (A, AAAA, PTR) and local domains are answered without forwarding", () => {
  const l = lab({
    hosts: [{
      name: "nas.lan",
      addresses: [parseIpAddress("192.0.2.20"), parseIpAddress("2001:db8::20")],
    }],
    local: ["lan"],
    localTtl: 0,
  });
  const [a] = l.ask("NAS.lan", DnsType.A);
  assert.equal(a!.rcode, DnsRcode.NOERROR);
  assert.equal(a!.questions[0]!.name, "NAS.lan");
  assert.equal(a!.answers.length, 1);
  const [aaaa] = l.ask("nas.lan", DnsType.AAAA);
  assert.equal(aaaa!.answers[0]!.type, DnsType.AAAA);
  const [ptr] = l.ask("20.2.0.192.in-addr.arpa", DnsType.PTR);
  assert.equal(ptr!.answers[0]!.type, DnsType.PTR);
  const [nx] = l.ask("printer.lan", DnsType.A);
  assert.equal(nx!.rcode, DnsRcode.NXDOMAIN);
  assert.equal(l.seen.length, 0, "nothing forwarded");
  assert.equal(l.fwd.stats.localAnswers, 4);
  l.close();
});

Deno.test("DNS forwarder: malformed queries are dropped; other opcodes get NOTIMP; two questions FORMERR", () => {
  const l = lab();
  assert.deepEqual(l.raw(new Uint8Array([1, 2, 3])), []);
  assert.equal(l.fwd.stats.malformedDropped, 1);
  const w = new DnsWriter(new Uint8Array(512));
  w.header({ id: 5, flags: 0x2800, qd: 1 }).question("www.example.com", DnsType.A); // UPDATE
  assert.equal(l.raw(w.bytes().slice())[0]?.rcode, DnsRcode.NOTIMP);
  w.header({ id: 6, flags: 0x0100, qd: 2 }).question("a.example.com", DnsType.A).question(
    "b.example.com",
    DnsType.A,
  );
  assert.equal(l.raw(w.bytes().slice())[0]?.rcode, DnsRcode.FORMERR);
  w.header({ id: 7, flags: 0x8180, qd: 1 }).question("www.example.com", DnsType.A); // an answer
  assert.deepEqual(l.raw(w.bytes().slice()), []);
  assert.equal(l.fwd.stats.notQueryDropped, 1);
  assert.equal(l.seen.length, 0);
  l.close();
});

Deno.test("DNS forwarder: the cache is bounded, least recently used out first; the per-client rate limit refuses the excess", () => {
  const l = lab({ cacheSize: 2, rateLimit: 5, rateBurst: 5 });
  l.ask("www.example.com");
  l.ask("n1.example.com");
  l.ask("www.example.com"); // a hit: www is now the most recent
  l.ask("n2.example.com"); // evicts n1
  assert.equal(l.fwd.cacheEntries, 2);
  assert.equal(l.fwd.stats.cacheEvictions, 1);
  l.clock.advance(2_000);
  const before = l.seen.length;
  l.ask("www.example.com");
  assert.equal(l.seen.length, before, "www stayed");
  l.ask("n1.example.com");
  assert.equal(l.seen.length, before + 1, "n1 went");
  // Rate limit: a burst of 5, then refused.
  l.clock.advance(2_000);
  for (let i = 0; i < 10; i++) l.ask("www.example.com", DnsType.A, 100 + i, 0);
  l.clock.advance(10);
  assert.equal(l.fwd.stats.rateLimitedDropped, 5);
  l.close();
});

Deno.test("[dns]: the forwarder starts on its interfaces; served interfaces' DHCP and RA name tapir as the DNS server", () => {
  const text =
    `[router]\nhostname = "gw"\n[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24", "2001:db8:1::1/64"]\n` +
    `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\n[interface.ra]\nenabled = true\nprefixes = [{ prefix = "2001:db8:1::/64" }]\n` +
    `[[interface]]\nname = "lan1"\naddresses = ["198.51.100.1/24"]\n[interface.dhcp]\npools = ["198.51.100.100-198.51.100.150"]\ndns_servers = ["198.51.100.53"]\n` +
    `[dns]\ninterfaces = ["lan0", "lan1"]\nhosts = { "nas.lan" = "192.0.2.20" }\n`;
  const c = parseConfig(text);
  const [lan0, lan1] = c.interfaces;
  assert.deepEqual(lan0!.dhcp.settings.dnsServers, [parseIpv4("192.0.2.1")]);
  assert.equal(lan0!.ra.rdnss.length, 1);
  assert.deepEqual([...lan0!.ra.rdnss[0]!.addresses[0]!], [
    ...parseIpAddress("2001:db8:1::1").address as Uint8Array,
  ]);
  // Configured DNS servers stay.
  assert.deepEqual(lan1!.dhcp.settings.dnsServers, [parseIpv4("198.51.100.53")]);
  const clock = new ManualClock();
  const built = buildStack(c, { clock, openLink: () => MemoryLink.pair({ clock })[0] });
  const f = built.stack.services.get("dns");
  assert.ok(f instanceof DnsForwarder);
  assert.deepEqual(f.nics.map((n) => n?.name), ["lan0", "lan1"]);
  // No servers given: the upstreams come from the WAN leases (none yet).
  assert.notEqual(f.upstreamSource, null);
  assert.deepEqual(f.upstreams(), []);
  built.stack.close();
});

Deno.test("[dns]: errors at their key paths", () => {
  const bad = (dns: string) => {
    try {
      parseConfig(`[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24"]\n[dns]\n${dns}`);
    } catch (e) {
      return (e as { errors: { path: string; message: string }[] }).errors.map((x) =>
        `${x.path}: ${x.message}`
      );
    }
    return [];
  };
  assert.match(bad(`servers = ["192.0.2.53"]\n`)[0]!, /^dns\.interfaces: "interfaces" is required/);
  assert.match(
    bad(`interfaces = ["lan1"]\n`)[0]!,
    /^dns\.interfaces\[0\]: no interface "lan1" \(did you mean "lan0"\?\)/,
  );
  assert.match(
    bad(`interfaces = ["lan0"]\nservers = ["192.0.2.300"]\n`)[0]!,
    /^dns\.servers\[0\]: /,
  );
  assert.match(
    bad(`interfaces = ["lan0"]\nhosts = { "nas.lan" = 7 }\n`)[0]!,
    /^dns\.hosts\.nas\.lan: expected an address/,
  );
  assert.match(bad(`interfaces = ["lan0"]\ncache_size = -1\n`)[0]!, /^dns\.cache_size: /);
  assert.deepEqual(bad(`interfaces = ["lan0"]\n`), []);
});

Deno.test("DNS forwarder: a name with hosts below it is NOERROR/NODATA, not NXDOMAIN; its own answers carry OPT when the query did", () => {
  const l = lab({
    hosts: [{ name: "nas.home.lan", addresses: [parseIpAddress("192.0.2.21")] }],
    local: ["lan"],
  });
  const [apex] = l.ask("lan", DnsType.SOA);
  assert.equal(apex!.rcode, DnsRcode.NOERROR);
  const [mid] = l.ask("home.lan", DnsType.A);
  assert.equal(mid!.rcode, DnsRcode.NOERROR);
  assert.equal(mid!.answers.length, 0);
  assert.equal(l.ask("other.home.lan")[0]!.rcode, DnsRcode.NXDOMAIN);
  // With EDNS (and DO): the OPT comes back with the DO bit; the same for an error.
  const withOpt = (name: string, flags = 0x0100) => {
    const w = new DnsWriter(new Uint8Array(512));
    w.header({ id: 77, flags, qd: 1, ar: 1 }).question(name, DnsType.A).opt(4096, true);
    return l.raw(w.bytes().slice())[0]!;
  };
  const a = withOpt("nas.home.lan");
  assert.equal(a.answers.length, 1);
  assert.deepEqual([a.edns?.udpSize, a.edns?.dnssecOk], [1232, true]);
  const e = withOpt("x.example.com", 0x2900); // opcode UPDATE: NOTIMP
  assert.equal(e.rcode, DnsRcode.NOTIMP);
  assert.deepEqual([e.edns?.udpSize, e.edns?.dnssecOk], [1232, true]);
  l.close();
});

Deno.test("show dns: the cache, the hit ratio and the upstreams, as JSON and as text", () => {
  const l = lab();
  l.g.services.set("dns", l.fwd);
  l.ask("www.example.com");
  l.ask("www.example.com");
  const a = controlAnswer(l.g, "dns") as {
    cache: { entries: number; size: number };
    queries: number;
    cache_hits: number;
    hit_ratio: number;
    upstreams: { address: string; up: boolean; rttMs: number | null }[];
  };
  assert.deepEqual([a.cache.entries, a.cache.size, a.queries, a.cache_hits, a.hit_ratio], [
    1,
    150,
    2,
    1,
    0.5,
  ]);
  assert.deepEqual(a.upstreams.map((u) => [u.address, u.up]), [
    ["198.51.100.53", true],
    ["198.51.100.54", true],
  ]);
  assert.ok(a.upstreams[0]!.rttMs !== null && a.upstreams[0]!.rttMs >= 0);
  const text = formatDns(a);
  assert.match(text, /^cache 1\/150 entries, 2 queries, 1 from the cache \(50\.0 %\)/);
  assert.match(text, /^upstream 198\.51\.100\.53 up rtt \d+(\.\d)? ms timeouts 0$/m);
  assert.equal(formatDns(null), "no DNS forwarder ([dns] is off)\n");
  l.g.services.delete("dns");
  l.close();
});
