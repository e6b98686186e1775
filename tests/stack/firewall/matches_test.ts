/**
 * The matches iptables rule sets use beyond addresses and ports, on a
 * router's hooks: -m recent, addrtype, iprange, connlimit, hashlimit,
 * statistic, pkttype, mac, length, connmark, -f, --icmp-type any and the
 * 0/0 address — each with its iptables semantics.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import type { Firewall } from "../../../stack/firewall/mod.ts";
import { PacketBuffer } from "../../../stack/wire/packet_buffer.ts";
import { triangle } from "../../topology/_topology.ts";
import { ADDR6, echo6, ip6, NH, readIpv6, routerLab6, udp6 } from "../../topology/_topology6.ts";
import { F, fillL4, firewallFrom, forwardThrough, icmpEcho, IP_OFF, tcp, udp } from "./_fw.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10";

/** A router whose forward chain is `rules` with a DROP policy. */
function forwardOnly(rules: string[], extra = "") {
  const t = triangle();
  const toml = `${extra}[firewall.filter]\nforward = { policy = "drop", rules = [${
    rules.map((r) => JSON.stringify(r)).join(", ")
  }] }\n`;
  const fw = firewallFrom(t.r, toml);
  const out = (b: PacketBuffer) => forwardThrough(fw, b, t.rLan, t.rWan);
  const back = (b: PacketBuffer) => forwardThrough(fw, b, t.rWan, t.rLan);
  return { ...t, fw, out, back, toml };
}

/** A new TCP connection's SYN from `src`. */
const syn = (src: string, sport: number, dport = 22, dst = H2) =>
  tcp({ src, dst, sport, dport, flags: F.SYN });

/** Packets rule `i` of the forward chain matched. */
function hits(fw: Firewall, i: number): number {
  return fw.filter.builtins.get("forward")!.rules[i]!.packets;
}

Deno.test("-m recent: the ssh brute-force pair (update --seconds --hitcount, then set)", () => {
  const t = forwardOnly([
    "-p tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 60 --hitcount 3 --name SSH -j DROP",
    "-p tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name SSH -j ACCEPT",
  ]);
  const tries = (src: string, from: number, n: number) =>
    Array.from({ length: n }, (_, i) => t.out(syn(src, from + i)));
  assert.deepEqual(tries(H1, 1000, 3), [true, true, true], "three new connections a minute");
  assert.deepEqual(tries(H1, 1003, 2), [false, false], "the fourth and later are dropped");
  assert.deepEqual(tries("192.0.2.11", 1000, 3), [true, true, true], "per source");
  // The list survives a reload that keeps the rules (iptables-restore keeps xt_recent's).
  t.fw.reconfigure(parseConfig(t.toml).firewall);
  assert.equal(t.out(syn(H1, 1005)), false, "still remembered after the reload");
  // --update stamped every dropped try too: a minute after the last one, it is forgotten.
  t.clock.advance(60_001);
  assert.equal(t.out(syn(H1, 1006)), true, "a minute later it may connect again");
  assert.equal(t.fw.matchState.recent("SSH").size, 2);
});

Deno.test("-m recent: --rcheck does not stamp, --remove forgets, ! inverts, --rttl compares the TTL", async (t) => {
  await t.step("rcheck and remove", () => {
    const l = forwardOnly([
      "-p udp --dport 1 -m recent --set --name L -j ACCEPT",
      "-p udp --dport 2 -m recent --remove --name L -j ACCEPT",
      "-p udp --dport 3 -m recent --rcheck --name L -j ACCEPT",
      "-p udp --dport 4 -m recent ! --rcheck --name L -j ACCEPT",
    ]);
    const u = (dport: number) => l.out(udp({ src: H1, dst: H2, sport: 9, dport }));
    assert.equal(u(3), false, "not listed yet");
    assert.equal(u(4), true, "! --rcheck: not listed");
    assert.equal(u(1), true);
    assert.equal(u(3), true, "listed");
    assert.equal(u(4), false);
    assert.equal(u(2), true, "--remove matches a listed address");
    assert.equal(u(3), false, "forgotten");
    assert.equal(u(2), false, "--remove of an unlisted address does not match");
  });
  await t.step("rttl", () => {
    const l = forwardOnly([
      "-p udp --dport 1 -m recent --set --name T -j ACCEPT",
      "-p udp --dport 3 -m recent --rcheck --rttl --name T -j ACCEPT",
    ]);
    assert.ok(l.out(udp({ src: H1, dst: H2, sport: 9, dport: 1, ttl: 64 })));
    assert.ok(l.out(udp({ src: H1, dst: H2, sport: 9, dport: 3, ttl: 64 })));
    assert.equal(l.out(udp({ src: H1, dst: H2, sport: 9, dport: 3, ttl: 50 })), false);
  });
});

