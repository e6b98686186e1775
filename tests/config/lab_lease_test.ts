/**
 * Lab lease probes: examples/dhcp_gateway_lab.toml (a gateway that takes
 * its WAN side by DHCPv4 and DHCPv6 with prefix delegation and serves its
 * LAN) holds every expectation; a lease probe fails, saying why, when the
 * lease is outside the expected range or never comes; and a lease probe on
 * an interface without a DHCP client is a config error. And
 * examples/gateway_dhcp.toml (the same gateway for TAPs, with a default-drop
 * firewall) behind the lab's ISP node serves a LAN host over both families.
 */
import assert from "node:assert/strict";
import { type Config, ConfigErrors, parseConfig, parseLabConfig } from "../../config/mod.ts";
import { runLab } from "../../config/lab_runner.ts";
import { buildStack } from "../../config/build.ts";
import { type MemoryEndpoint, MemoryLink } from "../../link/mod.ts";
import {
  type Dhcpv4Client,
  type Dhcpv6Client,
  type DnsForwarder,
  ManualClock,
  ping,
} from "../../stack/mod.ts";
import {
  DnsType,
  DnsWriter,
  formatIpv4,
  formatIpv6,
  parseDns,
  parseIpv4,
  parseIpv6,
  readDnsName,
} from "../../stack/wire/mod.ts";
import { settle } from "../topology/_topology.ts";

const example = Deno.readTextFileSync(
  new URL("../../examples/dhcp_gateway_lab.toml", import.meta.url),
);

Deno.test("examples/dhcp_gateway_lab.toml: WAN leases (both families, a /56), the LAN host's lease and pings", async () => {
  const r = await runLab(parseLabConfig(example, "dhcp_gateway_lab.toml"), { virtualTime: true });
  const fails = r.outcomes.filter((o) => !o.passed).map((o) => `${o.probe.kind}: ${o.reason}`);
  assert.deepEqual(fails, []);
  assert.equal(r.passed, 5);
  const lines = r.outcomes.flatMap((o) => o.lines).join("\n");
  assert.match(
    lines,
    /lease on wan0: address 2001:db8:f::1[0-9a-f]{2} prefix 2001:db8:100:[0-9a-f:]*\/56/,
  );
  assert.match(lines, /lease on eth0: address 192\.0\.2\.1\d\d dns 192\.0\.2\.1/);
});

Deno.test("a lease probe fails with the reason: outside the range, no delegated prefix, no lease at all", async () => {
  const lab = example
    .replace('expect_in = "192.0.2.100-192.0.2.199"', 'expect_in = "192.0.2.200-192.0.2.250"')
    .replace('expect_prefix_in = "2001:db8:100::/48"', 'expect_prefix_in = "2001:db8:200::/48"')
    .replace(
      'at = "10s"\nlease = "wan0"\nexpect_in',
      'at = "0s"\ntimeout = "1ms"\nlease = "wan0"\nexpect_in',
    );
  const r = await runLab(parseLabConfig(lab, "bad.toml"), { virtualTime: true });
  const reasons = r.outcomes.filter((o) => !o.passed).map((o) => o.reason).sort();
  assert.deepEqual(reasons, [
    "expected a delegated prefix inside 2001:db8:200::/48, got 2001:db8:100::/56",
    "expected an address in 192.0.2.200-192.0.2.250, got 192.0.2.100",
    "no lease on wan0 within 0.001 s",
  ]);
});

Deno.test("a lease probe on an interface that runs no DHCP client is rejected at its key path", () => {
  const lab = example.replace(
    'from = "host"\nat = "20s"\nlease = "eth0"',
    'from = "isp"\nat = "20s"\nlease = "down0"',
  );
  try {
    parseLabConfig(lab, "bad.toml");
    assert.fail("expected ConfigErrors");
  } catch (e) {
    assert.ok(e instanceof ConfigErrors);
    assert.deepEqual(e.errors.map((x) => [x.path, x.message]), [
      ["lab.probe[2].lease", 'isp:down0 runs no DHCPv4 client (addresses = ["dhcp"])'],
    ]);
  }
});

