import assert from "node:assert/strict";
import { Locator } from "../../config/_locate.ts";

const TEXT = `# comment with [brackets] and "quotes"
[router]
hostname = "a#b" # trailing
neighbor.probes = 3

[[interface]]
name = "lan0"
addresses = [
  "192.0.2.1/24", # first
  '2001:db8::1/64',
]
ra = { enabled = true, prefixes = [{ prefix = "2001:db8::/64" }, { prefix = """x""" }] }

[[interface]]
name = "lan1"
[interface.ra]
interval = "30s..200s"

[firewall.filter]
input = { rules = [
  "-j ACCEPT",
  "-m comment --comment \\"]\\" -j DROP",
] }

[[lab.node]]
name = "h1"
[[lab.node.interface]]
name = "eth0"
[[lab.node]]
name = "h2"
[[lab.node.interface]]
name = "eth0"
[[lab.node.interface]]
name = "eth1"
`;

Deno.test("Locator finds key paths through headers, dotted keys, inline tables and arrays", async (t) => {
  const loc = new Locator(TEXT);
  const cases: [string, number, number][] = [
    ["router", 2, 1],
    ["router.hostname", 3, 1],
    ["router.neighbor.probes", 4, 10],
    ["interface[0]", 6, 1],
    ["interface[0].name", 7, 1],
    ["interface[0].addresses[0]", 9, 3],
    ["interface[0].addresses[1]", 10, 3],
    ["interface[0].ra.enabled", 12, 8],
    ["interface[0].ra.prefixes[1]", 12, 66],
    ["interface[0].ra.prefixes[1].prefix", 12, 68],
    ["interface[1].name", 15, 1],
    ["interface[1].ra", 16, 1],
    ["interface[1].ra.interval", 17, 1],
    ["firewall.filter.input.rules[1]", 22, 3],
    ["lab.node[0].interface[0].name", 28, 1],
    ["lab.node[1].name", 30, 1],
    ["lab.node[1].interface[1].name", 34, 1],
    // Fallbacks: the nearest enclosing path that exists.
    ["interface[1].ra.prefixes[3].prefix", 16, 1],
    ["interface[0].mtu", 6, 1],
    ["lab.node[1].interface[1].addresses[0]", 33, 1],
  ];
  for (const [path, line, column] of cases) {
    await t.step(path, () => assert.deepEqual(loc.locate(path), { line, column }));
  }
  assert.equal(loc.locate("nothing.here"), undefined);
});
