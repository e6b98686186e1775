import assert from "node:assert/strict";
import {
  type Config,
  configCounts,
  loadConfig,
  parseConfig,
  parseDuration,
  parseLabConfig,
} from "../../config/mod.ts";
import { formatCidr, formatIpAddress, formatMac, parseIpv6 } from "../../stack/wire/mod.ts";

Deno.test("parseConfig() fills in every default for an empty file", () => {
  const c = parseConfig("");
  assert.equal(c.router.hostname, "tapir");
  assert.deepEqual(c.router.forwarding, { ipv4: false, ipv6: false });
  assert.deepEqual(c.router.icmp, { rateLimit: 1000, burst: 50 });
  assert.deepEqual(c.router.neighbor, {
    maxEntries: 1024,
    baseReachableTime: 30_000,
    retransTime: 1000,
    probes: 3,
    delayFirstProbe: 5000,
    queueLen: 64,
    gcStaleTime: 60_000,
  });
  assert.deepEqual(c.router.ipv4, {
    reassemblyMemory: 4_194_304,
    reassemblyTimeout: 30_000,
    sendRedirects: true,
    defaultTtl: 64,
  });
  assert.equal(c.router.ipv6.reassemblyTimeout, 60_000);
  assert.equal(c.router.ipv6.addrGenMode, "eui64");
  assert.equal(c.router.ipv6.dadTransmits, 1);
  assert.equal(c.router.ipv6.stableSecret, undefined);
  assert.deepEqual(c.interfaces, []);
  assert.deepEqual(c.routes, []);
  assert.equal(c.firewall.conntrack.max, 65536);
  assert.equal(c.firewall.shared.filter.defined, false);
  assert.deepEqual([...c.firewall.shared.filter.chains.keys()], ["input", "forward", "output"]);
  assert.deepEqual([...c.firewall.ipv4.nat.chains.keys()], [
    "prerouting",
    "input",
    "output",
    "postrouting",
  ]);
  assert.deepEqual([...c.firewall.ipv6.raw.chains.keys()], ["prerouting", "output"]);
});

Deno.test("parseConfig() types an interface with defaults and overrides", () => {
  const c = parseConfig(`
[router]
hostname = "edge1"
forwarding = true
[router.ipv6]
addr_gen_mode = "stable-privacy"
stable_secret = "2001:db8::1234"
send_redirects = false

[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24"]
forwarding = { ipv6 = false }

[[interface]]
name = "lan0"
tap = "tap-lan0"
mac = "02:00:5E:10:00:02"
mtu = 9000
addresses = ["192.0.2.1/24", "2001:db8:10::1/64"]
forwarding = false
accept_ra = true
offload = false
capture = "lan0.pcap"
up = false
neighbors = [{ address = "192.0.2.9", mac = "02:00:00:00:00:09" }]
`);
  assert.equal(c.router.hostname, "edge1");
  assert.deepEqual(c.router.ipv6.stableSecret, parseIpv6("2001:db8::1234"));
  const [wan, lan] = c.interfaces;
  assert.ok(wan && lan);
  assert.equal(wan.tap, "wan0");
  assert.equal(wan.mtu, 1500);
  assert.equal(wan.mac, undefined);
  assert.deepEqual(wan.forwarding, { ipv4: true, ipv6: false });
  assert.deepEqual(wan.sendRedirects, { ipv4: true, ipv6: false });
  assert.equal(wan.acceptRa, false);
  assert.equal(wan.offload, true);
  assert.equal(wan.up, true);
  assert.equal(wan.ra.enabled, false);
  assert.equal(lan.tap, "tap-lan0");
  assert.equal(formatMac(lan.mac!), "02:00:5e:10:00:02");
  assert.equal(lan.mtu, 9000);
  assert.deepEqual(lan.addresses.map(formatCidr), ["192.0.2.1/24", "2001:db8:10::1/64"]);
  assert.deepEqual(lan.forwarding, { ipv4: false, ipv6: false });
  assert.equal(lan.acceptRa, true);
  assert.equal(lan.offload, false);
  assert.equal(lan.capture, "lan0.pcap");
  assert.equal(lan.up, false);
  assert.equal(lan.neighbors.length, 1);
  assert.equal(formatIpAddress(lan.neighbors[0]!.address), "192.0.2.9");
});

