/**
 * NAT for IPv6 through an in-memory gateway: MASQUERADE, SNAT, DNAT,
 * REDIRECT and NETMAP as ip6tables does them (checksums patched, ICMPv6
 * errors translated back), and the stateless NPTv6 of RFC 6296 (SNPT /
 * DNPT in the mangle table), whose mapping leaves every checksum as it was.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../../config/mod.ts";
import { Firewall } from "../../../stack/firewall/mod.ts";
import { Npt } from "../../../stack/firewall/nat.ts";
import type { Stack } from "../../../stack/mod.ts";
import { formatIpv6, parseIpv6 } from "../../../stack/wire/mod.ts";
import {
  ADDR6,
  checksum6,
  echo6,
  icmp6,
  ip6,
  NH,
  readIpv6,
  route6,
  routerLab6,
  T6,
  udp6,
} from "../../topology/_topology6.ts";
import { tcp6 } from "./_fw.ts";

/** Build and install a firewall from `[firewall]` TOML on `stack`. */
function fw(stack: Stack, toml: string): Firewall {
  const f = new Firewall(stack, parseConfig(toml).firewall);
  f.install();
  stack.firewall = f;
  return f;
}

const MASQ = `[firewall.ipv6.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`;

/** The one frame `host` received since the last clear, read; its L4 checksum must hold. */
function only(host: { data(): Uint8Array[]; clear(): void }) {
  const got = host.data();
  assert.equal(got.length, 1, `one packet arrived (${got.length})`);
  host.clear();
  const ip = readIpv6(got[0]!);
  assert.equal(checksum6(ip.src, ip.dst, ip.proto, ip.l4), 0, "the L4 checksum is valid");
  return { ...ip, sport: (ip.l4[0]! << 8) | ip.l4[1]!, dport: (ip.l4[2]! << 8) | ip.l4[3]! };
}

Deno.test("NAT66 MASQUERADE: UDP leaves with the router's address and its replies come back", () => {
  const t = routerLab6();
  const f = fw(t.r, MASQ);
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 4000, 53) }),
  );
  t.clock.advance(1);
  const out = only(t.b);
  assert.equal(out.src, ADDR6.rWan, "b sees only the router");
  assert.equal(out.sport, 4000, "the port is kept while free");
  t.b.send(
    ip6({
      src: ADDR6.b,
      dst: ADDR6.rWan,
      proto: NH.UDP,
      payload: udp6(ADDR6.b, ADDR6.rWan, 53, 4000),
    }),
  );
  t.clock.advance(1);
  const back = only(t.a);
  assert.equal(back.dst, ADDR6.a);
  assert.equal(back.dport, 4000);
  const [c] = f.connections().filter((x) => x.family === 6);
  assert.equal(c!.srcNat, true);
  assert.equal(c!.reply.dst, ADDR6.rWan);
  assert.match(f.dump(), /\[1:\d+\] -A POSTROUTING -o wan0 -j MASQUERADE/);
});

