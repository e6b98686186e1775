import assert from "node:assert/strict";
import { parseLabConfig } from "../../../config/mod.ts";
import { runLab } from "../../../config/lab_runner.ts";

/** h1 (LAN) ── gw (stateful, default-drop, masquerade) ── h2 (WAN). */
const LAB = `
[lab]
description = "firewall verdicts: answered from the LAN, dropped or rejected from the WAN"
duration = "30s"

[[lab.node]]
name = "h1"
[[lab.node.interface]]
name = "eth0"
addresses = ["192.0.2.10/24", "2001:db8:10::10/64"]
[[lab.node.route]]
to = "0.0.0.0/0"
via = "192.0.2.1"
[[lab.node.route]]
to = "::/0"
via = "2001:db8:10::1"

[[lab.node]]
name = "gw"
[lab.node.router]
forwarding = { ipv4 = true, ipv6 = true }
[[lab.node.interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:10::1/64"]
[[lab.node.interface]]
name = "wan0"
addresses = ["198.51.100.1/24", "2001:db8:ffff::1/64"]
[lab.node.firewall.filter]
input = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-p icmpv6 --icmpv6-type neighbour-solicitation -j ACCEPT",
  "-p icmpv6 --icmpv6-type neighbour-advertisement -j ACCEPT",
  "-i lan0 -p icmp -j ACCEPT",
] }
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -j ACCEPT",
  "-i wan0 -d 192.0.2.20 -j REJECT --reject-with icmp-admin-prohibited",
  "-i wan0 -d 2001:db8:10::20 -j REJECT --reject-with icmp6-adm-prohibited",
] }
[lab.node.firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }

[[lab.node]]
name = "h2"
[[lab.node.interface]]
name = "eth0"
addresses = ["198.51.100.10/24", "2001:db8:ffff::10/64"]
[[lab.node.route]]
to = "192.0.2.0/24"
via = "198.51.100.1"
[[lab.node.route]]
to = "2001:db8:10::/64"
via = "2001:db8:ffff::1"

[[lab.link]]
a = "h1:eth0"
b = "gw:lan0"
[[lab.link]]
a = "gw:wan0"
b = "h2:eth0"

[[lab.probe]]
from = "h1"
at = "3s"
ping = "198.51.100.10"
expect = "reachable"
[[lab.probe]]
from = "h1"
at = "3s"
ping = "2001:db8:ffff::10"
expect = "reachable"
[[lab.probe]]
from = "h1"
at = "3s"
ping = "192.0.2.1"
expect = "reachable"
[[lab.probe]]
from = "h1"
at = "3s"
traceroute = "198.51.100.10"
expect_path = ["192.0.2.1", "198.51.100.10"]
[[lab.probe]]
from = "h2"
at = "10s"
ping = "192.0.2.10"
count = 1
expect = "timeout"
[[lab.probe]]
from = "h2"
at = "10s"
ping = "2001:db8:10::10"
count = 1
expect = "timeout"
[[lab.probe]]
from = "h2"
at = "10s"
ping = "198.51.100.1"
count = 1
expect = "timeout"
[[lab.probe]]
from = "h2"
at = "15s"
ping = "192.0.2.20"
count = 1
expect = "admin-prohibited"
expect_from = "198.51.100.1"
[[lab.probe]]
from = "h2"
at = "15s"
ping = "2001:db8:10::20"
count = 1
expect = "admin-prohibited"
# A new inbound UDP "connection" from the WAN: dropped silently by the forward policy.
[[lab.probe]]
from = "h2"
at = "20s"
udp = "192.0.2.10"
port = 5353
count = 1
expect = "timeout"
# The same from the LAN side to the WAN host goes out (through the NAT) and is refused there.
[[lab.probe]]
from = "h1"
at = "20s"
udp = "198.51.100.10"
port = 5353
count = 1
expect = "port-unreachable"
expect_from = "198.51.100.10"
`;

Deno.test("lab: probes see the firewall's verdicts (answered, dropped, rejected)", async () => {
  const r = await runLab(parseLabConfig(LAB));
  const failed = r.outcomes.filter((o) => !o.passed).map((o) =>
    `${o.probe.from} ${o.probe.kind} ${o.probe.target?.address}: ${o.reason}\n${o.lines.join("\n")}`
  );
  assert.deepEqual(failed, []);
  assert.equal(r.passed, 11);
});
