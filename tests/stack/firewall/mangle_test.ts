/**
 * The mangle table at its five hooks and the targets that edit packets:
 * MARK's forms, CONNMARK (set, save, restore), DSCP, TOS, TTL, HL, TCPMSS,
 * and CT --notrack in raw — bytes and checksums as Linux leaves them.
 */
import assert from "node:assert/strict";
import { internetChecksum } from "../../../stack/wire/checksum.ts";
import { triangle } from "../../topology/_topology.ts";
import { ADDR6, ip6, NH, readIpv6, routerLab6, udp6 } from "../../topology/_topology6.ts";
import { checksum6 } from "../../topology/_packets6.ts";
import {
  checksumsOk,
  F,
  firewallFrom,
  forwardThrough,
  IP_OFF,
  tcp,
  tcp6,
  tuple,
  udp,
} from "./_fw.ts";

const H1 = "192.0.2.10", H2 = "198.51.100.10";

Deno.test("mangle runs at all five hooks in netfilter's order (before nat in PREROUTING and POSTROUTING)", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.mangle]
prerouting = { rules = ["-d 198.51.100.1 -j MARK --or-mark 1"] }
forward = { rules = ["-d 192.0.2.10 -j MARK --or-mark 2"] }
postrouting = { rules = ["-s 192.0.2.10 -j MARK --or-mark 4"] }
[firewall.ipv4.nat]
prerouting = { rules = ["-i wan0 -p udp --dport 8080 -j DNAT --to-destination 192.0.2.10:80"] }
postrouting = { rules = ["-o wan0 -j MASQUERADE"] }
`,
  );
  // Inbound port forward: mangle PREROUTING sees the router's address (before DNAT),
  // mangle FORWARD the LAN host (after it).
  const b = udp({ src: H2, dst: "198.51.100.1", sport: 5000, dport: 8080 });
  assert.ok(forwardThrough(fw, b, t.rWan, t.rLan));
  assert.equal(tuple(b), `${H2}:5000>192.0.2.10:80`);
  assert.equal(b.mark, 1 | 2);
  // Outbound: mangle POSTROUTING sees the LAN source (before MASQUERADE).
  const o = udp({ src: H1, dst: H2, sport: 6000, dport: 53 });
  assert.ok(forwardThrough(fw, o, t.rLan, t.rWan));
  assert.equal(tuple(o).split(">")[0], "198.51.100.1:6000");
  assert.equal(o.mark, 4);
  assert.match(fw.dump(), /^\*mangle$/m);
});

Deno.test("mangle: a DROP policy and DROP rules drop (the mangle table may drop, unlike nat)", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.mangle]\nforward = { policy = "drop", rules = ["-p udp --dport 53 -j ACCEPT"] }\n`,
  );
  assert.ok(forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 53 }), t.rLan, t.rWan));
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 54 }), t.rLan, t.rWan),
    false,
  );
  assert.equal(fw.stats.dropped, 1);
});

Deno.test("MARK: --set-xmark, --set-mark V/M, --and-mark, --or-mark, --xor-mark", async (t) => {
  const cases: [string, number][] = [
    ["--set-xmark 0x30/0xf0", 0x3a], // (0xaa & ~0xf0) ^ 0x30
    ["--set-mark 0x3/0xf0", 0x0b], // (0xaa & ~0xf0) | 0x3, as mask 0xf3 with xor
    ["--and-mark 0x0f", 0x0a],
    ["--or-mark 0x01", 0xab],
    ["--xor-mark 0xff", 0x55],
  ];
  for (const [opt, want] of cases) {
    await t.step(opt, () => {
      const lab = triangle();
      const fw = firewallFrom(
        lab.r,
        `[firewall.mangle]\nprerouting = { rules = ["-j MARK --set-mark 0xaa", "-j MARK ${opt}"] }\n`,
      );
      const b = udp({ src: H1, dst: H2, sport: 1, dport: 2 });
      assert.ok(fw.prerouting(b, IP_OFF, lab.rLan, null));
      assert.equal(b.mark, want);
    });
  }
});