Deno.test("NAT66 MASQUERADE: a second host on the same port gets another port; TCP and echo ids too", async (t) => {
  const lab = routerLab6();
  fw(lab.r, MASQ);
  await t.step("TCP: the port of the second connection changes, the checksum follows", () => {
    for (const src of [ADDR6.a, ADDR6.c]) {
      lab.a.send(
        ip6({ src, dst: ADDR6.b, proto: NH.TCP, payload: tcp6(src, ADDR6.b, 40000, 80, 0x02) }),
      );
    }
    lab.clock.advance(1);
    const got = lab.b.data().map((x) => readIpv6(x));
    lab.b.clear();
    assert.equal(got.length, 2);
    const ports = got.map((x) => (x.l4[0]! << 8) | x.l4[1]!);
    assert.equal(ports[0], 40000);
    assert.notEqual(ports[1], 40000);
    assert.ok(ports[1]! >= 1024, `${ports[1]} in Linux's default range`);
    for (const x of got) {
      assert.equal(x.src, ADDR6.rWan);
      assert.equal(checksum6(x.src, x.dst, NH.TCP, x.l4), 0, "TCP checksum valid");
    }
  });
  await t.step("ICMPv6 echo: the identifier is the port", () => {
    // c first, so that a's echo is the one whose identifier changes.
    for (const src of [ADDR6.c, ADDR6.a]) {
      lab.a.send(ip6({ src, dst: ADDR6.b, proto: NH.ICMP6, payload: echo6(src, ADDR6.b, 7) }));
    }
    lab.clock.advance(1);
    const got = lab.b.data().map((x) => readIpv6(x));
    lab.b.clear();
    const ids = got.map((x) => (x.l4[4]! << 8) | x.l4[5]!);
    assert.equal(ids[0], 7);
    assert.notEqual(ids[1], 7);
    for (const x of got) assert.equal(checksum6(x.src, x.dst, NH.ICMP6, x.l4), 0);
    // The reply to the second comes back to a with its own identifier.
    const reply = icmp6(
      ADDR6.b,
      ADDR6.rWan,
      T6.ECHO_REPLY,
      0,
      (ids[1]! << 16) | 1,
      got[1]!.l4.subarray(8),
    );
    lab.b.send(ip6({ src: ADDR6.b, dst: ADDR6.rWan, proto: NH.ICMP6, payload: reply }));
    lab.clock.advance(1);
    const back = readIpv6(lab.a.data().at(-1)!);
    assert.equal(back.dst, ADDR6.a);
    assert.equal((back.l4[4]! << 8) | back.l4[5]!, 7);
    assert.equal(checksum6(back.src, back.dst, NH.ICMP6, back.l4), 0);
  });
});

Deno.test("NAT66 SNAT to a port range: tuples stay unique, an exhausted range drops and counts", () => {
  const t = routerLab6();
  const f = fw(
    t.r,
    `[firewall.ipv6.nat]\npostrouting = { rules = ["-o wan0 -p udp -j SNAT --to-source [2001:db8:2::99]:2000-2001"] }\n`,
  );
  for (const sport of [5000, 5001, 5002]) {
    t.a.send(
      ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, sport, 53),
      }),
    );
  }
  t.clock.advance(1);
  const got = t.b.data().map((x) => readIpv6(x));
  assert.equal(got.length, 2, "the third finds no free port");
  assert.deepEqual(got.map((x) => x.src), ["2001:db8:2::99", "2001:db8:2::99"]);
  assert.deepEqual(got.map((x) => (x.l4[0]! << 8) | x.l4[1]!).sort(), [2000, 2001]);
  assert.equal(f.stats.natPortsExhausted, 1);
  assert.equal(f.conntrack6.size, 2);
});

Deno.test("NAT66 DNAT: a port forward from the WAN address to a LAN host, and back", () => {
  const t = routerLab6();
  fw(
    t.r,
    `[firewall.ipv6.nat]\nprerouting = { rules = ["-i wan0 -d ${ADDR6.rWan} -p tcp --dport 8080 -j DNAT --to-destination [${ADDR6.a}]:80"] }\n`,
  );
  t.b.send(
    ip6({
      src: ADDR6.b,
      dst: ADDR6.rWan,
      proto: NH.TCP,
      payload: tcp6(ADDR6.b, ADDR6.rWan, 50000, 8080, 0x02),
    }),
  );
  t.clock.advance(1);
  const inbound = only(t.a);
  assert.equal(inbound.dst, ADDR6.a);
  assert.equal(inbound.dport, 80);
  assert.equal(inbound.src, ADDR6.b, "the source is kept");
  t.a.send(
    ip6({
      src: ADDR6.a,
      dst: ADDR6.b,
      proto: NH.TCP,
      payload: tcp6(ADDR6.a, ADDR6.b, 80, 50000, 0x12, { seq: 7000, ack: 1001 }),
    }),
  );
  t.clock.advance(1);
  const reply = only(t.b);
  assert.equal(reply.src, ADDR6.rWan);
  assert.equal(reply.sport, 8080);
});