Deno.test("examples/gateway_dhcp.toml behind the lab's ISP: WAN leases, the LAN served by DHCPv4, RA and DHCPv6 through its firewall", async () => {
  const clock = new ManualClock(1_000_000);
  const isp = parseLabConfig(example, "dhcp_gateway_lab.toml").nodes.find((n) => n.name === "isp")!;
  const [ispDown, gwWan] = MemoryLink.pair({ clock, names: ["isp:down0", "gw:wan0"] });
  const [gwLan, hostEth] = MemoryLink.pair({ clock, names: ["gw:lan0", "host:eth0"] });
  const build = (c: Config, links: MemoryEndpoint[]) => {
    let i = 0;
    return buildStack(c, { clock, openLink: () => links[i++]! }).stack;
  };
  const ispStack = build(isp.config, [ispDown]);
  const gw = build(
    parseConfig(
      Deno.readTextFileSync(new URL("../../examples/gateway_dhcp.toml", import.meta.url)),
    ),
    [gwWan, gwLan],
  );
  const host = build(
    parseConfig(
      `[router]\nhostname = "host"\n[[interface]]\nname = "eth0"\naddresses = ["dhcp"]\naccept_ra = true\n` +
        `[interface.dhcp_client]\nprobes = 1\n[interface.dhcp6_client]\nia_na = true\n`,
    ),
    [hostEth],
  );
  clock.advance(60_000);
  const wan6 = gw.services.get("dhcp6-client:wan0") as Dhcpv6Client;
  assert.equal(formatIpv6(wan6.prefix!.prefix), "2001:db8:100::");
  const h4 = host.services.get("dhcp4-client:eth0") as Dhcpv4Client;
  assert.equal(formatIpv4(h4.lease!.address), "192.0.2.100");
  const h6 = host.services.get("dhcp6-client:eth0") as Dhcpv6Client;
  assert.equal(formatIpv6(h6.lease!.address!.address), "2001:db8:100:1::1000");
  for (const dst of [parseIpv4("198.51.100.1"), parseIpv6("2001:db8:f::1")]) {
    const r = await settle(clock, ping(host, { dst, count: 2, timeoutMs: 2000 }));
    assert.equal(r.received, 2, JSON.stringify(r));
  }
  // The host's resolver is the gateway (its DHCPv4 lease says so); the gateway forwards to the
  // DNS server of its own WAN lease, the ISP.
  assert.deepEqual(h4.lease!.dnsServers.map(formatIpv4), ["192.0.2.1"]);
  const answers: string[] = [];
  const ep = host.udp.bindSocket({
    family: 4,
    port: 0,
    onDatagram: (d) => {
      const m = parseDns(d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength));
      if (typeof m === "string") return;
      for (const r of m.answers) {
        const b = d.buffer.data.subarray(
          d.payloadOffset + r.rdataOffset,
          d.payloadOffset + r.rdataOffset + 4,
        );
        answers.push([...b].join("."));
      }
    },
  });
  const w = new DnsWriter(new Uint8Array(512));
  w.header({ id: 1, flags: 0x0100, qd: 1 }).question("www.example.test", DnsType.A);
  ep.send(parseIpv4("192.0.2.1"), 53, w.bytes());
  clock.advance(100);
  assert.deepEqual(answers, ["203.0.113.7"]);
  // The host's DHCP hostname ("host") resolves forward and back at the gateway (domain "lan").
  const ask = (name: string, type: number) => {
    const q = new DnsWriter(new Uint8Array(512));
    q.header({ id: 2, flags: 0x0100, qd: 1 }).question(name, type);
    ep.send(parseIpv4("192.0.2.1"), 53, q.bytes());
    clock.advance(50);
  };
  answers.length = 0;
  ask("host.lan", DnsType.A);
  ask("HOST", DnsType.A);
  assert.deepEqual(answers, ["192.0.2.100", "192.0.2.100"]);
  const names: string[] = [];
  const ep2 = host.udp.bindSocket({
    family: 4,
    port: 0,
    onDatagram: (d) => {
      const b = d.buffer.data.slice(d.payloadOffset, d.payloadOffset + d.payloadLength);
      const m = parseDns(b);
      if (typeof m === "string") return;
      for (const r of m.answers) {
        const n = readDnsName(b, r.rdataOffset);
        if (typeof n !== "string") names.push(n.name);
      }
    },
  });
  const pq = new DnsWriter(new Uint8Array(512));
  pq.header({ id: 3, flags: 0x0100, qd: 1 }).question("100.2.0.192.in-addr.arpa", DnsType.PTR);
  ep2.send(parseIpv4("192.0.2.1"), 53, pq.bytes());
  clock.advance(50);
  assert.deepEqual(names, ["host.lan"]);
  ep2.close();
  const fwd = gw.services.get("dns") as DnsForwarder;
  assert.deepEqual(fwd.upstreams().map((u) => u.address), ["198.51.100.1", "2001:db8:f::1"]);
  ep.close();
  ispStack.close();
  gw.close();
  host.close();
});