Deno.test("-m addrtype: LOCAL, BROADCAST, MULTICAST, UNICAST as the kernel's local table says", async (t) => {
  const lab = triangle();
  const fw = firewallFrom(
    lab.r,
    `[firewall.raw]
prerouting = { rules = [
  "-m addrtype --dst-type LOCAL --limit-iface-in -j MARK --set-mark 1",
  "-m addrtype --dst-type LOCAL -j MARK --or-mark 2",
  "-m addrtype --dst-type BROADCAST -j MARK --or-mark 4",
  "-m addrtype --dst-type MULTICAST -j MARK --or-mark 8",
  "-m addrtype --dst-type UNICAST -j MARK --or-mark 16",
  "-m addrtype ! --src-type UNICAST -j MARK --or-mark 32",
] }
`,
  );
  const cases: [string, string, string, number][] = [
    ["the router's lan address, on lan0", H1, "192.0.2.1", 1 | 2],
    ["the router's wan address, on lan0 (not lan0's own)", H1, "198.51.100.1", 2],
    ["the lan's directed broadcast", H1, "192.0.2.255", 4],
    ["the limited broadcast", H1, "255.255.255.255", 4],
    ["an mDNS group", H1, "224.0.0.251", 8],
    ["a far host", H1, H2, 16],
    ["from 0.0.0.0 (BROADCAST by Linux's rule for 0/8)", "0.0.0.0", H2, 16 | 32],
  ];
  for (const [name, src, dst, mark] of cases) {
    await t.step(name, () => {
      const b = udp({ src, dst, sport: 1, dport: 2 });
      assert.ok(fw.prerouting(b, IP_OFF, lab.rLan, null));
      assert.equal(b.mark, mark);
    });
  }
});

Deno.test("-m addrtype over IPv6: LOCAL, MULTICAST, UNICAST", () => {
  const t = routerLab6();
  const fw = firewallFrom(
    t.r,
    `[firewall.ipv6.filter]
input = { policy = "drop", rules = ["-p icmpv6 --icmpv6-type neighbour-solicitation -j ACCEPT", "-m addrtype --dst-type LOCAL -p icmpv6 -j ACCEPT"] }
forward = { policy = "drop", rules = ["-m addrtype --dst-type UNICAST -j ACCEPT"] }
`,
  );
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto: NH.ICMP6, payload: echo6(ADDR6.a, ADDR6.rLan) }),
  );
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 1, 2) }),
  );
  t.clock.advance(1);
  assert.equal(t.b.data().length, 1, "UNICAST forwarded");
  assert.equal(t.a.data().filter((f) => readIpv6(f).l4[0] === 129).length, 1, "LOCAL answered");
  assert.equal(fw.filter6.builtins.get("input")!.rules[1]!.packets, 1);
});

Deno.test("-m iprange: inclusive ranges, !, IPv6", () => {
  const t = forwardOnly([
    "-m iprange --src-range 192.0.2.10-192.0.2.20 -j ACCEPT",
    "-p udp --dport 7 -m iprange ! --dst-range 198.51.100.0-198.51.100.9 -j ACCEPT",
  ]);
  const u = (src: string, dst: string, dport = 1) => t.out(udp({ src, dst, sport: 1, dport }));
  assert.equal(u("192.0.2.10", H2), true, "the low end");
  assert.equal(u("192.0.2.20", H2), true, "the high end");
  assert.equal(u("192.0.2.21", H2), false);
  assert.equal(u("192.0.2.9", "198.51.100.5", 7), false, "inside the inverted range");
  assert.equal(u("192.0.2.9", "198.51.100.10", 7), true);
  const lab = routerLab6();
  firewallFrom(
    lab.r,
    `[firewall.ipv6.filter]\nforward = { policy = "drop", rules = ["-m iprange --src-range 2001:db8:1::8-2001:db8:1::10 -j ACCEPT"] }\n`,
  );
  for (const src of ["2001:db8:1::10", "2001:db8:1::11"]) {
    lab.a.send(ip6({ src, dst: ADDR6.b, proto: NH.UDP, payload: udp6(src, ADDR6.b, 1, 2) }));
  }
  lab.clock.advance(1);
  assert.deepEqual(lab.b.data().map((f) => readIpv6(f).src), ["2001:db8:1::10"]);
});