Deno.test("NAT66 REDIRECT and NETMAP choose the addresses ip6tables does", async (t) => {
  await t.step("REDIRECT: to the ingress NIC's global address", () => {
    const lab = routerLab6();
    const f = fw(
      lab.r,
      `[firewall.ipv6.nat]\nprerouting = { rules = ["-i lan0 -p udp --dport 53 -j REDIRECT --to-ports 5353"] }\n`,
    );
    lab.a.send(
      ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 4000, 53) }),
    );
    lab.clock.advance(1);
    assert.equal(lab.b.data().length, 0, "delivered to the router, not forwarded");
    const [c] = f.connections().filter((x) => x.family === 6);
    assert.deepEqual(c!.reply, { src: ADDR6.rLan, dst: ADDR6.a, sport: 5353, dport: 4000 });
    assert.equal(c!.dstNat, true);
  });
  await t.step("NETMAP: the prefix replaced, the host bits kept", () => {
    const lab = routerLab6();
    fw(
      lab.r,
      `[firewall.ipv6.nat]\npostrouting = { rules = ["-o wan0 -s 2001:db8:1::/64 -j NETMAP --to 2001:db8:2:77::/64"] }\n`,
    );
    lab.a.send(
      ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 4000, 53) }),
    );
    lab.clock.advance(1);
    assert.equal(only(lab.b).src, "2001:db8:2:77::10");
  });
});

Deno.test("NAT66: an ICMPv6 error about a masqueraded flow is translated back, quoted packet included", () => {
  const t = routerLab6();
  fw(t.r, MASQ);
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 4000, 9) }),
  );
  t.clock.advance(1);
  const sent = t.b.data()[0]!;
  t.b.clear();
  // b answers "port unreachable", quoting the packet as it saw it (from the router).
  const quoted = sent.subarray(14);
  t.b.send(
    ip6({
      src: ADDR6.b,
      dst: ADDR6.rWan,
      proto: NH.ICMP6,
      payload: icmp6(ADDR6.b, ADDR6.rWan, T6.DEST_UNREACH, 4, 0, quoted),
    }),
  );
  t.clock.advance(1);
  const errs = t.a.icmp6NoControl();
  assert.equal(errs.length, 1, "the RELATED error reaches a");
  const e = readIpv6(errs[0]!);
  assert.equal(e.dst, ADDR6.a);
  assert.equal(e.src, ADDR6.b);
  assert.equal(checksum6(e.src, e.dst, NH.ICMP6, e.l4), 0, "ICMPv6 checksum recomputed");
  const inner = e.l4.subarray(8);
  assert.equal(formatIpv6(inner.subarray(8, 24)), ADDR6.a, "the quoted source is a again");
  assert.equal(formatIpv6(inner.subarray(24, 40)), ADDR6.b);
  const iudp = inner.subarray(40);
  assert.equal((iudp[0]! << 8) | iudp[1]!, 4000);
  assert.equal(checksum6(ADDR6.a, ADDR6.b, NH.UDP, iudp), 0, "the quoted UDP checksum holds");
});

Deno.test("NAT66: the shared nat table applies to IPv6 too", () => {
  const t = routerLab6();
  fw(t.r, `[firewall.nat]\npostrouting = { rules = ["-o wan0 -j MASQUERADE"] }\n`);
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 4000, 53) }),
  );
  t.clock.advance(1);
  assert.equal(only(t.b).src, ADDR6.rWan);
});

Deno.test("NAT66 MASQUERADE: connections go with the WAN address; no address id is left behind", () => {
  const t = routerLab6();
  const f = fw(t.r, MASQ);
  for (const sport of [4000, 4001]) {
    t.a.send(
      ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, sport, 53),
      }),
    );
  }
  t.clock.advance(1);
  assert.equal(f.conntrack6.size, 2);
  assert.equal(f.ipv6AddressesHeld, 3, "a, b and the router's WAN address");
  t.r.ipv6.removeAddress(t.rWan, parseIpv6(ADDR6.rWan));
  assert.equal(f.conntrack6.size, 0);
  assert.equal(f.conntrack6.stats.masqueradeFlushed, 2);
  assert.equal(f.ipv6AddressesHeld, 0, "every id released with its connections");
});

