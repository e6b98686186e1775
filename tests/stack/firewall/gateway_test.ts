import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { Firewall } from "../../../stack/firewall/mod.ts";
import { ping } from "../../../stack/mod.ts";
import { parseIpv4 } from "../../../stack/wire/mod.ts";
import { settle, triangle } from "../../topology/_topology.ts";

/** examples/gateway.toml's firewall with `trace = "-p icmp"`, on the triangle's router. */
function gatewayFirewall(t: ReturnType<typeof triangle>): Firewall {
  const text = Deno.readTextFileSync(new URL("../../../examples/gateway.toml", import.meta.url))
    .replace('# [firewall]\n# trace = "-p icmp"', '[firewall]\ntrace = "-p icmp"');
  assert.match(text, /^trace = "-p icmp"$/m, "gateway.toml's commented trace line changed");
  const fw = new Firewall(t.r, parseConfig(text).firewall);
  fw.install();
  t.r.firewall = fw;
  return fw;
}

Deno.test("gateway.toml: the trace of one ping names every chain and the deciding rule", async () => {
  const t = triangle();
  const fw = gatewayFirewall(t);
  const lines: string[] = [];
  fw.traceSink = (l) => lines.push(l);
  const r = await settle(
    t.clock,
    ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 1 }, () => {}),
  );
  assert.equal(r.received, 1);
  const heads = lines.map((l) => l.split(" ").slice(0, 2).join(" "));
  assert.deepEqual(heads, [
    // The echo request: no DNAT, the LAN → WAN rule, MASQUERADE.
    "TRACE: nat:PREROUTING:policy:2",
    "TRACE: nat:PREROUTING:verdict:ACCEPT",
    "TRACE: filter:FORWARD:rule:3",
    "TRACE: filter:FORWARD:verdict:ACCEPT",
    "TRACE: nat:POSTROUTING:rule:1",
    "TRACE: nat:POSTROUTING:verdict:ACCEPT",
    // The reply: ESTABLISHED (the nat table only sees a connection's first packet).
    "TRACE: filter:FORWARD:rule:1",
    "TRACE: filter:FORWARD:verdict:ACCEPT",
  ]);
  assert.match(
    lines[2]!,
    /IN=lan0 OUT=wan0 SRC=192\.0\.2\.10 DST=198\.51\.100\.10 .*PROTO=ICMP TYPE=8/,
  );
  assert.match(lines[6]!, /IN=wan0 OUT=lan0 SRC=198\.51\.100\.10 DST=192\.0\.2\.10 .*TYPE=0/);
});

Deno.test("gateway.toml: pings from the LAN to the gateway are answered, from the WAN dropped", async () => {
  const t = triangle();
  const fw = gatewayFirewall(t);
  const a = await settle(t.clock, ping(t.h1, { dst: parseIpv4("192.0.2.1"), count: 2 }, () => {}));
  assert.equal(a.received, 2);
  const before = fw.filter.builtins.get("input")!.policyPackets;
  const b = await settle(
    t.clock,
    ping(t.h2, { dst: parseIpv4("198.51.100.1"), count: 2 }, () => {}),
  );
  assert.equal(b.received, 0);
  assert.equal(fw.filter.builtins.get("input")!.policyPackets, before + 2);
});
