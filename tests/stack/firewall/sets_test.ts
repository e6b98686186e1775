/**
 * Named sets (`[firewall.sets.NAME]`, `-m set --match-set`): each type and
 * direction flag, both families, `!`, timeouts, live changes that the next
 * packet sees, a large set, reloads that keep (or rebuild) a set, and the
 * config errors.
 */
import assert from "node:assert/strict";
import { ConfigErrors, parseConfig } from "../../../config/mod.ts";
import { applyConfig } from "../../../config/reload.ts";
import { buildStack } from "../../../config/build.ts";
import { MemoryLink } from "../../../link/mod.ts";
import {
  Firewall,
  formatSetEntry,
  IpSet,
  parseSetEntry,
  SetError,
} from "../../../stack/firewall/mod.ts";
import { ManualClock } from "../../../stack/mod.ts";
import { triangle } from "../../topology/_topology.ts";
import { type Pkt, run } from "./_packets.ts";

/** A forwarded packet lan0 → wan0 unless `p` says otherwise. */
function pkt(p: Partial<Pkt> & { src: string; dst: string }): Pkt {
  return {
    family: p.src.includes(":") ? 6 : 4,
    proto: 17,
    sport: 40000,
    dport: 53,
    flags: 0,
    icmpType: 8,
    icmpCode: 0,
    path: "fwd",
    ...p,
  };
}

function router(toml: string) {
  const t = triangle();
  const fw = new Firewall(t.r, parseConfig(toml).firewall);
  const pass = (p: Pkt) => run(fw, t, p)[0];
  return { t, fw, pass };
}

const BAN = `
[firewall.sets.banned]
type = "hash:ip"
entries = ["192.0.2.66", "2001:db8::66"]
[firewall.filter]
forward = { rules = ["-m set --match-set banned src -j DROP"] }
`;

Deno.test("hash:ip: a member is dropped in both families, an add blocks the next packet, a del lets it through", () => {
  const { fw, pass } = router(BAN);
  const set = fw.sets.get("banned")!;
  assert.equal(pass(pkt({ src: "192.0.2.66", dst: "198.51.100.10" })), false);
  assert.equal(pass(pkt({ src: "2001:db8::66", dst: "2001:db8:1::10" })), false);
  const other = pkt({ src: "192.0.2.10", dst: "198.51.100.10" });
  const other6 = pkt({ src: "2001:db8::10", dst: "2001:db8:1::10" });
  assert.equal(pass(other), true);
  assert.equal(pass(other6), true);
  // The fail2ban use: the packet right after the add is dropped.
  assert.equal(set.add(parseSetEntry(set.type, set.family, "192.0.2.10")), true);
  assert.equal(pass(other), false);
  set.add(set.parse("2001:db8::10"));
  assert.equal(pass(other6), false);
  // Only the source side: the same address as destination passes.
  assert.equal(pass(pkt({ src: "198.51.100.10", dst: "192.0.2.10", path: "rev" })), true);
  assert.equal(set.delete(set.parse("192.0.2.10")), true);
  assert.equal(set.delete(set.parse("192.0.2.10")), false);
  assert.equal(pass(other), true);
  const rule = fw.filter.builtins.get("forward")!.rules[0]!;
  assert.equal(rule.packets, 2);
  assert.equal(fw.filter6.builtins.get("forward")!.rules[0]!.packets, 2);
});

Deno.test("! --match-set: everything but the members", () => {
  const { pass } = router(`
[firewall.sets.allowed]
type = "hash:net"
family = 4
entries = ["192.0.2.0/28"]
[firewall.filter]
forward = { rules = ["-m set ! --match-set allowed src -j DROP"] }
`);
  assert.equal(pass(pkt({ src: "192.0.2.10", dst: "198.51.100.10" })), true);
  assert.equal(pass(pkt({ src: "192.0.2.20", dst: "198.51.100.10" })), false);
  // A set of one family makes the rule that family's: IPv6 is not filtered.
  assert.equal(pass(pkt({ src: "2001:db8::1", dst: "2001:db8:1::1" })), true);
});

