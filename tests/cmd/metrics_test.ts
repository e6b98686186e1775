import assert from "node:assert/strict";
import { renderMetrics } from "../../cmd/metrics.ts";
import { triangle } from "../topology/_topology.ts";
import { firewallFrom } from "../stack/firewall/_fw.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { hasTool } from "../tools.ts";
import { isCi } from "../e2e/harness.ts";

function sample(text: string, name: string, labels: string): number {
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}{${labels}} `) || l === `${name} ` + l.split(" ").at(-1) && labels === ""
  );
  assert.ok(line !== undefined, `${name}{${labels}} in\n${text}`);
  return Number(line.split(" ").at(-1));
}

/** One datagram h1 → h2 through the router (h2 listens, so nothing comes back). */
function forwardOne(t: ReturnType<typeof triangle>, sport: number): void {
  t.h1.udp.send(sport, parseIpv4("198.51.100.10"), 9, new Uint8Array(16));
  t.clock.advance(50);
}

Deno.test('a forwarded packet moves tapir_ip_forwarding_packets_total{family="ipv4"} by one', () => {
  const t = triangle();
  firewallFrom(t.r, `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`);
  t.h2.udp.bind(9, () => {});
  forwardOne(t, 5000); // resolves the neighbours on the way
  const before = renderMetrics(t.r);
  const fwd = sample(before, "tapir_ip_forwarding_packets_total", 'family="ipv4"');
  forwardOne(t, 5001);
  const after = renderMetrics(t.r);
  assert.equal(sample(after, "tapir_ip_forwarding_packets_total", 'family="ipv4"'), fwd + 1);
  assert.equal(
    sample(after, "tapir_nic_frames_received_total", 'interface="lan0"') -
      sample(before, "tapir_nic_frames_received_total", 'interface="lan0"'),
    1,
  );
  assert.equal(sample(after, "tapir_conntrack_entries", 'family="ipv4"'), 2);
  assert.match(after, /^# TYPE tapir_ip_dropped_total counter$/m);
  assert.match(after, /^tapir_ip_dropped_total\{family="ipv4",reason="not_for_this_host"\} 0$/m);
  assert.match(after, /^tapir_routes\{family="ipv4"\} 2$/m);
});

Deno.test({
  name: "promtool check metrics accepts the exposition",
  ignore: !isCi() && !hasTool("promtool"),
  async fn() {
    const t = triangle();
    firewallFrom(t.r, `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`);
    forwardOne(t, 5000);
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(renderMetrics(t.r)));
    await w.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.equal(text.trim(), "", text);
  },
});
