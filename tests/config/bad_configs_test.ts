import assert from "node:assert/strict";
import { type ConfigError, ConfigErrors, parseConfig, parseLabConfig } from "../../config/mod.ts";

/** Runs `fn`, expecting ConfigErrors; returns its errors. */
function errorsOf(fn: () => unknown): ConfigError[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors;
    throw e;
  }
  assert.fail("expected ConfigErrors");
}

const LAN = `[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
`;

interface BadCase {
  name: string;
  text: string;
  path: string;
  line: number;
  column?: number;
  message: string;
  lab?: boolean;
}

const CASES: BadCase[] = [
  {
    name: "a user chain named like a builtin chain and never jumped to is a typo",
    text: `[firewall.filter]\nforwrd = { rules = ["-j ACCEPT"] }\n`,
    path: "firewall.filter.forwrd",
    line: 2,
    message: 'did you mean the builtin chain "forward"?',
  },
  {
    name: "a rule that starts with -A CHAIN gets the TOML-key hint",
    text: `[firewall.filter]\ninput = { rules = ["-A INPUT -i lan0 -j ACCEPT"] }\n`,
    path: "firewall.filter.input.rules[0]",
    line: 2,
    message: 'the chain is the TOML key (write input = { rules = ["-i lan0 -j ACCEPT"] }',
  },
  {
    name: "-I CHAIN N is stripped in the hint too",
    text: `[firewall.filter]\ninput = { rules = ["-I INPUT 1 -p icmp -j ACCEPT"] }\n`,
    path: "firewall.filter.input.rules[0]",
    line: 2,
    message: 'write input = { rules = ["-p icmp -j ACCEPT"] }',
  },
  {
    name: "NFQUEUE is a target without meaning in tapir, not a jump to an undefined chain",
    text: `[firewall.filter]\ninput = { rules = ["-p tcp -j NFQUEUE --queue-num 1"] }\n`,
    path: "firewall.filter.input.rules[0]",
    line: 2,
    message: 'target "NFQUEUE" has no meaning in tapir: tapir has no netlink queue',
  },
  {
    name: "radvd's ::/64 is rejected with what it means",
    text: LAN + `[interface.ra]\nenabled = true\nprefixes = [{ prefix = "::/64" }]\n`,
    path: "interface[0].ra.prefixes[0].prefix",
    line: 6,
    message: `radvd's "every prefix of this interface"`,
  },
  {
    name: "TOML syntax error",
    text: `[router]\nhostname = "x\n`,
    path: "",
    line: 2,
    message: "TOML syntax error",
  },
  {
    name: "unknown top-level key with did-you-mean",
    text: `[[interfaces]]\nname = "lan0"\n`,
    path: "interfaces",
    line: 1,
    message: `unknown key "interfaces" (did you mean "interface"?)`,
  },
  {
    name: "unknown interface key with did-you-mean",
    text: `[[interface]]\nname = "lan0"\nadresses = ["192.0.2.1/24"]\n`,
    path: "interface[0].adresses",
    line: 3,
    column: 1,
    message: `(did you mean "addresses"?)`,
  },
  {
    name: "bad address octet",
    text: `[[interface]]\nname = "lan0"\naddresses = ["10.0.0.300/24"]\n`,
    path: "interface[0].addresses[0]",
    line: 3,
    column: 14,
    message: `Cannot parse address "10.0.0.300": octet 4 is out of range`,
  },
  {
    name: "bad prefix length",
    text: `[[interface]]\nname = "lan0"\naddresses = ["192.0.2.1/24", "192.0.2.2/33"]\n`,
    path: "interface[0].addresses[1]",
    line: 3,
    column: 30,
    message: "prefix length must be 0 to 32",
  },
  {
    name: "host bits in a route prefix",
    text: LAN + `[[route]]\nto = "198.51.100.1/24"\ndev = "lan0"\n`,
    path: "route[0].to",
    line: 5,
    message: "host bits are set (did you mean 198.51.100.0/24?)",
  },
  {
    name: "duplicate interface name",
    text: LAN + `[[interface]]\nname = "lan0"\ntap = "tap9"\n`,
    path: "interface[1].name",
    line: 5,
    message: `duplicate interface name "lan0"`,
  },
  {
    name: "duplicate tap",
    text: `[[interface]]\nname = "a"\ntap = "tap0"\n[[interface]]\nname = "b"\ntap = "tap0"\n`,
    path: "interface[1].tap",
    line: 6,
    message: `duplicate tap "tap0"`,
  },
  {
    name: "route via an unreachable gateway",
    text: LAN + `[[route]]\nto = "0.0.0.0/0"\nvia = "203.0.113.1"\n`,
    path: "route[0].via",
    line: 6,
    message: "is not inside any interface's prefix (connected: 192.0.2.0/24)",
  },
  {
    name: "route dev naming no interface",
    text: LAN + `[[route]]\nto = "0.0.0.0/0"\ndev = "lan1"\n`,
    path: "route[0].dev",
    line: 6,
    message: `no interface named "lan1" (did you mean "lan0"?)`,
  },
  {
    name: "IPv6 link-local via without dev",
    text: LAN + `[[route]]\nto = "::/0"\nvia = "fe80::1"\n`,
    path: "route[0].via",
    line: 6,
    message: `needs "dev"`,
  },
  {
    name: "bad duration",
    text: `[router.neighbor]\nbase_reachable_time = "30x"\n`,
    path: "router.neighbor.base_reachable_time",
    line: 2,
    message: `Cannot parse duration "30x": unknown unit "x"`,
  },
  {
    name: "duration given as a number",
    text: `[router.ipv4]\nreassembly_timeout = 30\n`,
    path: "router.ipv4.reassembly_timeout",
    line: 2,
    message: `expected a duration string such as "30s", found integer 30`,
  },
  {
    name: "wrong type",
    text: `[[interface]]\nname = "lan0"\nmtu = "1500"\n`,
    path: "interface[0].mtu",
    line: 3,
    message: `expected an integer, found string "1500"`,
  },
  {
    name: "rule with an unsupported option",
    text:
      `[firewall.filter]\ninput = { rules = ["-p tcp --dport 22 -j ACCEPT", "-p tcp --foo 1 -j DROP"] }\n`,
    path: "firewall.filter.input.rules[1]",
    line: 2,
    column: 51,
    message: `unsupported option "--foo"`,
  },
  {
    name: "rule with a target not allowed in its chain",
    text: `[firewall.ipv4.nat]\nprerouting = { rules = ["-o lan0 -j MASQUERADE"] }\n`,
    path: "firewall.ipv4.nat.prerouting.rules[0]",
    line: 2,
    message: "target MASQUERADE is not allowed in the nat prerouting chain",
  },
  {
    name: "REJECT outside the filter table",
    text: `[firewall.raw]\nprerouting = { rules = ["-p udp -j REJECT"] }\n`,
    path: "firewall.raw.prerouting.rules[0]",
    line: 2,
    message: "target REJECT is not allowed",
  },
  {
    name: "rule with --dport but no -p",
    text:
      `[firewall.filter]\n[firewall.filter.input]\nrules = [\n  "-j ACCEPT",\n  "--dport 22 -j ACCEPT",\n]\n`,
    path: "firewall.filter.input.rules[1]",
    line: 5,
    column: 3,
    message: `option "--dport" needs "-p tcp" or "-p udp" before it`,
  },
  {
    name: "IPv4 address in an ipv6 table",
    text: `[firewall.ipv6.filter]\ninput = { rules = ["-s 192.0.2.0/24 -j DROP"] }\n`,
    path: "firewall.ipv6.filter.input.rules[0]",
    line: 2,
    message: `"-s 192.0.2.0/24" is IPv4 but this is an ipv6 table`,
  },
  {
    name: "rule mixing families",
    text: `[firewall.filter]\nforward = { rules = ["-s 192.0.2.0/24 -d 2001:db8::/32 -j DROP"] }\n`,
    path: "firewall.filter.forward.rules[0]",
    line: 2,
    message: "rule mixes IPv4",
  },
  {
    name: "jump to an undefined chain",
    text: `[firewall.filter]\ninput = { rules = ["-j ACCPET"] }\n`,
    path: "firewall.filter.input.rules[0]",
    line: 2,
    message: `jump to undefined chain "ACCPET" (did you mean "ACCEPT"?)`,
  },
  {
    name: "jump loop between user chains",
    text:
      `[firewall.filter]\ninput = { rules = ["-j a"] }\na = { rules = ["-j b"] }\nb = { rules = ["-p tcp -j a"] }\n`,
    path: "firewall.filter.b.rules[0]",
    line: 4,
    message: "jump loop: a -> b -> a",
  },
  {
    name: "user chain with a policy",
    text: `[firewall.filter]\nmine = { policy = "drop", rules = [] }\n`,
    path: "firewall.filter.mine.policy",
    line: 2,
    message: `user chain "mine" takes no policy`,
  },
  {
    name: "IPv4 SNAT in the IPv6 nat table",
    text: `[firewall.ipv6.nat]\npostrouting = { rules = ["-j SNAT --to-source 192.0.2.1"] }\n`,
    path: "firewall.ipv6.nat.postrouting.rules[0]",
    line: 2,
    message: `"--to-source 192.0.2.1" is IPv4 but this is an ipv6 table`,
  },
  {
    name: "RA autonomous prefix that is not /64",
    text: LAN +
      `[interface.ra]\nenabled = true\nprefixes = [{ prefix = "2001:db8:1::/64" }, { prefix = "2001:db8:2::/56" }]\n`,
    path: "interface[0].ra.prefixes[1].prefix",
    line: 6,
    message: "must be a /64 for SLAAC",
  },
  {
    name: "RA interval out of RFC 4861 range",
    text: LAN + `[interface.ra]\ninterval = "1s..2s"\n`,
    path: "interface[0].ra.interval",
    line: 5,
    message: "MaxRtrAdvInterval must be 4s to 1800s",
  },
  {
    name: "RA preferred lifetime longer than valid",
    text: LAN +
      `[[interface.ra.prefixes]]\nprefix = "2001:db8:1::/64"\nvalid_lifetime = "1h"\npreferred_lifetime = "2h"\n`,
    path: "interface[0].ra.prefixes[0].preferred_lifetime",
    line: 7,
    message: "preferred_lifetime is longer than valid_lifetime",
  },
  {
    name: "MTU below 1280 with IPv6",
    text: `[[interface]]\nname = "lan0"\nmtu = 1000\naddresses = ["2001:db8::1/64"]\n`,
    path: "interface[0].mtu",
    line: 3,
    message: "below 1280, the IPv6 minimum",
  },
  {
    name: "the same address twice",
    text: LAN + `[[interface]]\nname = "lan1"\naddresses = ["192.0.2.1/25"]\n`,
    path: "interface[1].addresses[0]",
    line: 6,
    message: "address 192.0.2.1 is also interface[0].addresses[0]",
  },
  {
    name: "the same prefix on two interfaces",
    text: LAN + `[[interface]]\nname = "lan1"\naddresses = ["2001:db8:1::2/64"]\n`,
    path: "interface[1].addresses[0]",
    line: 6,
    message: "prefix 2001:db8:1::/64",
  },
  {
    name: "duplicate static neighbor",
    text: LAN +
      `neighbors = [\n  { address = "192.0.2.9", mac = "02:00:00:00:00:09" },\n  { address = "192.0.2.9", mac = "02:00:00:00:00:0a" },\n]\n`,
    path: "interface[0].neighbors[1].address",
    line: 6,
    message: "duplicate static neighbor 192.0.2.9",
  },
  {
    name: "bad interface name",
    text: `[[interface]]\nname = "0lan"\n`,
    path: "interface[0].name",
    line: 2,
    message: `bad interface name "0lan"`,
  },
  {
    name: "missing interface name",
    text: `[[interface]]\nmtu = 1500\n`,
    path: "interface[0].name",
    line: 1,
    message: `"name" is required`,
  },
  {
    name: "blackhole route with via",
    text: LAN + `[[route]]\nto = "203.0.113.0/24"\ntype = "blackhole"\nvia = "192.0.2.7"\n`,
    path: "route[0].via",
    line: 7,
    message: "a blackhole route takes no",
  },
  {
    name: "stable-privacy without a secret",
    text: `[router.ipv6]\naddr_gen_mode = "stable-privacy"\n`,
    path: "router.ipv6.stable_secret",
    line: 1,
    message: "needs a stable_secret",
  },
  {
    name: "bad policy",
    text: `[firewall.filter.input]\npolicy = "reject"\n`,
    path: "firewall.filter.input.policy",
    line: 2,
    message: `"reject" is not one of "accept", "drop"`,
  },
  {
    name: "router_lifetime below the maximum interval",
    text: LAN + `[interface.ra]\ninterval = "30s..200s"\nrouter_lifetime = "100s"\n`,
    path: "interface[0].ra.router_lifetime",
    line: 6,
    message: "router_lifetime must be 0 or at least the maximum interval 200s",
  },
  {
    name: "[interface] written as a single table",
    text: `[interface]\nname = "lan0"\n`,
    path: "interface",
    line: 1,
    message: "write [[interface]] for each entry",
  },
  {
    name: "lab link to a missing node",
    lab: true,
    text:
      `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.node.interface]]\nname = "eth0"\n[[lab.link]]\na = "h1:eth0"\nb = "r9:lan0"\n`,
    path: "lab.link[0].b",
    line: 8,
    message: `no node named "r9"`,
  },
  {
    name: "lab node error carries the node path",
    lab: true,
    text:
      `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.node]]\nname = "h2"\n[[lab.node.interface]]\nname = "eth0"\n[[lab.node.interface]]\nname = "eth1"\naddresses = ["192.0.2.1/24", "192.0.2.999/24"]\n`,
    path: "lab.node[1].interface[1].addresses[1]",
    line: 10,
    column: 30,
    message: "octet 4 is out of range",
  },
  {
    name: "lab probe from a missing node",
    lab: true,
    text: `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.probe]]\nfrom = "h2"\nping = "192.0.2.1"\n`,
    path: "lab.probe[0].from",
    line: 5,
    message: `no node named "h2"`,
  },
  {
    name: "lab probe with expect_mtu but not frag-needed",
    lab: true,
    text:
      `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.probe]]\nfrom = "h1"\nping = "192.0.2.1"\nexpect_mtu = 1400\n`,
    path: "lab.probe[0].expect_mtu",
    line: 7,
    message: `expect_mtu goes with expect = "frag-needed"`,
  },
  {
    name: "lab udp probe without a port",
    lab: true,
    text: `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.probe]]\nfrom = "h1"\nudp = "192.0.2.1"\n`,
    path: "lab.probe[0].udp",
    line: 6,
    message: `a udp probe needs "port = N"`,
  },
  {
    name: "lab udp probe expecting a reply",
    lab: true,
    text:
      `[lab]\n[[lab.node]]\nname = "h1"\n[[lab.probe]]\nfrom = "h1"\nudp = "192.0.2.1"\nport = 53\nexpect = "reachable"\n`,
    path: "lab.probe[0].expect",
    line: 8,
    message: "a udp probe expects port-unreachable",
  },
  {
    name: "lab interface on two links",
    lab: true,
    text:
      `[lab]\n[[lab.node]]\nname = "a"\ninterface = [{ name = "e0" }, { name = "e1" }]\n[[lab.node]]\nname = "b"\ninterface = [{ name = "e0" }]\n[[lab.link]]\na = "a:e0"\nb = "b:e0"\n[[lab.link]]\na = "a:e1"\nb = "b:e0"\n`,
    path: "lab.link[1].b",
    line: 13,
    message: "interface b:e0 is already on lab.link[0]",
  },
  {
    name: "a DHCP pool outside the interface's prefix",
    text: LAN + `[interface.dhcp]\npools = ["198.51.100.10-198.51.100.20"]\n`,
    path: "interface[0].dhcp.pools[0]",
    line: 5,
    message: 'is outside the IPv4 prefixes of interface "lan0" (192.0.2.0/24)',
  },
  {
    name: "overlapping DHCP pools",
    text: LAN +
      `[interface.dhcp]\npools = [\n  "192.0.2.100-192.0.2.150",\n  "192.0.2.140-192.0.2.160",\n]\n`,
    path: "interface[0].dhcp.pools[1]",
    line: 7,
    message: "pool overlaps interface[0].dhcp.pools[0]",
  },
  {
    name: "a DHCP pool holding the interface's own address",
    text: LAN + `[interface.dhcp]\npools = ["192.0.2.1-192.0.2.20"]\n`,
    path: "interface[0].dhcp.pools[0]",
    line: 5,
    message: "includes the interface's own address 192.0.2.1",
  },
  {
    name: "a DHCP reservation outside every pool",
    text: LAN +
      `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\nreservations = [{ mac = "02:00:00:00:00:09", address = "192.0.2.200" }]\n`,
    path: "interface[0].dhcp.reservations[0].address",
    line: 6,
    message: "reserved address 192.0.2.200 is outside every pool",
  },
  {
    name: "a DHCP server on an interface without IPv4",
    text:
      `[[interface]]\nname = "lan0"\naddresses = ["2001:db8::1/64"]\n[interface.dhcp]\npools = []\n`,
    path: "interface[0].dhcp",
    line: 4,
    message: "a DHCPv4 server needs an IPv4 address",
  },
  {
    name: "a DHCP lease time below two minutes",
    text: LAN + `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\nlease_time = "30s"\n`,
    path: "interface[0].dhcp.lease_time",
    line: 6,
    message: "",
  },
  {
    name: "a DHCP option the server sets itself",
    text: LAN +
      `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\noptions = [{ code = 54, ip = "192.0.2.9" }]\n`,
    path: "interface[0].dhcp.options[0].code",
    line: 6,
    message: "option 54 is set by the server itself",
  },
  {
    name: '[interface.dhcp_client] without "dhcp" in addresses',
    text: LAN + `[interface.dhcp_client]\nroute_metric = 10\n`,
    path: "interface[0].dhcp_client",
    line: 4,
    message: 'needs "dhcp" in this interface\'s addresses',
  },
  {
    name: '"dhcp" named twice in addresses',
    text: `[[interface]]\nname = "wan0"\naddresses = ["dhcp", "dhcp"]\n`,
    path: "interface[0].addresses[1]",
    line: 3,
    message: '"dhcp" is named twice',
  },
  {
    name: "a DHCPv6 pool outside the interface's IPv6 prefixes",
    text: LAN + `[interface.dhcp6]\npools = ["2001:db8:2::100-2001:db8:2::1ff"]\n`,
    path: "interface[0].dhcp6.pools[0]",
    line: 5,
    message: 'is outside the IPv6 prefixes of interface "lan0" (2001:db8:1::/64)',
  },
  {
    name: "a DHCPv6 pool that ends before it starts",
    text: LAN + `[interface.dhcp6]\npools = ["2001:db8:1::1ff-2001:db8:1::100"]\n`,
    path: "interface[0].dhcp6.pools[0]",
    line: 5,
    message: "pool starts at 2001:db8:1::1ff, after its end 2001:db8:1::100",
  },
  {
    name: "a DHCPv6 pool holding the interface's own address",
    text: LAN + `[interface.dhcp6]\npools = ["2001:db8:1::1-2001:db8:1::ff"]\n`,
    path: "interface[0].dhcp6.pools[0]",
    line: 5,
    message: "includes the interface's own address 2001:db8:1::1",
  },
  {
    name: "a DHCPv6 server with nothing to hand out",
    text: LAN + `[interface.dhcp6]\nrapid_commit = true\n`,
    path: "interface[0].dhcp6",
    line: 4,
    message: 'give "pools"',
  },
  {
    name: "a delegated prefix pool with host bits set",
    text: LAN +
      `[interface.dhcp6]\npd_pools = [{ prefix = "2001:db8:100::1/48", delegated_len = 56 }]\n`,
    path: "interface[0].dhcp6.pd_pools[0].prefix",
    line: 5,
    message: "has host bits set (the prefix is 2001:db8:100::/48)",
  },
  {
    name: "a delegated length shorter than the pool's prefix",
    text: LAN +
      `[interface.dhcp6]\npd_pools = [{ prefix = "2001:db8:100::/48", delegated_len = 40 }]\n`,
    path: "interface[0].dhcp6.pd_pools[0].delegated_len",
    line: 5,
    message: "",
  },
  {
    name: "a delegated prefix pool over the interface's own prefix",
    text: LAN +
      `[interface.dhcp6]\npd_pools = [{ prefix = "2001:db8::/32", delegated_len = 56 }]\n`,
    path: "interface[0].dhcp6.pd_pools[0].prefix",
    line: 5,
    message: "overlaps the interface's own prefix 2001:db8:1::/64",
  },
  {
    name: "a DHCPv6 preferred lifetime longer than the valid one",
    text: LAN +
      `[interface.dhcp6]\npools = ["2001:db8:1::100-2001:db8:1::1ff"]\npreferred_lifetime = "3h"\nvalid_lifetime = "2h"\n`,
    path: "interface[0].dhcp6.preferred_lifetime",
    line: 6,
    message: "preferred_lifetime is longer than valid_lifetime",
  },
  {
    name: "one lease file for the DHCPv4 and DHCPv6 servers",
    text: LAN +
      `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\nlease_file = "/tmp/x.leases"\n[interface.dhcp6]\npools = ["2001:db8:1::100-2001:db8:1::1ff"]\nlease_file = "/tmp/x.leases"\n`,
    path: "interface[0].dhcp6.lease_file",
    line: 9,
    message: "needs a lease file of its own",
  },
  {
    name: "a DHCPv6 DNS server that is multicast",
    text: LAN +
      `[interface.dhcp6]\npools = ["2001:db8:1::100-2001:db8:1::1ff"]\ndns_servers = ["ff02::1"]\n`,
    path: "interface[0].dhcp6.dns_servers[0]",
    line: 6,
    message: "ff02::1 is not a unicast address",
  },
  {
    name: "DHCPv6 address pools on a link whose RAs do not set the M flag",
    text: LAN +
      `[interface.ra]\nenabled = true\nprefixes = ["2001:db8:1::/64"]\n[interface.dhcp6]\npools = ["2001:db8:1::100-2001:db8:1::1ff"]\n`,
    path: "interface[0].dhcp6.pools",
    line: 8,
    message: "add managed = true to [interface.ra]",
  },
  {
    name: "a stateless DHCPv6 server on a link whose RAs set neither M nor O",
    text: LAN +
      `[interface.ra]\nenabled = true\n[interface.dhcp6]\ndns_servers = ["2001:db8:1::53"]\n`,
    path: "interface[0].dhcp6",
    line: 6,
    message: "add other_config = true to [interface.ra]",
  },
  {
    name: "an RA prefix from an interface that asks for no delegated prefix",
    text:
      `[[interface]]\nname = "wan0"\n[[interface]]\nname = "lan0"\n[interface.ra]\nenabled = true\nprefixes = [{ from = "wan0", subnet = 1 }]\n`,
    path: "interface[1].ra.prefixes[0].from",
    line: 7,
    message: 'interface "wan0" asks for no delegated prefix',
  },
  {
    name: "an RA prefix from an interface that does not exist",
    text:
      `[[interface]]\nname = "wan0"\n[interface.dhcp6_client]\nia_pd = true\n[[interface]]\nname = "lan0"\n[interface.ra]\nenabled = true\nprefixes = [{ from = "wan1" }]\n`,
    path: "interface[1].ra.prefixes[0].from",
    line: 9,
    message: 'no interface "wan1" (did you mean "wan0"?)',
  },
  {
    name: "a delegated subnet that does not fit the prefix asked for",
    text:
      `[[interface]]\nname = "wan0"\n[interface.dhcp6_client]\nia_pd = true\nprefix_hint = 60\n[[interface]]\nname = "lan0"\n[interface.ra]\nenabled = true\nprefixes = [{ from = "wan0", subnet = 16 }]\n`,
    path: "interface[1].ra.prefixes[0].subnet",
    line: 10,
    message: "subnet 16 does not fit in a /60 (it holds 16 /64s: 0 to 15)",
  },
  {
    name: "an RA prefix with both from and prefix",
    text:
      `[[interface]]\nname = "wan0"\n[interface.dhcp6_client]\nia_pd = true\n[[interface]]\nname = "lan0"\n[interface.ra]\nenabled = true\nprefixes = [{ from = "wan0", prefix = "2001:db8::/64" }]\n`,
    path: "interface[1].ra.prefixes[0].prefix",
    line: 9,
    message: '"prefix" does not go with "from"',
  },
  {
    name: "a DHCPv6 client that asks for nothing",
    text: `[[interface]]\nname = "wan0"\n[interface.dhcp6_client]\nia_na = false\n`,
    path: "interface[0].dhcp6_client",
    line: 3,
    message: "ask for something",
  },
  {
    name: "a relayed DHCP subnet that is the interface's own",
    text: LAN +
      `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\nrelay_subnets = [{ subnet = "192.0.2.0/25", pools = ["192.0.2.10-192.0.2.20"] }]\n`,
    path: "interface[0].dhcp.relay_subnets[0].subnet",
    line: 6,
    message: "overlaps the interface's own subnet",
  },
  {
    name: "a relayed DHCP pool outside its subnet",
    text: LAN +
      `[interface.dhcp]\npools = ["192.0.2.100-192.0.2.150"]\nrelay_subnets = [{ subnet = "203.0.113.0/24", pools = ["198.51.100.10-198.51.100.20"] }]\n`,
    path: "interface[0].dhcp.relay_subnets[0].pools[0]",
    line: 6,
    message: "is not a range inside 203.0.113.0/24",
  },
  {
    name: "a DHCPv6 delegated_pool on an interface that takes no delegated prefix",
    text: LAN + `[interface.dhcp6]\ndelegated_pool = "::1000-::1fff"\n`,
    path: "interface[0].dhcp6.delegated_pool",
    line: 5,
    message: "delegated_pool needs a delegated prefix on this interface",
  },
  {
    name: "a DHCPv6 delegated_pool with prefix bits",
    text: LAN + `[interface.dhcp6]\ndelegated_pool = "2001:db8::1000-2001:db8::1fff"\n`,
    path: "interface[0].dhcp6.delegated_pool",
    line: 5,
    message: "give interface identifiers only",
  },
  {
    name: "a DHCP client id that is not hex bytes",
    text:
      `[[interface]]\nname = "wan0"\naddresses = ["dhcp"]\n[interface.dhcp_client]\nclient_id = "xyz"\n`,
    path: "interface[0].dhcp_client.client_id",
    line: 5,
    message: "expected hex bytes",
  },
];