Deno.test("CONNMARK: a mark set on the first packet is the connection's; replies restore it", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.mangle]
prerouting = { rules = [
  "-j CONNMARK --restore-mark",
  "-m mark --mark 0 -i lan0 -p udp --dport 53 -j MARK --set-mark 0x53",
  "-j CONNMARK --save-mark",
] }
[firewall.filter]
forward = { policy = "drop", rules = [
  "-m connmark --mark 0x53 -m mark --mark 0x53 -j ACCEPT",
] }
`,
  );
  const q = udp({ src: H1, dst: H2, sport: 4000, dport: 53 });
  assert.ok(forwardThrough(fw, q, t.rLan, t.rWan), "the query passes by its mark");
  const c = [...fw.conntrack.entries()][0]!;
  assert.equal(c.mark, 0x53, "saved on the connection");
  const a = udp({ src: H2, dst: H1, sport: 53, dport: 4000 });
  assert.ok(forwardThrough(fw, a, t.rWan, t.rLan), "the answer's mark is restored from it");
  assert.equal(a.mark, 0x53);
  assert.equal(
    forwardThrough(fw, udp({ src: H2, dst: H1, sport: 53, dport: 4001 }), t.rWan, t.rLan),
    false,
    "no connection, no connmark",
  );
});

Deno.test("CONNMARK --set-mark and --save-mark/--restore-mark with masks", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.mangle]
prerouting = { rules = [
  "-j MARK --set-mark 0x1234",
  "-j CONNMARK --set-mark 0x5000/0xf000",
  "-j CONNMARK --save-mark --nfmask 0x00ff --ctmask 0x0fff",
  "-j MARK --set-mark 0",
  "-j CONNMARK --restore-mark --ctmask 0xff00 --nfmask 0xffff",
] }
`,
  );
  const b = udp({ src: H1, dst: H2, sport: 1, dport: 2 });
  assert.ok(fw.prerouting(b, IP_OFF, t.rLan, null));
  assert.equal([...fw.conntrack.entries()].length, 0, "not confirmed before POSTROUTING");
  // ctmark: set 0x5000 under 0xf000; save: (ct & ~0x0fff) ^ (0x1234 & 0xff) = 0x5034.
  // restore: mark = (0 & ~0xffff) ^ (0x5034 & 0xff00) = 0x5000.
  assert.equal(b.mark, 0x5000);
});

Deno.test("DSCP and TOS rewrite the TOS byte (ECN kept) with a valid IPv4 header checksum", async (t) => {
  const cases: [string, number, number][] = [
    ["-j DSCP --set-dscp-class EF", 0x03, 0xbb],
    ["-j DSCP --set-dscp 0", 0xff, 0x03],
    ["-j TOS --set-tos Minimize-Delay", 0xff, 0xd0],
    ["-j TOS --set-tos 0x20/0xf0", 0x5a, 0x2a],
    ["-j TOS --or-tos 0x01", 0x10, 0x11],
    ["-j TOS --xor-tos 0xff", 0x0f, 0xf0],
  ];
  for (const [rule, before, after] of cases) {
    await t.step(`${rule}: 0x${before.toString(16)} → 0x${after.toString(16)}`, () => {
      const lab = triangle();
      const fw = firewallFrom(lab.r, `[firewall.mangle]\nforward = { rules = ["${rule}"] }\n`);
      const b = udp({ src: H1, dst: H2, sport: 1, dport: 2 });
      b.data[IP_OFF + 1] = before;
      b.view.setUint16(IP_OFF + 10, 0);
      b.view.setUint16(IP_OFF + 10, internetChecksum(b.data, IP_OFF, 20));
      assert.ok(forwardThrough(fw, b, lab.rLan, lab.rWan));
      assert.equal(b.data[IP_OFF + 1], after);
      assert.ok(checksumsOk(b));
    });
  }
});

