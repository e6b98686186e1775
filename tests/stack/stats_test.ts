/**
 * Every owner's counters reach `Stack.snapshotStats()` and `tapir show
 * stats`; an exception a handler throws is counted and logged.
 */
import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import { parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../link/mod.ts";
import { ManualClock, type Nic, type Stack } from "../../stack/mod.ts";
import { HEADROOM, PacketBuffer } from "../../stack/wire/mod.ts";
import { formatStatsText } from "../../cmd/_stats_format.ts";

const CONFIG = `
[router]
hostname = "gw"
forwarding = { ipv4 = true, ipv6 = true }

[[interface]]
name = "wan0"
addresses = ["198.51.100.2/24", "2001:db8:ffff::2/64"]

[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:10::1/64"]

[interface.ra]
enabled = true
prefixes = [{ prefix = "2001:db8:10::/64" }]

[firewall.filter]
input = { policy = "drop", rules = ["-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"] }
forward = { policy = "accept" }
`;

function build(): { clock: ManualClock; stack: Stack; peers: MemoryEndpoint[] } {
  const clock = new ManualClock();
  const peers: MemoryEndpoint[] = [];
  const { stack } = buildStack(parseConfig(CONFIG), {
    clock,
    openLink: (iface) => {
      const [a, b] = MemoryLink.pair({ clock, names: [`gw:${iface.name}`, `peer:${iface.name}`] });
      peers.push(b);
      return a;
    },
  });
  return { clock, stack, peers };
}

/** Every leaf of `v` is a number; the count of leaves. */
function leaves(v: unknown, path = ""): number {
  if (typeof v === "number") return 1;
  assert.ok(v !== null && typeof v === "object", `${path} is ${JSON.stringify(v)}`);
  let n = 0;
  for (const [k, x] of Object.entries(v)) n += leaves(x, `${path}.${k}`);
  return n;
}

Deno.test("Stack.snapshotStats() has every owner's counters", () => {
  const { clock, stack } = build();
  clock.advance(5_000); // DAD, MLD reports and the first RAs go out.
  const s = stack.snapshotStats();
  const owners: [string, unknown][] = [
    ["stack.ipv4", s.stack.ipv4],
    ["stack.icmpv4", s.stack.icmpv4],
    ["stack.arp", s.stack.arp],
    ["stack.udp", s.stack.udp],
    ["stack.ipv6", s.stack.ipv6],
    ["stack.icmpv6", s.stack.icmpv6],
    ["stack.ndp", s.stack.ndp],
    ["stack.mld", s.stack.mld],
    ["nics.lan0", s.nics.lan0],
    ["nics.wan0", s.nics.wan0],
    ["links.lan0", s.links.lan0],
    ["links.wan0", s.links.wan0],
    ["neighbors.lan0.ipv4", s.neighbors.lan0?.ipv4],
    ["neighbors.lan0.ipv6", s.neighbors.lan0?.ipv6],
    ["neighbors.wan0.ipv4", s.neighbors.wan0?.ipv4],
    ["reassembly.ipv4", s.reassembly.ipv4],
    ["reassembly.ipv6", s.reassembly.ipv6],
    ["ra", s.ra],
    ["firewall.filter", (s.firewall as Record<string, unknown> | undefined)?.filter],
    ["firewall.conntrack", (s.firewall as Record<string, unknown> | undefined)?.conntrack],
    ["dispatch", s.dispatch],
    ["tables", s.tables],
  ];
  for (const [name, v] of owners) {
    assert.ok(v !== undefined, `${name} is missing`);
    assert.ok(leaves(v, name) > 0, `${name} has no counters`);
  }
  // Counters that moved: the RAs sent on lan0, frames sent on both NICs.
  assert.ok((s.ra as { unsolicitedSent: number }).unsolicitedSent >= 1);
  assert.ok(s.nics.lan0!.framesSent >= 1 && s.links.lan0!.txFrames === s.nics.lan0!.framesSent);
  assert.equal(s.tables.routes.ipv4, stack.ipv4.routes.size);
  assert.equal((s.tables.addresses as Record<string, Record<string, number>>).lan0!.ipv4, 1);
  assert.ok(
    ((s.tables.addresses as Record<string, Record<string, number>>).lan0?.ipv6 ?? 0) >= 2,
    "lan0 has a link-local and a global IPv6 address",
  );
  assert.deepEqual(s.tables.conntrack, { ipv4: 0, ipv6: 0 });
  // JSON-able as it is.
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  stack.statsSources.set("driver", () => ({ polls: 7 }));
  assert.deepEqual(stack.snapshotStats().driver, { polls: 7 });
  stack.close();
});

Deno.test("formatStatsText() prints every counter, one block per owner", () => {
  const { clock, stack } = build();
  clock.advance(5_000);
  const s = stack.snapshotStats();
  const text = formatStatsText(s);
  const lines = text.split("\n");
  for (
    const heading of [
      "stack ipv4",
      "stack ndp",
      "nics lan0",
      "nics wan0",
      "links lan0",
      "neighbors lan0 ipv6",
      "reassembly ipv4",
      "ra",
      "firewall filter",
      "firewall conntrack ipv4",
      "dispatch",
      "tables routes",
    ]
  ) assert.ok(lines.includes(heading), `no "${heading}" block in\n${text}`);
  // One line per counter: as many value lines as the tree has leaves.
  const valueLines = lines.filter((l) => /^ {4}\S+ +\d+$/.test(l));
  assert.equal(valueLines.length, leaves(s));
  const i = lines.indexOf("nics lan0");
  const framesSent = lines.slice(i).find((l) => l.trim().startsWith("framesSent "));
  assert.equal(framesSent?.trim().split(/ +/)[1], String(s.nics.lan0!.framesSent));
  stack.close();
});

Deno.test("an exception thrown while a frame is dispatched is counted and logged, rate-limited", () => {
  const records: LogRecord[] = [];
  resetSync();
  configureSync({
    sinks: { test: (r) => records.push(r) },
    loggers: [
      { category: ["tapir", "dispatch"], lowestLevel: "debug", sinks: ["test"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    const { clock, stack, peers } = build();
    clock.advance(5_000);
    const lan0 = stack.nicByName("lan0") as Nic;
    lan0.ipv4 = {
      handleFrame() {
        throw new TypeError("handler bug");
      },
    };
    const peer = peers[1]!; // lan0's peer
    const sendFrames = (n: number) => {
      for (let i = 0; i < n; i++) {
        const b = new PacketBuffer(HEADROOM + 128);
        b.setFrame(HEADROOM, 60);
        b.data.fill(0, b.start, b.end);
        b.data.set(lan0.mac, b.start); // to lan0
        b.data.set([0x02, 0, 0, 0, 0, 9], b.start + 6);
        b.data.set([0x08, 0x00], b.start + 12); // IPv4
        assert.ok(peer.writePacket(b));
      }
      clock.advance(0);
    };
    const before = lan0.stats.dispatchExceptions;
    sendFrames(5);
    assert.equal(lan0.stats.dispatchExceptions - before, 5);
    assert.equal(stack.snapshotStats().dispatch.exceptions, 5);
    // The first with its stack trace; the next four only counted so far.
    assert.equal(records.length, 1);
    assert.equal(records[0]!.level, "error");
    assert.equal(records[0]!.properties.where, "lan0");
    assert.match(String(records[0]!.properties.error), /TypeError: handler bug/);
    assert.match(String(records[0]!.properties.trace), /handleFrame/);
    // The stack keeps working: a later frame for another handler is dispatched.
    clock.advance(5_000);
    sendFrames(1);
    assert.equal(records.length, 1, "within 10 s of the last line: no new line");
    clock.advance(10_000);
    sendFrames(1);
    assert.equal(records.length, 2);
    assert.equal(records[1]!.properties.n, 6);
    assert.equal(records[1]!.properties.total, 7);
    stack.close();
  } finally {
    resetSync();
  }
});