Deno.test("hash:net: the longest, then shorter prefixes, both families", () => {
  const { fw, pass } = router(`
[firewall.sets.nets]
type = "hash:net"
entries = ["198.51.100.0/24", "198.51.100.128/25", "203.0.113.7", "2001:db8:1::/48", "2001:db8:1:2::/64"]
[firewall.filter]
forward = { rules = ["-m set --match-set nets dst -j DROP"] }
`);
  for (
    const [dst, ok] of [
      ["198.51.100.10", false],
      ["198.51.100.200", false],
      ["198.51.101.1", true],
      ["203.0.113.7", false],
      ["203.0.113.8", true],
      ["2001:db8:1:2::5", false],
      ["2001:db8:1:ffff::5", false],
      ["2001:db8:2::5", true],
    ] as const
  ) {
    const src = dst.includes(":") ? "2001:db8::1" : "192.0.2.10";
    assert.equal(pass(pkt({ src, dst })), ok, dst);
  }
  // Deleting the /25 leaves the /24 covering its addresses.
  const set = fw.sets.get("nets")!;
  assert.equal(set.delete(set.parse("198.51.100.128/25")), true);
  assert.equal(pass(pkt({ src: "192.0.2.10", dst: "198.51.100.200" })), false);
  set.delete(set.parse("198.51.100.0/24"));
  assert.equal(pass(pkt({ src: "192.0.2.10", dst: "198.51.100.200" })), true);
  assert.deepEqual(set.list().map((e) => e.entry), [
    "203.0.113.7",
    "2001:db8:1::/48",
    "2001:db8:1:2::/64",
  ]);
});

Deno.test("hash:ip,port: address and port from the sides the flags name; TCP and UDP apart", () => {
  const { fw, pass } = router(`
[firewall.sets.svc]
type = "hash:ip,port"
entries = ["198.51.100.10,tcp:80", "198.51.100.10,udp:53", "2001:db8:1::10,443"]
[firewall.sets.clients]
type = "hash:ip,port"
entries = ["192.0.2.10,udp:5000"]
[firewall.filter]
forward = { rules = [
  "-m set --match-set svc dst,dst -j DROP",
  "-m set --match-set clients src,src -j DROP",
] }
`);
  const to = (dst: string, proto: number, dport: number, sport = 40000) =>
    pass(pkt({ src: dst.includes(":") ? "2001:db8::1" : "192.0.2.10", dst, proto, dport, sport }));
  assert.equal(to("198.51.100.10", 6, 80), false);
  assert.equal(to("198.51.100.10", 17, 80), true, "udp:80 is not tcp:80");
  assert.equal(to("198.51.100.10", 17, 53), false);
  assert.equal(to("198.51.100.10", 6, 53), true);
  assert.equal(to("198.51.100.11", 6, 80), true);
  assert.equal(to("2001:db8:1::10", 6, 443), false, "tcp is the default protocol");
  assert.equal(to("2001:db8:1::10", 17, 443), true);
  assert.equal(to("198.51.100.10", 1, 0), true, "ICMP has no port");
  assert.equal(to("198.51.100.99", 17, 9, 5000), false, "the client's own port");
  assert.equal(to("198.51.100.99", 17, 5000, 9), true);
  assert.equal(fw.sets.get("svc")!.list()[0]!.entry, "198.51.100.10,tcp:80");
});

Deno.test("hash:net,iface: src,src takes the input interface, dst,dst the output one", () => {
  const { pass } = router(`
[firewall.sets.spoof]
type = "hash:net,iface"
entries = ["198.51.100.0/24,lan0", "2001:db8:1::/48,lan0"]
[firewall.sets.egress]
type = "hash:net,iface"
entries = ["203.0.113.0/24,wan0"]
[firewall.filter]
forward = { rules = [
  "-m set --match-set spoof src,src -j DROP",
  "-m set --match-set egress dst,dst -j DROP",
] }
`);
  // A WAN source arriving on the LAN: spoofed.
  assert.equal(pass(pkt({ src: "198.51.100.5", dst: "203.0.114.1" })), false);
  assert.equal(pass(pkt({ src: "198.51.100.5", dst: "192.0.2.10", path: "rev" })), true);
  assert.equal(pass(pkt({ src: "2001:db8:1::5", dst: "2001:db8:9::1" })), false);
  assert.equal(pass(pkt({ src: "192.0.2.10", dst: "203.0.113.9" })), false);
  assert.equal(pass(pkt({ src: "198.51.100.1", dst: "203.0.113.9", path: "rev" })), true);
});

