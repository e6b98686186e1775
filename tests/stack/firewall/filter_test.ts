import assert from "node:assert/strict";
import { triangle } from "../../topology/_topology.ts";
import { F, firewallFrom, forwardThrough, icmpEcho, IP_OFF, tcp, udp } from "./_fw.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10";

Deno.test("user chains: jump, RETURN, fall through to the policy; counters and dump", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `
[firewall.filter]
forward = { policy = "drop", rules = [
  "-p udp -j udp_in",
  "-p icmp -j ACCEPT",
] }
udp_in = { rules = [
  "-p udp --dport 53 -j ACCEPT",
  "-p udp --dport 1000:2000 -j RETURN",
  "-p udp -m multiport --dports 7,9 -j DROP",
] }
`,
  );
  const cases: [string, number, boolean][] = [
    ["53 is accepted in the user chain", 53, true],
    ["1500 returns and meets the policy", 1500, false],
    ["9 is dropped in the user chain", 9, false],
    ["4000 falls off the user chain and meets the policy", 4000, false],
  ];
  for (const [name, dport, ok] of cases) {
    assert.equal(
      forwardThrough(fw, udp({ src: H1, dst: H2, sport: 999, dport }), t.rLan, t.rWan),
      ok,
      name,
    );
  }
  assert.ok(forwardThrough(fw, icmpEcho({ src: H1, dst: H2, id: 1 }), t.rLan, t.rWan));
  const d = fw.dump();
  // UDP is 4 packets of 32 bytes; ICMP one of 36.
  assert.match(d, /^:FORWARD DROP \[2:64\]$/m);
  assert.match(d, /^:udp_in - \[0:0\]$/m);
  assert.match(d, /^\[4:128\] -A FORWARD -p udp -j udp_in$/m);
  assert.match(d, /^\[1:36\] -A FORWARD -p icmp -j ACCEPT$/m);
  assert.match(d, /^\[1:32\] -A udp_in -p udp --dport 53 -j ACCEPT$/m);
  assert.match(d, /^\[1:32\] -A udp_in -p udp --dport 1000:2000 -j RETURN$/m);
  assert.match(d, /^\[1:32\] -A udp_in -p udp -m multiport --dports 7,9 -j DROP$/m);
  assert.equal(fw.stats.dropped, 3);
});

Deno.test("matches: addresses, interfaces with + and !, TCP flags, ICMP type, mark", async (t) => {
  const tri = triangle();
  const fw = firewallFrom(
    tri.r,
    `
[firewall.filter]
forward = { policy = "drop", rules = [
  "-s 192.0.2.0/24 ! -d 198.51.100.20 -i lan+ -p tcp --syn -j ACCEPT",
  "-i ! wan0 -p icmp --icmp-type echo-request -j MARK --set-mark 0x10",
  "-m mark --mark 0x10 -j ACCEPT",
] }
`,
  );
  const cases: [string, () => boolean, boolean][] = [
    [
      "SYN from the lan",
      () =>
        forwardThrough(
          fw,
          tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.SYN }),
          tri.rLan,
          tri.rWan,
        ),
      true,
    ],
    [
      "SYN to the excluded address",
      () =>
        forwardThrough(
          fw,
          tcp({ src: H1, dst: "198.51.100.20", sport: 1, dport: 2, flags: F.SYN }),
          tri.rLan,
          tri.rWan,
        ),
      false,
    ],
    [
      "ACK is not --syn",
      () =>
        forwardThrough(
          fw,
          tcp({ src: H1, dst: H2, sport: 3, dport: 2, flags: F.ACK }),
          tri.rLan,
          tri.rWan,
        ),
      false,
    ],
    [
      "SYN from the wan",
      () =>
        forwardThrough(
          fw,
          tcp({ src: H1, dst: H2, sport: 4, dport: 2, flags: F.SYN }),
          tri.rWan,
          tri.rLan,
        ),
      false,
    ],
    [
      "echo request marked then accepted",
      () => forwardThrough(fw, icmpEcho({ src: H1, dst: H2, id: 3 }), tri.rLan, tri.rWan),
      true,
    ],
    [
      "echo request from wan0 not marked",
      () => forwardThrough(fw, icmpEcho({ src: H2, dst: H1, id: 4 }), tri.rWan, tri.rLan),
      false,
    ],
  ];
  for (const [name, run, want] of cases) await t.step(name, () => assert.equal(run(), want));
});