Deno.test("parseConfig() types RA settings with RFC 4861 defaults", () => {
  const c = parseConfig(`
[[interface]]
name = "lan0"
addresses = ["2001:db8:10::1/64"]
[interface.ra]
enabled = true
interval = "30s..200s"
preference = "high"
mtu = 1500
prefixes = [{ prefix = "2001:db8:10::/64", valid_lifetime = "infinity" }]
rdnss = ["2001:db8:10::53", { addresses = ["2001:db8::53"], lifetime = "10m" }]
dnssl = ["example.net"]
routes = [{ prefix = "2001:db8:ff::/48", preference = "low" }]
`);
  const ra = c.interfaces[0]!.ra;
  assert.equal(ra.enabled, true);
  assert.equal(ra.minInterval, 30_000);
  assert.equal(ra.maxInterval, 200_000);
  assert.equal(ra.routerLifetime, 600_000);
  assert.equal(ra.reachableTime, 0);
  assert.equal(ra.curHopLimit, 64);
  assert.equal(ra.preference, "high");
  assert.equal(ra.mtu, 1500);
  assert.equal(ra.sourceLinkLayer, true);
  // As radvd's AdvRASolicitedUnicast (on by default, RFC 7772 §5.1.1).
  assert.equal(ra.unicastSolicited, true);
  assert.deepEqual(
    ra.prefixes.map((
      p,
    ) => [formatCidr(p.prefix), p.onLink, p.autonomous, p.validLifetime, p.preferredLifetime]),
    [
      ["2001:db8:10::/64", true, true, Infinity, 14_400_000],
    ],
  );
  assert.deepEqual(ra.rdnss.map((r) => r.lifetime), [600_000, 600_000]);
  assert.equal(ra.rdnss[0]!.addresses.length, 1);
  assert.deepEqual(ra.dnssl, [{ domains: ["example.net"], lifetime: 600_000 }]);
  assert.deepEqual(ra.routes.map((r) => [formatCidr(r.prefix), r.preference, r.lifetime]), [
    ["2001:db8:ff::/48", "low", 600_000],
  ]);

  const d = parseConfig(`[[interface]]\nname = "x"\n`).interfaces[0]!.ra;
  assert.equal(d.minInterval, 200_000);
  assert.equal(d.maxInterval, 600_000);
  assert.equal(d.routerLifetime, 1_800_000);
  // A single value is MaxRtrAdvInterval; Min defaults to 0.33 × Max (RFC 4861 §6.2.1).
  const e =
    parseConfig(`[[interface]]\nname = "x"\nra = { interval = "100s" }\n`).interfaces[0]!.ra;
  assert.equal(e.maxInterval, 100_000);
  assert.equal(e.minInterval, 33_000);
});

Deno.test("parseConfig() types routes with Linux metric defaults", () => {
  const c = parseConfig(`
[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
[[route]]
to = "0.0.0.0/0"
via = "192.0.2.254"
[[route]]
to = "::/0"
via = "fe80::1%lan0"
[[route]]
to = "203.0.113.0/24"
type = "unreachable"
[[route]]
to = "198.51.100.0/24"
dev = "lan0"
metric = 5
`);
  assert.deepEqual(
    c.routes.map((
      r,
    ) => [formatCidr(r.to), r.via && formatIpAddress(r.via), r.dev, r.metric, r.type]),
    [
      ["0.0.0.0/0", "192.0.2.254", undefined, 0, "unicast"],
      ["::/0", "fe80::1", "lan0", 1024, "unicast"],
      ["203.0.113.0/24", undefined, undefined, 0, "unreachable"],
      ["198.51.100.0/24", undefined, "lan0", 5, "unicast"],
    ],
  );
});