Deno.test("parseConfig() reports each bad config at its key path and line", async (t) => {
  assert.ok(CASES.length >= 25);
  for (const c of CASES) {
    await t.step(c.name, () => {
      const errors = errorsOf(() =>
        c.lab ? parseLabConfig(c.text, "bad.toml") : parseConfig(c.text, "bad.toml")
      );
      const hit = errors.find((e) => e.path === c.path && e.message.includes(c.message));
      assert.ok(
        hit,
        `no error at ${c.path} containing ${JSON.stringify(c.message)}; got:\n${errors.join("\n")}`,
      );
      assert.equal(hit.line, c.line, hit.toString());
      if (c.column !== undefined) assert.equal(hit.column, c.column, hit.toString());
      assert.equal(hit.file, "bad.toml");
    });
  }
});

Deno.test("parseConfig() reports five different errors in one run", () => {
  const text = `[router]
hostname = "edge1"
forwardng = true

[[interface]]
name = "lan0"
mtu = 70000
addresses = ["192.0.2.1/24", "10.0.0.256/8"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[firewall.filter]
input = { policy = "drop", rules = ["-p tcp --dport 22 -j ACCEPT", "-j FOO"] }
`;
  const errors = errorsOf(() => parseConfig(text, "five.toml"));
  assert.deepEqual(
    errors.map((e) => [e.path, e.line]),
    [
      ["router.forwardng", 3],
      ["interface[0].mtu", 7],
      ["interface[0].addresses[1]", 8],
      ["route[0].via", 12],
      ["firewall.filter.input.rules[1]", 15],
    ],
  );
  const lines = new ConfigErrors(errors).toString().split("\n");
  assert.equal(lines.length, 5);
  assert.match(
    lines[0]!,
    /^five\.toml:3:1: router\.forwardng: unknown key "forwardng" \(did you mean "forwarding"\?\)$/,
  );
  assert.match(
    lines[2]!,
    /^five\.toml:8:30: interface\[0\]\.addresses\[1\]: Cannot parse address "10\.0\.0\.256"/,
  );
});