Deno.test("TTL --ttl-set/-dec/-inc (clamped) with a valid checksum; HL on IPv6", async (t) => {
  const cases: [string, number, number][] = [
    ["--ttl-set 5", 64, 5],
    ["--ttl-dec 10", 64, 54],
    ["--ttl-dec 10", 3, 0],
    ["--ttl-inc 10", 250, 255],
  ];
  for (const [opt, ttl, want] of cases) {
    await t.step(`${opt} on TTL ${ttl}`, () => {
      const lab = triangle();
      const fw = firewallFrom(
        lab.r,
        `[firewall.mangle]\nprerouting = { rules = ["-j TTL ${opt}"] }\n`,
      );
      const b = udp({ src: H1, dst: H2, sport: 1, dport: 2, ttl });
      assert.ok(fw.prerouting(b, IP_OFF, lab.rLan, null));
      assert.equal(b.data[IP_OFF + 8], want);
      assert.ok(checksumsOk(b));
    });
  }
  await t.step("HL --hl-set 200 and DSCP on IPv6", () => {
    const lab = routerLab6();
    firewallFrom(
      lab.r,
      `[firewall.ipv6.mangle]\npostrouting = { rules = ["-j HL --hl-set 200", "-j DSCP --set-dscp-class AF41"] }\n`,
    );
    lab.a.send(
      ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.UDP, payload: udp6(ADDR6.a, ADDR6.b, 1, 2) }),
    );
    lab.clock.advance(1);
    const f = lab.b.data()[0]!;
    const ip = readIpv6(f);
    assert.equal(ip.hopLimit, 200);
    const tc = ((f[14]! & 0x0f) << 4) | (f[15]! >> 4);
    assert.equal(tc >> 2, 0x22, "AF41");
    assert.equal(checksum6(ip.src, ip.dst, NH.UDP, ip.l4), 0, "UDP does not cover either");
  });
});

Deno.test("CT --notrack in raw: the packet is UNTRACKED", () => {
  const t = triangle();
  const fw = firewallFrom(
    t.r,
    `[firewall.raw]
prerouting = { rules = ["-p udp --dport 53 -j CT --notrack"] }
[firewall.filter]
forward = { policy = "drop", rules = ["-m conntrack --ctstate UNTRACKED -j ACCEPT"] }
`,
  );
  assert.ok(forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 53 }), t.rLan, t.rWan));
  assert.equal(fw.conntrack.size, 0);
  assert.equal(
    forwardThrough(fw, udp({ src: H1, dst: H2, sport: 1, dport: 54 }), t.rLan, t.rWan),
    false,
  );
});

Deno.test("TCPMSS --clamp-mss-to-pmtu in mangle: the MTU less 40 (IPv4) or 60 (IPv6)", () => {
  const t = triangle({ wanMtu: 1400 });
  const fw = firewallFrom(
    t.r,
    `[firewall.mangle]\nforward = { rules = ["-o wan0 -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"] }\n`,
  );
  const b = tcp({ src: H1, dst: H2, sport: 1, dport: 2, flags: F.SYN, mss: 1460 });
  assert.ok(forwardThrough(fw, b, t.rLan, t.rWan));
  assert.equal(b.view.getUint16(IP_OFF + 42), 1360, "the MSS option of the SYN");
  assert.ok(checksumsOk(b));
  const lab = routerLab6({ wanMtu: 1400 });
  firewallFrom(
    lab.r,
    `[firewall.ipv6.mangle]\nforward = { rules = ["-o wan0 -p tcp --syn -j TCPMSS --clamp-mss-to-pmtu"] }\n`,
  );
  const seg = tcp6(ADDR6.a, ADDR6.b, 1, 2, F.SYN);
  // A 24-byte header with MSS 1460.
  const withMss = new Uint8Array(24);
  withMss.set(seg.subarray(0, 20));
  withMss[12] = 6 << 4;
  withMss.set([2, 4, 0x05, 0xb4], 20);
  withMss[16] = withMss[17] = 0;
  const sum = checksum6(ADDR6.a, ADDR6.b, NH.TCP, withMss);
  withMss[16] = sum >> 8;
  withMss[17] = sum & 0xff;
  lab.a.send(ip6({ src: ADDR6.a, dst: ADDR6.b, proto: NH.TCP, payload: withMss }));
  lab.clock.advance(1);
  const got = readIpv6(lab.b.data()[0]!);
  assert.equal((got.l4[22]! << 8) | got.l4[23]!, 1340);
  assert.equal(checksum6(got.src, got.dst, NH.TCP, got.l4), 0);
});