Deno.test("timeouts: per entry, the set's default, a repeated add restarts it, 0 keeps it", () => {
  const { t, fw, pass } = router(`
[firewall.sets.tmp]
type = "hash:ip"
family = 4
timeout = "10s"
entries = ["192.0.2.10", { entry = "192.0.2.11", timeout = "2s" }, { entry = "192.0.2.12", timeout = "0" }]
[firewall.filter]
forward = { rules = ["-m set --match-set tmp src -j DROP"] }
`);
  const from = (src: string) => pass(pkt({ src, dst: "198.51.100.10" }));
  const set = fw.sets.get("tmp")!;
  assert.deepEqual(set.list(), [
    { entry: "192.0.2.10", timeout: 10 },
    { entry: "192.0.2.11", timeout: 2 },
    { entry: "192.0.2.12", timeout: null },
  ]);
  assert.equal(from("192.0.2.11"), false);
  t.clock.advance(2000);
  assert.equal(from("192.0.2.11"), true, "expired at its deadline");
  assert.equal(from("192.0.2.10"), false);
  set.add(set.parse("192.0.2.10"), 60_000);
  t.clock.advance(9000);
  assert.equal(from("192.0.2.10"), false, "the new timeout counts");
  set.add(set.parse("192.0.2.13"));
  t.clock.advance(9999);
  assert.equal(from("192.0.2.13"), false);
  t.clock.advance(1);
  assert.equal(from("192.0.2.13"), true, "the set's default timeout");
  t.clock.advance(1_000_000);
  assert.equal(from("192.0.2.12"), false, "no timeout");
  assert.deepEqual(set.list().map((e) => e.entry), ["192.0.2.12"]);
  assert.equal(set.size, 1);
});

Deno.test("a full set refuses an add, after reclaiming what expired", () => {
  const clock = new ManualClock();
  const set = new IpSet(
    { name: "s", type: "hash:ip", family: 4, timeout: 0, maxEntries: 2, entries: [] },
    clock,
  );
  set.add(set.parse("192.0.2.1"), 1000);
  set.add(set.parse("192.0.2.2"));
  assert.throws(() => set.add(set.parse("192.0.2.3")), /set "s" is full \(2 entries/);
  clock.advance(1000);
  assert.equal(set.add(set.parse("192.0.2.3")), true);
  assert.throws(() => set.parse("2001:db8::1"), SetError);
  assert.throws(
    () => set.add(parseSetEntry("hash:ip", 0, "2001:db8::1")),
    /holds IPv4 entries, not IPv6/,
  );
});

Deno.test("a set of 200000 addresses answers each of them and nothing else", () => {
  const clock = new ManualClock();
  const set = new IpSet(
    { name: "big", type: "hash:ip", family: 0, timeout: 0, maxEntries: 1 << 20, entries: [] },
    clock,
  );
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    set.add({ address: { family: 4, address: (0x0a000000 + i * 7) >>> 0, prefixLen: 32 } });
  }
  assert.equal(set.size, n);
  const probe = {
    family: 4 as const,
    pkt: null,
    src: 0,
    dst: 0,
    srcOff: 0,
    dstOff: 0,
    proto: 17,
    hasPorts: true,
    sport: 1,
    dport: 2,
    inNic: null,
    outNic: null,
  };
  let hits = 0;
  for (let i = 0; i < n * 7; i++) {
    probe.src = (0x0a000000 + i) >>> 0;
    if (set.test(probe, 1)) hits++;
  }
  assert.equal(hits, n);
  for (let i = 0; i < n; i += 2) {
    set.delete({ address: { family: 4, address: (0x0a000000 + i * 7) >>> 0, prefixLen: 32 } });
  }
  hits = 0;
  for (let i = 0; i < n; i++) {
    probe.src = (0x0a000000 + i * 7) >>> 0;
    if (set.test(probe, 1)) hits++;
  }
  assert.equal(hits, n / 2);
});

