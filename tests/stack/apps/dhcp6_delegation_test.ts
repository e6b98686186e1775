/**
 * Prefix delegation across a gateway, all from configs on memory links with
 * the manual clock: an upstream router (tapir's DHCPv6 server with a PD
 * pool) delegates a /56 to the gateway's WAN client; the gateway numbers
 * its LAN from the 2nd /64 of it and advertises it; a LAN host takes a
 * SLAAC address from it and reaches the upstream through the route the
 * upstream installed. When the upstream stops answering and the lease
 * ends, the gateway withdraws the /64 (preferred lifetime 0, RFC 7084
 * L-13) and the host's address goes deprecated.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { applyConfig } from "../../../config/reload.ts";
import { buildStack } from "../../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../../link/mod.ts";
import { DelegatedLan, Dhcpv6Client, ManualClock, ping, type Stack } from "../../../stack/mod.ts";
import { formatIpv6, type PacketBuffer, parseIpv6 } from "../../../stack/wire/mod.ts";
import { settle } from "../../topology/_topology.ts";

const ISP = `
[router]
hostname = "isp"
forwarding = { ipv4 = false, ipv6 = true }
[[interface]]
name = "down0"
addresses = ["2001:db8:f::1/64"]
[interface.ra]
enabled = true
managed = true
prefixes = [{ prefix = "2001:db8:f::/64", autonomous = false }]
[interface.dhcp6]
pools = ["2001:db8:f::100-2001:db8:f::1ff"]
pd_pools = [{ prefix = "2001:db8:100::/48", delegated_len = 56 }]
preferred_lifetime = "10m"
valid_lifetime = "20m"
`;

const GW_RA = `[interface.ra]
enabled = true
interval = "30s"
prefixes = [{ from = "wan0", subnet = 1 }]
`;
const gw = (ra = GW_RA) => `
[router]
hostname = "gw"
forwarding = { ipv4 = false, ipv6 = true }
[[interface]]
name = "wan0"
accept_ra = true
[interface.dhcp6_client]
ia_na = true
ia_pd = true
prefix_hint = 56
[[interface]]
name = "lan0"
${ra}`;

const HOST = `
[router]
hostname = "host"
[[interface]]
name = "eth0"
accept_ra = true
`;

function lab() {
  const clock = new ManualClock(1_000_000);
  const [ispDown, gwWan] = MemoryLink.pair({ clock, names: ["isp:down0", "gw:wan0"] });
  const [gwLan, hostEth] = MemoryLink.pair({ clock, names: ["gw:lan0", "host:eth0"] });
  let cut = false;
  const w = ispDown.writePacket.bind(ispDown);
  ispDown.writePacket = (p: PacketBuffer) => (cut ? true : w(p));
  const node = (text: string, links: MemoryEndpoint[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! });
  };
  const isp = node(ISP, [ispDown]);
  const g = node(gw(), [gwWan, gwLan]);
  const host = node(HOST, [hostEth]);
  return { clock, isp, g, host, cutUpstream: () => (cut = true) };
}

const addrsOf = (s: Stack, name: string) => {
  const nic = [...s.nics.values()].find((n) => n.name === name)!;
  return (s.ipv6.nicState(nic)?.addresses ?? [])
    .filter((a) => a.origin !== "link-local")
    .map((a) => `${formatIpv6(a.address)}/${a.prefixLen} ${a.origin} ${a.state}`);
};

Deno.test("prefix delegation: the LAN gets a /64 of the WAN's delegated /56; a LAN host reaches the upstream", async () => {
  const { clock, isp, g, host } = lab();
  clock.advance(20_000);
  const client = g.stack.services.get("dhcp6-client:wan0");
  assert.ok(client instanceof Dhcpv6Client);
  assert.equal(client.state, "bound");
  assert.equal(formatIpv6(client.prefix!.prefix), "2001:db8:100::");
  // The gateway: its WAN address (a /128 by DHCPv6), its LAN ::1 in the 2nd /64.
  assert.deepEqual(addrsOf(g.stack, "wan0"), ["2001:db8:f::100/128 dhcp preferred"]);
  assert.deepEqual(addrsOf(g.stack, "lan0"), ["2001:db8:100:1::1/64 dhcp preferred"]);
  const tracker = g.stack.services.get("delegation:lan0");
  assert.ok(tracker instanceof DelegatedLan);
  assert.deepEqual(tracker.prefixes(), ["2001:db8:100:1::/64"]);
  // The discard route for the rest of the /56 (RFC 7084 WPD-5).
  assert.equal(
    g.stack.ipv6.routes.find(parseIpv6("2001:db8:100::"), 56)[0]!.type,
    "unreachable",
  );
  // The LAN host: a SLAAC address in 2001:db8:100:1::/64 from the gateway's RA.
  clock.advance(60_000);
  const slaac = addrsOf(host.stack, "eth0");
  assert.equal(slaac.length, 1, String(slaac));
  assert.match(slaac[0]!, /^2001:db8:100:1:[0-9a-f:]+\/64 slaac preferred$/);
  // The host pings the upstream's address: through the gateway (default route by RA),
  // and back by the upstream's route for the delegated /56 via the gateway's WAN link-local.
  const r = await settle(
    clock,
    ping(host.stack, { dst: parseIpv6("2001:db8:f::1"), count: 2, timeoutMs: 2000 }),
  );
  assert.equal(r.received, 2, JSON.stringify(r));
  const ispRoute = isp.stack.ipv6.routes.find(parseIpv6("2001:db8:100::"), 56);
  assert.equal(ispRoute[0]!.source, "dhcp");
  isp.stack.close();
  g.stack.close();
  host.stack.close();
});

Deno.test("prefix delegation: a new delegated prefix renumbers the LAN; the old /64 is withdrawn and the host's address in it goes deprecated", () => {
  const { clock, isp, g, host } = lab();
  clock.advance(80_000);
  assert.equal(addrsOf(host.stack, "eth0").length, 1);
  // The upstream moves its PD pool; at T1 (5 min) the RENEW gets the new /56 and the old with lifetime 0.
  const prev = parseConfig(ISP);
  applyConfig(
    isp.stack,
    isp.nics,
    prev,
    parseConfig(ISP.replace("2001:db8:100::/48", "2001:db8:200::/48")),
  );
  clock.advance(5 * 60_000);
  const client = g.stack.services.get("dhcp6-client:wan0") as Dhcpv6Client;
  assert.equal(formatIpv6(client.prefix!.prefix), "2001:db8:200::");
  assert.deepEqual(addrsOf(g.stack, "lan0"), ["2001:db8:200:1::1/64 dhcp preferred"]);
  clock.advance(30_000);
  const a = addrsOf(host.stack, "eth0").sort();
  assert.equal(a.length, 2, String(a));
  assert.match(a[0]!, /^2001:db8:100:1:\S+ slaac deprecated$/);
  assert.match(a[1]!, /^2001:db8:200:1:\S+ slaac preferred$/);
  isp.stack.close();
  g.stack.close();
  host.stack.close();
});

Deno.test("prefix delegation: with the upstream gone, the host's address deprecates, then the delegation and the LAN /64 end", () => {
  const { clock, isp, g, host, cutUpstream } = lab();
  clock.advance(80_000);
  cutUpstream();
  // RENEW and REBIND go unanswered; the preferred lifetime (10 min) ends first.
  clock.advance(10 * 60_000);
  assert.match(addrsOf(host.stack, "eth0")[0]!, / slaac deprecated$/);
  clock.advance(10 * 60_000);
  const client = g.stack.services.get("dhcp6-client:wan0") as Dhcpv6Client;
  assert.equal(client.prefix, null);
  assert.equal(client.stats.leasesExpired, 1);
  assert.deepEqual(addrsOf(g.stack, "lan0"), []);
  assert.equal(g.stack.ipv6.routes.find(parseIpv6("2001:db8:100::"), 56).length, 0);
  clock.advance(5_000);
  assert.deepEqual(addrsOf(host.stack, "eth0"), []);
  isp.stack.close();
  g.stack.close();
  host.stack.close();
});

Deno.test("prefix delegation: a reload that moves the LAN to subnet 2 renumbers it, keeping the client", () => {
  const { clock, isp, g, host } = lab();
  clock.advance(20_000);
  const client = g.stack.services.get("dhcp6-client:wan0");
  const prev = parseConfig(gw());
  const next = parseConfig(gw(GW_RA.replace("subnet = 1", "subnet = 2")));
  applyConfig(g.stack, g.nics, prev, next);
  assert.equal(g.stack.services.get("dhcp6-client:wan0"), client);
  assert.deepEqual(addrsOf(g.stack, "lan0").map((x) => x.split(" ")[0]), ["2001:db8:100:2::1/64"]);
  isp.stack.close();
  g.stack.close();
  host.stack.close();
});

Deno.test("prefix delegation: the LAN's DHCPv6 server hands out delegated_pool in the delegated /64", () => {
  const clock = new ManualClock(1_000_000);
  const [ispDown, gwWan] = MemoryLink.pair({ clock, names: ["isp:down0", "gw:wan0"] });
  const [gwLan, hostEth] = MemoryLink.pair({ clock, names: ["gw:lan0", "host:eth0"] });
  const node = (text: string, links: MemoryEndpoint[]) => {
    let i = 0;
    return buildStack(parseConfig(text), { clock, openLink: () => links[i++]! });
  };
  const lanRa = GW_RA.replace("enabled = true", "enabled = true\nmanaged = true") +
    `[interface.dhcp6]\ndelegated_pool = "::1000-::1fff"\ndns_servers = ["2001:db8:f::53"]\n`;
  const isp = node(ISP, [ispDown]);
  const g = node(gw(lanRa), [gwWan, gwLan]);
  const host = node(
    `[router]\nhostname = "host"\n[[interface]]\nname = "eth0"\naccept_ra = true\n[interface.dhcp6_client]\nia_na = true\n`,
    [hostEth],
  );
  clock.advance(60_000);
  const c = host.stack.services.get("dhcp6-client:eth0") as Dhcpv6Client;
  assert.equal(c.state, "bound");
  assert.equal(formatIpv6(c.lease!.address!.address), "2001:db8:100:1::1000");
  assert.deepEqual(c.lease!.dnsServers.map((a) => formatIpv6(a)), ["2001:db8:f::53"]);
  assert.ok(addrsOf(host.stack, "eth0").includes("2001:db8:100:1::1000/128 dhcp preferred"));
  isp.stack.close();
  g.stack.close();
  host.stack.close();
});