Deno.test("-m connlimit: at most N connections per source network; closed ones stop counting", () => {
  const t = forwardOnly([
    "-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
    "-p tcp --syn -m connlimit --connlimit-above 2 --connlimit-mask 24 -j DROP",
    "-p tcp --syn -j ACCEPT",
  ]);
  assert.ok(t.out(syn(H1, 1000, 80)));
  assert.ok(t.out(syn("192.0.2.11", 1001, 80)), "another host of the same /24: two");
  assert.equal(t.out(syn(H1, 1002, 80)), false, "a third of that /24 is over the limit");
  assert.equal(hits(t.fw, 1), 1);
  assert.ok(t.out(syn("203.0.113.5", 1000, 80)), "another network counts for itself");
  // The server resets one: it closes, and a new connection fits again.
  assert.ok(
    t.back(tcp({ src: H2, dst: H1, sport: 80, dport: 1000, flags: F.RST | F.ACK, ack: 1001 })),
  );
  assert.ok(t.out(syn(H1, 1003, 80)), "the reset connection no longer counts");
});

Deno.test("-m connlimit --connlimit-upto and --connlimit-daddr", () => {
  const t = forwardOnly([
    "-p tcp --syn -m connlimit --connlimit-upto 1 --connlimit-daddr -j ACCEPT",
  ]);
  assert.ok(t.out(syn(H1, 1000, 80)));
  assert.equal(t.out(syn("192.0.2.11", 1000, 80)), false, "a second connection to the same server");
  assert.ok(t.out(syn(H1, 1001, 80, "198.51.100.20")), "another server");
});

Deno.test("-m hashlimit: a bucket per source, --hashlimit-above, idle buckets expire", () => {
  const t = forwardOnly([
    "-p udp --dport 53 -m hashlimit --hashlimit-above 2/sec --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-name dns -j DROP",
    "-p udp --dport 53 -j ACCEPT",
  ]);
  const q = (src: string) => t.out(udp({ src, dst: H2, sport: 5000, dport: 53 }));
  assert.deepEqual([q(H1), q(H1), q(H1), q(H1)], [true, true, false, false], "burst 2, then over");
  assert.deepEqual([q("192.0.2.11"), q("192.0.2.11")], [true, true], "its own bucket");
  t.clock.advance(500);
  assert.deepEqual([q(H1), q(H1)], [true, false], "one token back in half a second");
  const table = t.fw.matchState.hashlimit(4, "dns", {
    perSecond: 0,
    burst: 0,
    expireMs: 0,
    max: 0,
  });
  assert.equal(table.size, 2);
  t.clock.advance(11_000);
  q(H1);
  assert.equal(table.size, 1, "the idle bucket expired (10 s default)");
});

Deno.test("-m hashlimit --hashlimit-upto over IPv6 with a /64 source mask", () => {
  const t = routerLab6();
  firewallFrom(
    t.r,
    `[firewall.ipv6.filter]\nforward = { policy = "drop", rules = ["-m hashlimit --hashlimit-upto 1/min --hashlimit-burst 1 --hashlimit-mode srcip --hashlimit-srcmask 64 --hashlimit-name h6 -j ACCEPT"] }\n`,
  );
  for (const src of ["2001:db8:1::10", "2001:db8:1::20"]) {
    t.a.send(ip6({ src, dst: ADDR6.b, proto: NH.UDP, payload: udp6(src, ADDR6.b, 1, 2) }));
  }
  t.clock.advance(1);
  assert.equal(t.b.data().length, 1, "both sources are one /64: one bucket");
});

Deno.test("-m statistic: nth counts as the kernel does, random follows its probability", async (t) => {
  // The differential against the kernel (tests/e2e/firewall_diff_run.ts)
  // showed `--every 2 --packet 0` dropping the first ICMP packet.
  await t.step("--every 3 --packet 0 matches the 1st, 4th, 7th", () => {
    const l = forwardOnly(["-m statistic --mode nth --every 3 --packet 0 -j ACCEPT"]);
    const got = Array.from(
      { length: 9 },
      (_, i) => l.out(udp({ src: H1, dst: H2, sport: 1000 + i, dport: 1 })),
    );
    assert.deepEqual(got, [true, false, false, true, false, false, true, false, false]);
  });
  await t.step("--every 3 --packet 2 matches the 3rd, 6th", () => {
    const l = forwardOnly(["-m statistic --mode nth --every 3 --packet 2 -j ACCEPT"]);
    const got = Array.from(
      { length: 7 },
      (_, i) => l.out(udp({ src: H1, dst: H2, sport: 1000 + i, dport: 1 })),
    );
    assert.deepEqual(got, [false, false, true, false, false, true, false]);
  });
  await t.step("random 0.25 over 4000 packets; 0 and 1 exactly", () => {
    const l = forwardOnly([
      "-p udp --dport 1 -m statistic --mode random --probability 0.25 -j ACCEPT",
      "-p udp --dport 2 -m statistic --mode random --probability 0 -j ACCEPT",
      "-p udp --dport 3 -m statistic --mode random --probability 1 -j ACCEPT",
    ]);
    const buf = new PacketBuffer();
    let n = 0;
    for (let i = 0; i < 4000; i++) {
      if (l.out(udp({ src: H1, dst: H2, sport: 1 + (i % 60000), dport: 1 }, buf))) n++;
    }
    assert.ok(n > 850 && n < 1150, `${n} of 4000 at 0.25`);
    assert.equal(l.out(udp({ src: H1, dst: H2, sport: 7, dport: 2 })), false);
    assert.equal(l.out(udp({ src: H1, dst: H2, sport: 7, dport: 3 })), true);
  });
});