Deno.test("entries: parsed as ipset writes them, printed back the same", () => {
  for (
    const [type, text, back] of [
      ["hash:ip", "192.0.2.1", "192.0.2.1"],
      ["hash:ip", "2001:DB8::1", "2001:db8::1"],
      ["hash:ip", "192.0.2.1/32", "192.0.2.1"],
      ["hash:net", "192.0.2.0/24", "192.0.2.0/24"],
      ["hash:net", "192.0.2.9", "192.0.2.9"],
      ["hash:ip,port", "192.0.2.1,22", "192.0.2.1,tcp:22"],
      ["hash:ip,port", "2001:db8::1,UDP:53", "2001:db8::1,udp:53"],
      ["hash:net,iface", "2001:db8::/32,wan0", "2001:db8::/32,wan0"],
    ] as const
  ) {
    assert.equal(formatSetEntry(type, parseSetEntry(type, 0, text)), back, text);
  }
  for (
    const [type, family, text, why] of [
      ["hash:ip", 0, "192.0.2.0/24", /is a network, and a hash:ip set holds addresses/],
      ["hash:net", 0, "192.0.2.1/24", /host bits are set/],
      ["hash:net", 0, "0.0.0.0/0", /a \/0 network/],
      ["hash:ip", 4, "2001:db8::1", /is IPv6, and the set holds IPv4/],
      ["hash:ip,port", 0, "192.0.2.1", /needs two parts: ADDRESS,PORT/],
      ["hash:ip,port", 0, "192.0.2.1,sctp:5", /is no port/],
      ["hash:ip,port", 0, "192.0.2.1,70000", /is no port/],
      ["hash:net,iface", 0, "192.0.2.0/24,bad name!", /bad interface name/],
      ["hash:ip", 0, "192.0.2.1,80", /is one address/],
      ["hash:ip", 0, "192.0.2.300", /octet/],
    ] as const
  ) {
    assert.throws(() => parseSetEntry(type, family, text), why, text);
  }
});

Deno.test("config errors of sets and set matches are reported all at once, with their paths", () => {
  let errors: string[] = [];
  try {
    parseConfig(`
[firewall.sets.a]
type = "hash:ipp"
[firewall.sets.b]
type = "hash:ip"
family = 5
entries = ["192.0.2.1", "192.0.2.1/32", "nope", 7]
max_entries = 1
[firewall.sets.c]
type = "hash:net"
family = 4
timeout = 30
[firewall.sets."bad name"]
type = "hash:ip"
[firewall.filter]
forward = { rules = [
  "-m set --match-set nosuch src -j DROP",
  "-m set --match-set c src,dst,foo -j DROP",
  "-m set --match-set c -j DROP",
  "-p icmpv6 -m set --match-set c src -j DROP",
  "--match-set c src -j DROP",
] }
[firewall.ipv6.filter]
forward = { rules = ["-m set --match-set c dst -j DROP"] }
`);
  } catch (e) {
    if (!(e instanceof ConfigErrors)) throw e;
    errors = e.errors.map((x) => `${x.path}: ${x.message}`);
  }
  const want = [
    /^firewall\.sets\.a\.type: unknown set type "hash:ipp" .*did you mean "hash:ip"/,
    /^firewall\.sets\.b\.family: expected 4, 6 or "both", found integer 5/,
    /^firewall\.sets\.b\.entries\[1\]: entry "192\.0\.2\.1\/32" is given twice/,
    /^firewall\.sets\.b\.entries\[2\]: entry "nope"/,
    /^firewall\.sets\.b\.entries\[3\]: expected an entry string/,
    /^firewall\.sets\.b\.entries: 2 entries do not fit in max_entries = 1/,
    /^firewall\.sets\.c\.timeout: expected a duration string/,
    /^firewall\.sets\.bad name: bad set name/,
    /^firewall\.filter\.forward\.rules\[0\]: no set named "nosuch" \(the sets: b, c\)/,
    /^firewall\.filter\.forward\.rules\[1\]: bad --match-set flags "src,dst,foo"/,
    /^firewall\.filter\.forward\.rules\[2\]: option "--match-set" needs NAME and FLAGS/,
    /^firewall\.filter\.forward\.rules\[3\]: rule mixes IPv4 \("--match-set c"\) and IPv6 \("-p icmpv6"\)/,
    /^firewall\.filter\.forward\.rules\[4\]: option "--match-set" needs "-m set" before it/,
    /^firewall\.ipv6\.filter\.forward\.rules\[0\]: "--match-set c" is IPv4 but this is an ipv6 table/,
  ];
  for (const w of want) assert.ok(errors.some((e) => w.test(e)), `${w}\n${errors.join("\n")}`);
  assert.equal(errors.length, want.length, errors.join("\n"));
});

