import assert from "node:assert/strict";
import { ping, traceroute } from "../../../stack/mod.ts";
import type { Icmpv4Event, UdpDatagram } from "../../../stack/mod.ts";
import { formatIpv4, parseIpv4 } from "../../../stack/wire/mod.ts";
import { settle, triangle } from "../../topology/_topology.ts";
import { firewallFrom } from "./_fw.ts";

const MASQ = `
[firewall.filter]
forward = { policy = "drop", rules = [
  "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
  "-i lan0 -o wan0 -j ACCEPT",
] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`;

Deno.test("MASQUERADE on wan0: ping and UDP through the router, h2 sees only the router", async () => {
  const t = triangle();
  const fw = firewallFrom(t.r, MASQ);
  // h2 has no route back to 192.0.2.0/24 other than its default via the
  // router; what matters is the source it sees.
  const seenByH2: string[] = [];
  const echoSrcs = new Set<string>();
  const origHook = t.h2.ipv4.transports.get(1)!;
  t.h2.ipv4.transports.set(1, (nic, pkt, ip) => {
    echoSrcs.add(formatIpv4(ip.src()));
    origHook(nic, pkt, ip);
  });
  const r = await settle(
    t.clock,
    ping(t.h1, { dst: parseIpv4("198.51.100.10"), count: 3 }, () => {}),
  );
  assert.equal(r.received, 3);
  assert.deepEqual([...echoSrcs], ["198.51.100.1"]);

  let reply: string | null = null;
  t.h2.udp.bind(53, (d: UdpDatagram) => {
    seenByH2.push(`${formatIpv4(d.src)}:${d.srcPort}`);
    t.h2.udp.send(53, d.src, d.srcPort, new Uint8Array([1, 2, 3]));
  });
  const sock = t.h1.udp.bind(40000, (d: UdpDatagram) => {
    reply = `${formatIpv4(d.src)}:${d.srcPort}`;
  });
  sock.send(parseIpv4("198.51.100.10"), 53, new Uint8Array([9, 9]));
  t.clock.advance(100);
  assert.deepEqual(seenByH2, ["198.51.100.1:40000"]);
  assert.equal(reply, "198.51.100.10:53");
  // A new flow from outside is not let in.
  const before = fw.stats.dropped;
  t.h2.udp.send(53, parseIpv4("192.0.2.10"), 40001, new Uint8Array([1]));
  t.clock.advance(100);
  assert.equal(fw.stats.dropped, before + 1);
  assert.ok(fw.conntrack.size >= 2);
});

Deno.test("traceroute through MASQUERADE shows the hops (ICMP errors are RELATED and translated)", async () => {
  const t = triangle();
  firewallFrom(t.r, MASQ);
  const hops = await settle(
    t.clock,
    traceroute(t.h1, { dst: parseIpv4("198.51.100.10") }, () => {}),
  );
  // The last hop's port unreachable quotes the masqueraded probe: h1 only
  // recognises it when the quoted packet was translated back.
  const from = hops.map((h) => {
    const a: unknown = h.from[0];
    return typeof a === "number" ? formatIpv4(a) : String(a);
  });
  assert.deepEqual(from, ["192.0.2.1", "198.51.100.10"]);
});

Deno.test("DNAT in PREROUTING changes the routing decision (port forward to the lan)", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv4.nat]\nprerouting = { rules = ["-i wan0 -d 198.51.100.1 -p udp --dport 5353 -j DNAT --to-destination 192.0.2.10:53"] }\n`,
  );
  const got: string[] = [];
  t.h1.udp.bind(53, (d) => {
    got.push(`${formatIpv4(d.src)}:${d.srcPort}>${formatIpv4(d.dst)}:${d.dstPort}`);
    t.h1.udp.send(53, d.src, d.srcPort, new Uint8Array([7]));
  });
  let answer = "";
  t.h2.udp.bind(6000, (d) => answer = `${formatIpv4(d.src)}:${d.srcPort}`);
  t.h2.udp.send(6000, parseIpv4("198.51.100.1"), 5353, new Uint8Array([1]));
  t.clock.advance(100);
  assert.deepEqual(got, ["198.51.100.10:6000>192.0.2.10:53"]);
  assert.equal(answer, "198.51.100.1:5353", "the reply is translated back");
  assert.equal(fw.conntrack.size, 1);
});

Deno.test("REJECT answers with the ICMP code or a TCP reset", async (t) => {
  const cases = [
    { name: "icmp-port-unreachable (default)", rule: "-p udp -j REJECT", code: 3 },
    {
      name: "icmp-admin-prohibited",
      rule: "-p udp -j REJECT --reject-with icmp-admin-prohibited",
      code: 13,
    },
    {
      name: "icmp-host-prohibited",
      rule: "-p udp -j REJECT --reject-with icmp-host-prohibited",
      code: 10,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const tri = triangle();
      const fw = firewallFrom(tri.r, `[firewall.filter]\nforward = { rules = ["${c.rule}"] }\n`);
      const events: Icmpv4Event[] = [];
      tri.h1.ipv4.icmp.listeners.add((e) => events.push({ ...e }));
      tri.h1.udp.send(1234, parseIpv4("198.51.100.10"), 99, new Uint8Array([1]));
      tri.clock.advance(100);
      assert.equal(events.length, 1);
      assert.equal(events[0]!.type, 3);
      assert.equal(events[0]!.code, c.code);
      assert.equal(events[0]!.from, parseIpv4("192.0.2.1"));
      assert.equal(fw.stats.rejectsSent, 1);
    });
  }
  await t.step("tcp-reset", async () => {
    const { tcp, F, IP_OFF } = await import("./_fw.ts");
    const tri = triangle();
    const fw = firewallFrom(
      tri.r,
      `[firewall.filter]\ninput = { rules = ["-p tcp --dport 22 -j REJECT --reject-with tcp-reset"] }\n`,
    );
    const seen: number[] = [];
    tri.h1.ipv4.transports.set(
      6,
      (_n, pkt, ip) => seen.push(pkt.data[ip.off + ip.headerLen() + 13]!),
    );
    const b = tcp({ src: "192.0.2.10", dst: "192.0.2.1", sport: 5555, dport: 22, flags: F.SYN });
    assert.equal(fw.prerouting(b, IP_OFF, tri.rLan, null), true);
    assert.equal(fw.input(b, IP_OFF, tri.rLan, null), false);
    tri.clock.advance(100);
    assert.deepEqual(seen, [F.RST | F.ACK]);
    assert.equal(fw.stats.rejectsSent, 1);
  });
});