Deno.test("-m pkttype and -m mac read the received frame's Ethernet header", async (t) => {
  const l = forwardOnly([
    "-m pkttype --pkt-type broadcast -j DROP",
    "-m pkttype --pkt-type multicast -j DROP",
    "-m mac --mac-source 02:00:5e:00:00:99 -j DROP",
    "-m pkttype --pkt-type unicast -j ACCEPT",
  ]);
  const frame = (dstMac: number[], srcMac: number[]) => {
    const b = udp({ src: H1, dst: H2, sport: 1, dport: 2 });
    b.data.set(dstMac, IP_OFF - 14);
    b.data.set(srcMac, IP_OFF - 8);
    return b;
  };
  const me = [2, 0, 0x5e, 0, 0, 1], host = [2, 0, 0x5e, 0, 0, 2];
  await t.step("unicast", () => assert.ok(l.out(frame(me, host))));
  await t.step(
    "broadcast",
    () => assert.equal(l.out(frame([255, 255, 255, 255, 255, 255], host)), false),
  );
  await t.step(
    "multicast",
    () => assert.equal(l.out(frame([1, 0, 0x5e, 0, 0, 0xfb], host)), false),
  );
  await t.step("the listed source MAC", () => {
    assert.equal(l.out(frame(me, [2, 0, 0x5e, 0, 0, 0x99])), false);
    assert.equal(hits(l.fw, 2), 1);
  });
});

Deno.test("-m length, -f, --icmp-type any, -s 0/0", async (t) => {
  await t.step("--length is the IP datagram's length", () => {
    const l = forwardOnly(["-m length --length 0:100 -j ACCEPT"]);
    assert.ok(l.out(udp({ src: H1, dst: H2, sport: 1, dport: 2, payload: 72 })), "100 bytes");
    assert.equal(l.out(udp({ src: H1, dst: H2, sport: 1, dport: 2, payload: 73 })), false);
  });
  await t.step("-f: fragments after the first", () => {
    const l = forwardOnly(["-f -j DROP", "-j ACCEPT"]);
    const later = udp({ src: H1, dst: H2, sport: 1, dport: 2 });
    later.view.setUint16(IP_OFF + 6, 0x2000 | 185); // MF, offset 1480
    later.view.setUint16(IP_OFF + 10, 0);
    fillL4(later);
    assert.equal(l.out(later), false);
    assert.ok(l.out(udp({ src: H1, dst: H2, sport: 1, dport: 2 })), "a whole datagram");
  });
  await t.step("--icmp-type any matches every ICMP type; ! any none", () => {
    const l = forwardOnly([
      "-p icmp ! --icmp-type any -j DROP",
      "-p icmp --icmp-type any -j ACCEPT",
    ]);
    assert.ok(l.out(icmpEcho({ src: H1, dst: H2, id: 1 })));
    assert.ok(l.out(icmpEcho({ src: H1, dst: H2, id: 2, type: 13 })));
    assert.equal(hits(l.fw, 0), 0);
  });
  await t.step("-s 0/0 matches both families", () => {
    const l = routerLab6();
    const fw = firewallFrom(
      l.r,
      `[firewall.filter]\nforward = { rules = ["-s 0/0 -d 0/0 -j DROP"] }\n`,
    );
    l.a.send(
      ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 1, 2) }),
    );
    l.clock.advance(1);
    assert.equal(l.b.data().length, 0);
    assert.equal(fw.filter6.builtins.get("forward")!.rules[0]!.packets, 1);
    const v4 = forwardOnly(["-s 0/0 -j ACCEPT"]);
    assert.ok(v4.out(udp({ src: H1, dst: H2, sport: 1, dport: 2 })));
  });
});
