/**
 * `/metrics`: the Prometheus exposition of a stack's counters, accepted by
 * `promtool check metrics`, moved by forwarded packets; `[metrics] listen`
 * validated.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { ConfigErrors } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock, ping } from "../../stack/mod.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { renderMetrics } from "../../cmd/metrics.ts";
import { settle, triangle } from "../topology/_topology.ts";

function hasPromtool(): boolean {
  try {
    return new Deno.Command("promtool", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const PROMTOOL = hasPromtool();
const CI = Deno.env.get("CI") === "true";
if (!PROMTOOL && !CI) {
  console.error("ignored the promtool test: promtool (Debian: prometheus) is not installed");
}

/** The value of the sample `name{labels}` in `text`, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const l of text.split("\n")) {
    if (l.startsWith(series + " ")) return Number(l.slice(series.length + 1));
  }
  return undefined;
}

const GATEWAY = new URL("../../examples/gateway.toml", import.meta.url);

Deno.test({
  name: "promtool check metrics accepts the exposition of a gateway's stack",
  ignore: !PROMTOOL && !CI,
  async fn() {
    assert.ok(PROMTOOL, "promtool is required (CI=true); Debian package prometheus");
    const clock = new ManualClock();
    const { stack } = buildStack(parseConfig(Deno.readTextFileSync(GATEWAY)), {
      clock,
      openLink: (i) => MemoryLink.pair({ clock, names: [i.name, `peer:${i.name}`] })[0],
    });
    clock.advance(5_000);
    stack.statsSources.set("driver", () => ({ polls: 3, syncPolls: 4 }));
    const text = renderMetrics(stack.snapshotStats());
    stack.close();
    const p = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await p.output();
    const msg = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `promtool: ${msg}`);
    assert.equal(msg.trim(), "");
    // Every owner is there, with its labels; gauges for the tables.
    for (
      const series of [
        'tapir_nic_frames_received_total{interface="lan0"}',
        'tapir_link_tx_frames_total{interface="wan0"}',
        'tapir_ip_packets_forwarded_total{family="ipv6"}',
        'tapir_icmp_errors_sent_total{family="ipv4"}',
        "tapir_arp_requests_sent_total",
        "tapir_ndp_dad_succeeded_total",
        'tapir_neighbor_lookups_total{interface="lan0",family="ipv6"}',
        'tapir_reassembly_timeouts_total{family="ipv4"}',
        "tapir_ra_unsolicited_sent_total",
        "tapir_firewall_dropped_total",
        'tapir_conntrack_inserted_total{family="ipv4"}',
        "tapir_dispatch_exceptions_total",
        "tapir_driver_polls_total",
        'tapir_routes{family="ipv4"}',
        'tapir_neighbors{interface="lan0",family="ipv4"}',
        'tapir_addresses{interface="lan0",family="ipv6"}',
        'tapir_conntrack_entries{family="ipv4"}',
      ]
    ) assert.notEqual(sample(text, series), undefined, `no ${series}`);
    assert.match(text, /^# TYPE tapir_routes gauge$/m);
    assert.match(text, /^# TYPE tapir_nic_frames_received_total counter$/m);
    // HELP is the counter's JSDoc.
    assert.match(text, /^# HELP tapir_nic_frames_received_total Frames read from the link\.$/m);
    assert.equal(sample(text, "tapir_driver_polls_total"), 3);
  },
});

Deno.test("a forwarded packet moves tapir_ip_packets_forwarded_total and the NICs' counters", async () => {
  const t = triangle();
  const before = renderMetrics(t.r.snapshotStats());
  const res = await settle(t.clock, ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }));
  assert.equal(res.received, 1);
  const after = renderMetrics(t.r.snapshotStats());
  const d = (series: string) => sample(after, series)! - sample(before, series)!;
  // The echo request one way, the reply the other.
  assert.equal(d('tapir_ip_packets_forwarded_total{family="ipv4"}'), 2);
  assert.equal(d('tapir_ip_packets_forwarded_total{family="ipv6"}'), 0);
  assert.ok(d('tapir_nic_ipv4_frames_received_total{interface="lan0"}') >= 1);
  assert.ok(d('tapir_nic_ipv4_frames_received_total{interface="wan0"}') >= 1);
  assert.ok(d('tapir_neighbors{interface="wan0",family="ipv4"}') >= 1, "h2 was resolved");
});

Deno.test("[metrics] listen is validated with its key path", () => {
  const base = '[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24"]\n';
  assert.deepEqual(parseConfig(base).metrics, undefined);
  assert.deepEqual(parseConfig(base + '[metrics]\nlisten = "127.0.0.1:9430"\n').metrics, {
    listen: { hostname: "127.0.0.1", port: 9430 },
  });
  assert.deepEqual(parseConfig(base + '[metrics]\nlisten = "[::1]:9430"\n').metrics, {
    listen: { hostname: "::1", port: 9430 },
  });
  for (
    const [text, want] of [
      ['listen = "127.0.0.1"', /metrics\.listen.*IPV4:PORT/],
      ['listen = "127.0.0.1:0"', /metrics\.listen.*port 1-65535/],
      ['listen = "127.0.0.1:70000"', /metrics\.listen/],
      ['listen = "300.0.0.1:9430"', /metrics\.listen.*300\.0\.0\.1/],
      ['listen = "[::zz]:9430"', /metrics\.listen/],
      ["listen = 9430", /metrics\.listen.*expected a string/],
      ['lisen = "127.0.0.1:9430"', /metrics\.lisen.*unknown key/],
    ] as const
  ) {
    assert.throws(() => parseConfig(`${base}[metrics]\n${text}\n`), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors);
      assert.match(e.errors.map(String).join("\n"), want);
      return true;
    }, text);
  }
});
