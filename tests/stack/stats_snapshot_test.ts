import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/mod.ts";
import { formatStatsText } from "../../cmd/_stats_text.ts";

const CONFIG = `[router]
forwarding = true
[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
[interface.ra]
enabled = true
prefixes = [{ prefix = "2001:db8:1::/64" }]
[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24"]
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;

Deno.test("snapshotStats gathers every owner's counters into one tree, and show stats prints each", () => {
  const clock = new ManualClock();
  const { stack } = buildStack(parseConfig(CONFIG), {
    clock,
    openLink: () => MemoryLink.pair({ clock })[0],
  });
  clock.advance(5000);
  const s = stack.snapshotStats();
  const has = (path: string) => {
    let v: unknown = s;
    for (const k of path.split(".")) v = (v as Record<string, unknown>)?.[k];
    assert.ok(v !== undefined && v !== null && typeof v === "object", `${path} is in the tree`);
    assert.ok(Object.keys(v as object).length > 0, `${path} has counters`);
  };
  for (
    const owner of [
      "stack.ipv4",
      "stack.icmpv4",
      "stack.arp",
      "stack.udp",
      "stack.ipv6",
      "stack.icmpv6",
      "stack.ndp",
      "stack.mld",
      "nics.lan0",
      "nics.wan0",
      "neighbors.lan0.arp",
      "neighbors.lan0.ndp",
      "links.lan0",
      "reassembly.ipv4",
      "reassembly.ipv6",
      "ra",
      "firewall",
      "conntrack.ipv4",
      "conntrack.ipv6",
    ]
  ) has(owner);
  // Real counts, not only names: RAs went out on lan0, frames left both NICs.
  assert.ok((s.ra as { unsolicitedSent: number }).unsolicitedSent >= 1);
  assert.ok(s.nics.lan0!.framesSent > 0);
  // JSON-able: nothing but plain data.
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  const text = formatStatsText(s);
  for (
    const title of [
      "stack",
      "nic lan0",
      "nic wan0",
      "neighbors lan0",
      "link lan0",
      "ra",
      "firewall",
      "conntrack",
    ]
  ) assert.match(text, new RegExp(`^${title}$`, "m"));
  assert.match(text, /^ {2}ipv4\.packetsSent +\d+$/m);
  stack.close();
});
