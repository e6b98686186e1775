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
import { formatStatsText } from "../../cmd/_stats_text.ts";
import { renderMetrics } from "../../cmd/metrics.ts";

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

Deno.test("snapshotStats(), show stats and /metrics include owners outside the stack (the driver)", () => {
  const { clock, stack } = build();
  clock.advance(5_000);
  stack.statsSources.set("driver", () => ({ polls: 7, syncPolls: 2 }));
  const s = stack.snapshotStats();
  assert.deepEqual(s.driver, { polls: 7, syncPolls: 2 });
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  const text = formatStatsText(s).split("\n");
  const at = text.indexOf("driver");
  assert.ok(at >= 0, "a driver block");
  assert.match(text[at + 1]!, /^\s+polls\s+7$/);
  const m = renderMetrics(stack);
  assert.match(m, /^tapir_driver_polls_total 7$/m);
  // HELP is the counter's JSDoc (cmd/_metric_help.ts, generated from the stats interfaces).
  assert.match(m, /^# HELP tapir_nic_frames_received_total Frames read from the link\.$/m);
  assert.match(m, /^# HELP tapir_neighbor_lookups_total Calls to `lookup\(\)`\.$/m);
  assert.match(m, /^tapir_link_dispatch_errors_total\{interface="lan0"\} 0$/m);
  stack.close();
});

Deno.test("a handler that throws inside a stack: the frame is dropped, counted on its link, logged, and shown by stats and /metrics", () => {
  const records: LogRecord[] = [];
  resetSync();
  configureSync({
    sinks: { test: (r) => records.push(r) },
    loggers: [
      { category: ["tapir", "link"], lowestLevel: "debug", sinks: ["test"] },
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
    const rx = lan0.stats.ipv4FramesReceived;
    sendFrames(5);
    assert.equal(lan0.stats.ipv4FramesReceived - rx, 5, "each frame reached the handler");
    const s = stack.snapshotStats();
    assert.equal((s.links.lan0 as { dispatchErrors: number }).dispatchErrors, 5);
    assert.match(renderMetrics(stack), /^tapir_link_dispatch_errors_total\{interface="lan0"\} 5$/m);
    assert.ok(formatStatsText(s).split("\n").some((l) => /^\s+dispatchErrors\s+5$/.test(l)));
    // The first with its stack trace; the next four only counted so far.
    assert.equal(records.length, 1);
    assert.equal(records[0]!.level, "error");
    assert.match(String(records[0]!.properties.trace), /TypeError: handler bug/);
    assert.match(String(records[0]!.properties.trace), /handleFrame/);
    clock.advance(10_000);
    sendFrames(1);
    assert.equal(records.length, 2, "one more line after 10 s, with the count");
    stack.close();
  } finally {
    resetSync();
  }
});