const RELOAD = (entries: string, timeout = "") => `
[router]
hostname = "gw"
forwarding = true
[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24"]
[[interface]]
name = "wan0"
addresses = ["198.51.100.1/24"]
[firewall.sets.banned]
type = "hash:ip"
${timeout}
entries = [${entries}]
[firewall.filter]
forward = { rules = ["-m set --match-set banned src -j DROP"] }
`;

Deno.test("a reload keeps a set's entries (live ones too) unless its definition changes", () => {
  const clock = new ManualClock();
  const prev = parseConfig(RELOAD(`"192.0.2.50", "192.0.2.51"`));
  const { stack, nics } = buildStack(prev, {
    clock,
    openLink: () => MemoryLink.pair({ clock })[0],
  });
  const fw = stack.firewall!;
  const before = fw.sets.get("banned")!;
  before.add(before.parse("192.0.2.99"));
  const members = () => fw.sets.get("banned")!.list().map((e) => e.entry).sort();
  // The config drops .51 and adds .52; the live .99 stays, and so does the set object.
  const next = parseConfig(RELOAD(`"192.0.2.50", "192.0.2.52"`));
  let r = applyConfig(stack, nics, prev, next);
  assert.ok(r.applied.includes("firewall: set banned kept (1 config entries added, 1 removed)"));
  assert.equal(fw.sets.get("banned"), before);
  assert.deepEqual(members(), ["192.0.2.50", "192.0.2.52", "192.0.2.99"]);
  // The recompiled rule tests the kept set.
  assert.equal(fw.filter.builtins.get("forward")!.rules[0]!.sets![0]!.set, before);
  // A changed definition (a default timeout) rebuilds the set from the config.
  const third = parseConfig(RELOAD(`"192.0.2.50"`, `timeout = "1h"`));
  r = applyConfig(stack, nics, next, third);
  assert.ok(r.applied.some((l) => /set banned rebuilt/.test(l)), r.applied.join("\n"));
  assert.notEqual(fw.sets.get("banned"), before);
  assert.deepEqual(members(), ["192.0.2.50"]);
  // The rebuilt set is the one the new rules test.
  const rule = fw.filter.builtins.get("forward")!.rules[0]!;
  assert.equal(rule.sets![0]!.set, fw.sets.get("banned"));
  // The same file again changes nothing; a policy alone is a change.
  assert.deepEqual(applyConfig(stack, nics, third, third).applied, []);
  const fourth = parseConfig(
    RELOAD(`"192.0.2.50"`, `timeout = "1h"`).replace(`forward = {`, `forward = { policy = "drop",`),
  );
  r = applyConfig(stack, nics, third, fourth);
  assert.ok(r.applied.some((l) => /firewall: tables replaced/.test(l)), r.applied.join("\n"));
  assert.equal(fw.filter.builtins.get("forward")!.policy, 1);
  stack.close();
});