Deno.test("-m limit is a token bucket on the clock", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.filter]\nforward = { policy = "drop", rules = ["-m limit --limit 2/second --limit-burst 3 -j ACCEPT"] }\n`,
  );
  const send = (i: number) =>
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 2000 + i, dport: 9 }), t.rLan, t.rWan);
  const burst = [0, 1, 2, 3, 4].map(send);
  assert.deepEqual(burst, [true, true, true, false, false]);
  t.clock.advance(500);
  assert.deepEqual([send(5), send(6)], [true, false]);
  t.clock.advance(1000);
  assert.deepEqual([send(7), send(8), send(9)], [true, true, false]);
});

Deno.test("a filter on both scopes: shared rules first, a DROP policy from either wins", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `
[firewall.filter]
forward = { policy = "drop", rules = ["-p udp --dport 53 -j ACCEPT", "-p tcp -s 2001:db8::/32 -j ACCEPT"] }
[firewall.ipv4.filter]
forward = { rules = ["-p udp --dport 54 -j ACCEPT"] }
`,
  );
  assert.ok(forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 53 }), t.rLan, t.rWan));
  assert.ok(forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 54 }), t.rLan, t.rWan));
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 55 }), t.rLan, t.rWan),
    false,
  );
  // The IPv6 rule is not in the IPv4 tables, only in the IPv6 ones.
  const [v4, v6] = fw.dump().split("# Generated by tapir (IPv6)");
  assert.equal(v4!.includes("2001:db8"), false);
  assert.match(v6!, /-A FORWARD -p tcp -s 2001:db8::\/32 -j ACCEPT/);
});

Deno.test("trace logs every table, chain and rule a traced packet passes, and the verdict", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `
[firewall]
trace = "-p udp --dport 53"
[firewall.filter]
forward = { policy = "drop", rules = ["-p tcp -j ACCEPT", "-p udp -j check"] }
check = { rules = ["-p udp --dport 53 -j LOG --log-prefix 'dns: '", "-j RETURN"] }
[firewall.ipv4.nat]
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`,
  );
  const lines: string[] = [];
  const logged: string[] = [];
  fw.traceSink = (l) => lines.push(l);
  fw.logSink = (l) => logged.push(l);
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 53 }), t.rLan, t.rWan),
    false,
  );
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 54 }), t.rLan, t.rWan),
    false,
  );
  const heads = lines.map((l) => l.split(" ").slice(0, 2).join(" "));
  assert.deepEqual(heads, [
    "TRACE: filter:FORWARD:rule:2",
    "TRACE: filter:check:rule:1",
    "TRACE: filter:check:rule:2",
    "TRACE: filter:check:return:2",
    "TRACE: filter:FORWARD:policy:3",
    "TRACE: filter:FORWARD:verdict:DROP",
  ]);
  assert.match(
    lines[0]!,
    /IN=lan0 OUT=wan0 SRC=192\.0\.2\.10 DST=198\.51\.100\.10 LEN=32 .*PROTO=UDP SPT=1 DPT=53/,
  );
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, /^dns: IN=lan0 OUT=wan0 SRC=192\.0\.2\.10/);
});

Deno.test("TCPMSS lowers the MSS of a SYN, checksum intact", async () => {
  const { checksumsOk } = await import("./_fw.ts");
  const t = triangle({ wanMtu: 1400 });
  const fw = firewallFrom(
    t.r,
    `[firewall.filter]\nforward = { rules = ["-p tcp --syn -j TCPMSS --clamp-mss-to-pmtu", "-p tcp --syn -j TCPMSS --set-mss 1300"] }\n`,
  );
  const b = tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.SYN, mss: 1460 });
  assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
  assert.equal(b.view.getUint16(IP_OFF + 42), 1300);
  assert.ok(checksumsOk(b));
  const small = tcp({ src: H1, dst: H2, sport: 3, dport: 2, flags: F.SYN, mss: 536 });
  assert.ok(forwardThrough(fw, small, t.rLan, t.rWan));
  assert.equal(small.view.getUint16(IP_OFF + 42), 536, "never raised");
});

Deno.test("a rule without -j counts what it matches and the walk goes on (iptables accounting)", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.filter]\nforward = { policy = "drop", rules = ["-p udp --dport 53", "-p udp -j ACCEPT"] }\n`,
  );
  assert.ok(
    forwardThrough(
      fw,
      udp({ src: "192.0.2.10", dst: "198.51.100.10", sport: 1, dport: 53 }),
      t.rLan,
      t.rWan,
    ),
  );
  assert.ok(
    forwardThrough(
      fw,
      udp({ src: "192.0.2.10", dst: "198.51.100.10", sport: 1, dport: 54 }),
      t.rLan,
      t.rWan,
    ),
  );
  const dump = fw.dump();
  assert.match(dump, /\[1:\d+\] -A FORWARD -p udp --dport 53\n/);
  assert.match(dump, /\[2:\d+\] -A FORWARD -p udp -j ACCEPT\n/);
});