Deno.test("parseConfig() types firewall tables, chains and rules", () => {
  const c = parseConfig(`
[firewall]
trace = "-p icmp -s 192.0.2.0/24"
conntrack = { max = 1000 }
[firewall.filter]
input = { policy = "DROP", rules = ["-s 192.0.2.0/24 -j ACCEPT", "-j mine"] }
mine = { rules = ["-p icmpv6 -j ACCEPT", "-j RETURN"] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
[firewall.nat]
prerouting = { rules = ["-p tcp --dport 80 -j REDIRECT --to-ports 8080"] }
`);
  const fw = c.firewall;
  assert.equal(fw.trace?.family, 4);
  assert.equal(fw.trace?.target, undefined);
  assert.equal(fw.conntrack.max, 1000);
  const input = fw.shared.filter.chains.get("input")!;
  assert.equal(input.policy, "drop");
  assert.deepEqual(input.rules.map((r) => [r.family, r.target?.kind]), [[4, "ACCEPT"], [
    0,
    "JUMP",
  ]]);
  const mine = fw.shared.filter.chains.get("mine")!;
  assert.equal(mine.builtin, false);
  assert.equal(mine.rules[0]!.family, 6);
  assert.equal(fw.ipv4.nat.defined, true);
  assert.deepEqual(fw.ipv4.nat.chains.get("postrouting")!.rules[0]!.target, { kind: "MASQUERADE" });
  // The shared nat table applies to both families (NAT66 too).
  assert.equal(fw.shared.nat.chains.get("prerouting")!.rules[0]!.family, 0);
  assert.equal(configCounts(c).rules, 6);
});

Deno.test("parseDuration() reads units and combinations", async (t) => {
  const good: [string, number][] = [
    ["0", 0],
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["1m30s250ms", 90_250],
    ["2d", 172_800_000],
    ["1.5s", 1500],
  ];
  for (const [text, ms] of good) await t.step(text, () => assert.equal(parseDuration(text), ms));
  const bad: [string, string][] = [
    ["", "empty"],
    ["30", "has no unit"],
    ["5x", `unknown unit "x"`],
    ["1m1h", "largest to smallest"],
    ["-1s", "expected a number"],
    ["0.5ms", "whole number of milliseconds"],
  ];
  for (const [text, frag] of bad) {
    await t.step(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDuration(text),
        (e: Error) => e.message.includes(frag) && e.message.startsWith("Cannot parse duration"),
      );
    });
  }
});

Deno.test("examples parse", async (t) => {
  for (const f of ["router.toml", "host.toml", "gateway.toml", "gateway_dhcp.toml"]) {
    await t.step(f, async () => {
      const c: Config = await loadConfig(new URL(`../../examples/${f}`, import.meta.url).pathname);
      assert.ok(c.interfaces.length > 0);
    });
  }
  await t.step("lab.toml", async () => {
    const path = new URL("../../examples/lab.toml", import.meta.url).pathname;
    const lab = parseLabConfig(await Deno.readTextFile(path), path);
    assert.deepEqual(lab.nodes.map((n) => n.name), ["h1", "r1", "h2", "h3"]);
    assert.deepEqual(lab.links.map((l) => l.mtu), [1500, 1400, 1500]);
    assert.deepEqual(lab.links.map((l) => l.delay), [1, 2, 0]);
    assert.deepEqual(lab.probes.map((p) => p.expect), [
      "reachable",
      "reachable",
      "net-unreachable",
      "frag-needed",
      "reachable",
      "reachable",
      "host-unreachable",
      "reachable",
      "reachable",
      "reachable",
      "frag-needed",
      "reachable",
      "port-unreachable",
      "connected",
      "complete",
      "refused",
      "refused",
      "complete",
      "complete",
    ]);
    assert.deepEqual(lab.probes.slice(13).map((p) => [p.kind, p.port, p.transfer?.service]), [
      ["tcp", 8080, undefined],
      ["transfer", 8080, "http"],
      ["tcp", 9, undefined],
      ["tcp", 9, undefined],
      ["transfer", 9, "discard"],
      ["transfer", 7, "echo"],
    ]);
    assert.deepEqual(lab.nodes[2]!.services.map((s) => [s.type, s.port]), [
      ["http", 80],
      ["echo", 7],
      ["discard", 9],
    ]);
    assert.equal(lab.probes[11]!.zone, "eth0");
    assert.equal(lab.probes[12]!.kind, "udp");
    assert.equal(lab.probes[12]!.port, 9);
    assert.equal(lab.probes[3]!.expectMtu, 1400);
    assert.equal(lab.probes[3]!.dontFragment, true);
    assert.deepEqual(lab.probes[1]!.expectPath!.map((a) => a === "*" ? a : formatIpAddress(a)), [
      "192.0.2.1",
      "198.51.100.10",
    ]);
    assert.equal(lab.nodes[1]!.config.router.hostname, "r1");
    assert.deepEqual(lab.nodes[1]!.config.interfaces[0]!.forwarding, { ipv4: true, ipv6: true });
  });
});