Deno.test("NAT66: address ids of expired NATed connections are released (no leak)", () => {
  const t = routerLab6();
  const f = fw(
    t.r,
    MASQ +
      `prerouting = { rules = ["-i wan0 -p udp --dport 7000 -j DNAT --to-destination [${ADDR6.a}]:7"] }\n`,
  );
  for (let i = 0; i < 50; i++) {
    t.a.send(
      ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, 10000 + i, 53),
      }),
    );
  }
  t.b.send(
    ip6({
      src: ADDR6.b,
      dst: ADDR6.rWan,
      proto: NH.UDP,
      payload: udp6(ADDR6.b, ADDR6.rWan, 1, 7000),
    }),
  );
  t.clock.advance(1);
  assert.equal(f.conntrack6.size, 51);
  t.clock.advance(31_000);
  assert.equal(f.conntrack6.size, 0);
  assert.equal(f.ipv6AddressesHeld, 0);
});

// ------------------------------------------------------------ NPTv6

const NPT = `
[firewall.ipv6.mangle]
postrouting = { rules = ["-o wan0 -s 2001:db8:1::/48 -j SNPT --src-pfx 2001:db8:1::/48 --dst-pfx 2001:db8:99::/48"] }
prerouting = { rules = ["-i wan0 -d 2001:db8:99::/48 -j DNPT --src-pfx 2001:db8:99::/48 --dst-pfx 2001:db8:1::/48"] }
`;

Deno.test("NPTv6: RFC 6296 Appendix B's example mapping", () => {
  const npt = new Npt(parseIpv6("fd01:203:405::"), 48, parseIpv6("2001:db8:1::"), 48);
  const a = parseIpv6("fd01:203:405:1::1234");
  assert.ok(npt.map(a, 0));
  assert.equal(formatIpv6(a), "2001:db8:1:d550::1234");
  const back = new Npt(parseIpv6("2001:db8:1::"), 48, parseIpv6("fd01:203:405::"), 48);
  assert.ok(back.map(a, 0));
  assert.equal(formatIpv6(a), "fd01:203:405:1::1234");
});

Deno.test("NPTv6: SNPT/DNPT map the prefix both ways; the TCP checksum is unchanged and still valid", () => {
  const t = routerLab6();
  const f = fw(t.r, NPT);
  // The mapped address, computed by RFC 6296's arithmetic independently of the stack.
  const mapped = parseIpv6(ADDR6.a);
  new Npt(parseIpv6("2001:db8:1::"), 48, parseIpv6("2001:db8:99::"), 48).map(mapped, 0);
  const ext = formatIpv6(mapped);
  assert.match(ext, /^2001:db8:99:/);
  const seg = tcp6(ADDR6.a, ADDR6.b, 40000, 80, 0x18, { payload: 300 });
  const sum = (seg[16]! << 8) | seg[17]!;
  t.a.send(ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.TCP, payload: seg }));
  t.clock.advance(1);
  const out = only(t.b);
  assert.equal(out.src, ext);
  assert.equal((out.l4[16]! << 8) | out.l4[17]!, sum, "the checksum field was not touched");
  assert.deepEqual(out.l4, seg, "nothing of the segment changed");
  // The answer to the mapped address comes back to a, again untouched.
  const ans = tcp6(ADDR6.b, ext, 80, 40000, 0x10, { seq: 9000, ack: 1301, payload: 100 });
  t.b.send(ip6({ src: ADDR6.b, dst: ext, proto: NH.TCP, payload: ans }));
  t.clock.advance(1);
  const back = only(t.a);
  assert.equal(back.dst, ADDR6.a, "the prefix is mapped back");
  assert.deepEqual(back.l4, ans);
  // Stateless: no NAT binding was made for it.
  assert.ok(f.connections().every((c) => !c.srcNat && !c.dstNat));
});

Deno.test("NPTv6: ICMPv6 echo crosses both ways with its checksum as sent", () => {
  const t = routerLab6();
  fw(t.r, NPT);
  const echo = echo6(ADDR6.a, ADDR6.b, 0x42, 3, 40);
  t.a.send(ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.ICMP6, payload: echo }));
  t.clock.advance(1);
  const out = only(t.b);
  assert.deepEqual(out.l4, echo);
});

