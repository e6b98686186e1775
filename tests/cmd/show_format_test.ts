/**
 * `tapir show` text in iproute2's and conntrack-tools' forms, from the
 * control socket's answers on an in-memory stack (ManualClock).
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/mod.ts";
import { controlAnswer } from "../../cmd/control.ts";
import {
  formatAddresses,
  formatConntrack,
  formatNeighbors,
  formatRa,
  formatRoutes,
} from "../../cmd/_show_text.ts";
import { triangle } from "../topology/_topology.ts";
import { firewallFrom, forwardThrough, IP_OFF, udp } from "../stack/firewall/_fw.ts";

const CONFIG = `[router]
hostname = "gw"
forwarding = true

[[interface]]
name = "lan0"
mac = "02:00:5e:10:00:01"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
neighbors = [{ address = "192.0.2.10", mac = "02:00:00:00:00:0a" }]

[interface.ra]
enabled = true
interval = "30s..60s"
prefixes = [{ prefix = "2001:db8:1::/64" }]
rdnss = ["2001:db8:1::53"]

[[interface]]
name = "wan0"
mac = "02:00:5e:10:00:02"
addresses = ["198.51.100.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"

[[route]]
to = "203.0.113.0/24"
type = "unreachable"
`;

function stack() {
  const clock = new ManualClock();
  const { stack } = buildStack(parseConfig(CONFIG), {
    clock,
    openLink: () => MemoryLink.pair({ clock })[0],
  });
  return { stack, clock };
}

Deno.test("show routes reads like ip route: via only when there is one, proto, scope, src", () => {
  const { stack: s } = stack();
  const text = formatRoutes(controlAnswer(s, "routes") as never);
  assert.doesNotMatch(text, /null/);
  assert.deepEqual(text.trimEnd().split("\n"), [
    "default via 198.51.100.1 dev wan0 proto static",
    "192.0.2.0/24 dev lan0 proto kernel scope link src 192.0.2.1",
    "198.51.100.0/24 dev wan0 proto kernel scope link src 198.51.100.2",
    "unreachable 203.0.113.0/24 proto static",
    "2001:db8:1::/64 dev lan0 proto kernel metric 256 pref medium",
    "fe80::/64 dev lan0 proto kernel metric 256 pref medium",
    "fe80::/64 dev wan0 proto kernel metric 256 pref medium",
  ]);
  s.close();
});

Deno.test("show addresses reads like ip addr, with DAD state and lifetimes", () => {
  const { stack: s, clock } = stack();
  const before = formatAddresses(controlAnswer(s, "addresses") as never);
  assert.match(before, /^1: lan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP$/m);
  assert.match(before, /^ {4}link\/ether 02:00:5e:10:00:01 brd ff:ff:ff:ff:ff:ff$/m);
  assert.match(before, /^ {4}inet 192\.0\.2\.1\/24 brd 192\.0\.2\.255 scope global lan0$/m);
  assert.match(before, /^ {4}inet6 2001:db8:1::1\/64 scope global tentative$/m);
  assert.match(before, /^ {7}valid_lft forever preferred_lft forever$/m);
  clock.advance(3000); // DAD done
  const after = formatAddresses(controlAnswer(s, "addresses") as never);
  assert.match(after, /^ {4}inet6 2001:db8:1::1\/64 scope global$/m);
  assert.match(after, /^ {4}inet6 fe80::[0-9a-f:]+\/64 scope link$/m);
  const json = controlAnswer(s, "addresses") as Record<string, { addr_info: unknown[] }>;
  assert.deepEqual(json.lan0!.addr_info[2], {
    family: "inet6",
    local: "2001:db8:1::1",
    prefixlen: 64,
    scope: "global",
    origin: "static",
    state: "preferred",
    valid_lft: null,
    preferred_lft: null,
  });
  s.close();
});

Deno.test("show neighbors reads like ip neigh", () => {
  const { stack: s } = stack();
  assert.equal(
    formatNeighbors(controlAnswer(s, "neighbors") as never),
    "192.0.2.10 dev lan0 lladdr 02:00:00:00:00:0a PERMANENT\n",
  );
  s.close();
});

Deno.test("show ra gives the advertised settings and the time to the next RA", () => {
  const { stack: s, clock } = stack();
  clock.advance(3000);
  const text = formatRa(controlAnswer(s, "ra") as never);
  assert.match(
    text,
    /^ {2}advertising: interval 30\.\.60s, router lifetime 180s, preference medium, managed off, other off; next RA in \d+\.\ds$/m,
  );
  assert.match(
    text,
    /^ {2}prefix 2001:db8:1::\/64 on-link autonomous valid 86400s preferred 14400s$/m,
  );
  assert.match(text, /^ {2}rdnss 2001:db8:1::53$/m);
  s.close();
});

Deno.test("show conntrack reads like conntrack -L, the NAT visible in the reply tuple", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`,
  );
  const a = udp({ src: "192.0.2.10", dst: "198.51.100.10", sport: 40000, dport: 53 });
  assert.ok(forwardThrough(fw, a, t.rLan, t.rWan));
  const reply = udp({ src: "198.51.100.10", dst: "198.51.100.1", sport: 53, dport: 40000 });
  assert.ok(fw.prerouting(reply, IP_OFF, t.rWan, null));
  const text = formatConntrack(controlAnswer(t.r, "conntrack") as never);
  assert.match(
    text,
    /^udp {6}17 \d+ src=192\.0\.2\.10 dst=198\.51\.100\.10 sport=40000 dport=53 packets=1 bytes=\d+ src=198\.51\.100\.10 dst=198\.51\.100\.1 sport=53 dport=40000 packets=1 bytes=\d+ \[ASSURED\] mark=0 use=1$/m,
  );
  assert.match(text, /^conntrack: 1 flow entry has been shown\.$/m);
});