Deno.test("NPTv6 with /64 prefixes adjusts the first word after the prefix; an all-ones one is dropped and counted", () => {
  const t = routerLab6();
  const f = fw(
    t.r,
    `[firewall.ipv6.mangle]\npostrouting = { rules = ["-o wan0 -j SNPT --src-pfx 2001:db8:1::/64 --dst-pfx 2001:db8:2:5::/64"] }\n`,
  );
  t.a.send(
    ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 1, 2) }),
  );
  t.clock.advance(1);
  const out = only(t.b);
  const want = parseIpv6(ADDR6.a);
  new Npt(parseIpv6("2001:db8:1::"), 64, parseIpv6("2001:db8:2:5::"), 64).map(want, 0);
  assert.equal(out.src, formatIpv6(want));
  assert.match(out.src, /^2001:db8:2:5:/);
  assert.notEqual(out.src, "2001:db8:2:5::10", "word 4 carries the adjustment");
  // An interface identifier of all ones has no word to adjust (RFC 6296 §3.5).
  const ones = "2001:db8:1:0:ffff:ffff:ffff:ffff";
  route6(t.r, t.rLan, "2001:db8:1::/64", null);
  t.a.send(ip6({ src: ones, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ones, ADDR6.b, 1, 2) }));
  t.clock.advance(1);
  assert.equal(t.b.data().length, 0);
  assert.equal(f.stats.nptUntranslatable, 1);
});

Deno.test("config: NPTv6 and NAT66 rules are checked where ip6tables checks them", async (t) => {
  const bad: [string, RegExp][] = [
    [
      `[firewall.ipv6.nat]\npostrouting = { rules = ["-j SNPT --src-pfx 2001:db8::/48 --dst-pfx 2001:db8:1::/48"] }`,
      /target SNPT is not allowed in the nat postrouting chain \(only in mangle postrouting or input\)/,
    ],
    [
      `[firewall.ipv6.mangle]\nprerouting = { rules = ["-j SNPT --src-pfx 2001:db8::/48 --dst-pfx 2001:db8:1::/48"] }`,
      /target SNPT is not allowed in the mangle prerouting chain/,
    ],
    [
      `[firewall.ipv6.mangle]\npostrouting = { rules = ["-j SNPT --src-pfx 2001:db8::/96 --dst-pfx 2001:db8:1::/48"] }`,
      /longer than \/64/,
    ],
    [
      `[firewall.ipv4.mangle]\npostrouting = { rules = ["-j SNPT --src-pfx 2001:db8::/48 --dst-pfx 2001:db8:1::/48"] }`,
      /is IPv6 but this is an ipv4 table/,
    ],
    [
      `[firewall.ipv6.mangle]\npostrouting = { rules = ["-j DNPT --src-pfx 2001:db8::/48"] }`,
      /needs "--src-pfx PREFIX\/LEN --dst-pfx PREFIX\/LEN"/,
    ],
  ];
  for (const [toml, want] of bad) {
    await t.step(toml.split("\n")[1]!, () => assert.throws(() => parseConfig(toml), want));
  }
  await t.step("DNAT --to is --to-destination", () => {
    const c = parseConfig(
      `[firewall.ipv6.nat]\nprerouting = { rules = ["-p tcp --dport 80 -j DNAT --to [2001:db8::8]:8080"] }`,
    );
    const r = c.firewall.ipv6.nat.chains.get("prerouting")!.rules[0]!;
    assert.equal(r.target?.kind, "DNAT");
    assert.equal(r.family, 6);
  });
});

Deno.test("NAT66 DNAT in OUTPUT: the router's own packet is routed again to its new destination", async () => {
  const t = routerLab6();
  fw(
    t.r,
    `[firewall.ipv6.nat]\noutput = { rules = ["-d 2001:db8:2::77 -p udp --dport 53 -j DNAT --to-destination [${ADDR6.a}]:5353"] }\n`,
  );
  const sock = t.r.listenDatagram({ hostname: "::", port: 3000, transport: "udp" });
  await sock.send(new Uint8Array([1, 2, 3]), {
    transport: "udp",
    hostname: "2001:db8:2::77",
    port: 53,
  });
  t.clock.advance(1);
  assert.equal(t.b.data().length, 0, "not sent towards the WAN any more");
  const got = only(t.a);
  assert.equal(got.dst, ADDR6.a);
  assert.equal(got.dport, 5353);
  assert.equal(got.src, ADDR6.rWan, "the source chosen for the first route stays, as in Linux");
  sock.close();
});
