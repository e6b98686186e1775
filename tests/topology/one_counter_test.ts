/**
 * Frames that moved no counter, or two, until the per-frame accounting
 * test (tests/fuzz/accounting_test.ts) found them: each pinned here by one
 * injected packet and the one counter it must move.
 */
import { ADDR, assertDelta, routerLab, watch } from "./_topology.ts";
import { ADDR6, icmp6, ip6, NH, routerLab6, T6, udp6 } from "./_topology6.ts";
import { parseIpv4 } from "../../stack/wire/mod.ts";
import { echoRequest, icmp, ipv4, PROTO, tcp } from "./_packets.ts";

const BCAST = new Uint8Array(6).fill(0xff);

Deno.test("IPv4: a packet for an unknown protocol is not counted as delivered", () => {
  const lab = routerLab();
  const d = watch(lab.r);
  lab.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: 253, payload: new Uint8Array(8) }));
  lab.clock.advance(1);
  assertDelta(d(), { "ipv4.unknownProtocolReceived": 1, "ipv4.packetsDelivered": 0 });
});

Deno.test("ARP: a reply from 0.0.0.0 (a probe's answer) is counted as a reply", () => {
  const lab = routerLab();
  const d = watch(lab.r);
  lab.a.sendArp(2, 0, lab.rLan.mac, parseIpv4(ADDR.rLan));
  lab.clock.advance(1);
  assertDelta(d(), { "arp.repliesReceived": 1, "arp.malformedReceived": 0 });
});

Deno.test("ICMPv4: types nobody takes move a counter", async (t) => {
  await t.step("a timestamp request: unknownTypeReceived", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const payload = icmp(13, 0, 0x00010001, new Uint8Array(12));
    lab.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: PROTO.ICMP, payload }));
    lab.clock.advance(1);
    assertDelta(d(), { "icmpv4.unknownTypeReceived": 1, "icmpv4.malformedReceived": 0 });
  });
  await t.step("an echo request to the subnet broadcast: broadcastEchoesIgnored, no reply", () => {
    const lab = routerLab();
    const d = watch(lab.r);
    const payload = echoRequest(1, 1, 8);
    lab.a.sendIp(ipv4({ src: ADDR.a, dst: "192.0.2.255", protocol: PROTO.ICMP, payload }), {
      dstMac: BCAST,
    });
    lab.clock.advance(1);
    assertDelta(d(), {
      "ipv4.packetsDelivered": 1,
      "icmpv4.broadcastEchoesIgnored": 1,
      "icmpv4.echoRequestsAnswered": 0,
    });
  });
});

Deno.test("TCP: a segment to a listener that opens nothing moves listenSegmentsDropped", async (t) => {
  const cases: [string, number, number][] = [
    ["a reset", 0x04, 0],
    ["no flags", 0x00, 0],
    ["SYN with FIN", 0x03, 0],
    ["an ACK with no handshake behind it (answered with a reset)", 0x10, 1],
  ];
  for (const [name, flags, resets] of cases) {
    await t.step(name, () => {
      const lab = routerLab();
      lab.r.tcp.listen({ port: 2222 });
      const d = watch(lab.r);
      const seg = tcp(ADDR.a, ADDR.rLan, {
        sport: 40000,
        dport: 2222,
        seq: 1,
        ack: 77,
        flags,
        payload: new Uint8Array(0),
      });
      lab.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: PROTO.TCP, payload: seg }));
      lab.clock.advance(1);
      assertDelta(d(), {
        "tcp.listenSegmentsDropped": 1,
        "tcp.passiveOpens": 0,
        "tcp.synCookiesFailed": 0,
        "tcp.resetsSent": resets,
      });
    });
  }
});

Deno.test("ICMPv6: messages nobody takes move a counter", async (t) => {
  const cases: [string, number, string, Record<string, number>][] = [
    // To all routers, a group r has joined (ff02::16 it has not: it is no querier).
    ["an MLDv2 report: mld.reportsReceived", 143, "ff02::2", { "mld.reportsReceived": 1 }],
    ["an MLD Done: mld.reportsReceived", 132, "ff02::2", { "mld.reportsReceived": 1 }],
    ["an unknown informational type: unknownTypeReceived", 200, ADDR6.rLan, {
      "icmpv6.unknownTypeReceived": 1,
    }],
  ];
  for (const [name, type, dst, counters] of cases) {
    await t.step(name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      const src = type === 200 ? ADDR6.a : ADDR6.aLL;
      const payload = icmp6(src, dst, type, 0, 0, new Uint8Array(4));
      const p = ip6({ src, dst, proto: 58, hopLimit: 1, payload });
      if (dst.startsWith("ff")) lab.a.sendMulticast(p, dst);
      else lab.a.send(p);
      lab.clock.advance(1);
      assertDelta(d(), {
        "icmpv6.messagesReceived": 1,
        "icmpv6.malformedReceived": 0,
        ...counters,
      });
    });
  }
  await t.step("an echo reply shorter than its header: malformedReceived", () => {
    const lab = routerLab6();
    const d = watch(lab.r);
    // Type, code, checksum and two bytes: 6 of the echo header's 8.
    const payload = icmp6(ADDR6.a, ADDR6.rLan, 129, 0, 0, new Uint8Array(0)).subarray(0, 6);
    const v = new DataView(payload.buffer, payload.byteOffset);
    v.setUint16(2, 0);
    const p = ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto: 58, payload });
    fixIcmp6Checksum(p);
    lab.a.send(p);
    lab.clock.advance(1);
    assertDelta(d(), { "icmpv6.malformedReceived": 1, "icmpv6.echoRepliesReceived": 0 });
  });
});

/** Recompute the ICMPv6 checksum of `p` (an IPv6 packet with ICMPv6 right after its header). */
function fixIcmp6Checksum(p: Uint8Array): void {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const len = p.length - 40;
  v.setUint16(42, 0);
  let s = 0;
  for (let i = 8; i < 40; i += 2) s += v.getUint16(i);
  s += len + 58;
  for (let i = 0; i < len; i += 2) s += (p[40 + i]! << 8) | (p[41 + i] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  v.setUint16(42, ~s & 0xffff);
}

Deno.test("a forwarded packet POSTROUTING drops is the firewall's drop, not a forward", async (t) => {
  await t.step("IPv4", () => {
    const lab = routerLab();
    lab.r.ipv4.hooks.postrouting = () => false;
    const d = watch(lab.r);
    lab.a.sendIp(
      ipv4({ src: ADDR.a, dst: ADDR.b, protocol: PROTO.ICMP, payload: echoRequest(1, 1, 8) }),
    );
    lab.clock.advance(1);
    assertDelta(d(), { "ipv4.firewallDropped": 1, "ipv4.forwarding.packets": 0 });
  });
  await t.step("IPv6", () => {
    const lab = routerLab6();
    lab.r.ipv6.hooks.postrouting = () => false;
    const d = watch(lab.r);
    const payload = icmp6(ADDR6.a, ADDR6.b, 128, 0, 0x00010001, new Uint8Array(8));
    lab.a.send(ip6({ src: ADDR6.a, dst: ADDR6.b, proto: 58, payload }));
    lab.clock.advance(1);
    assertDelta(d(), { "ipv6.firewallDropped": 1, "ipv6.forwarding.packets": 0 });
  });
});

Deno.test("ICMPv6: a Packet Too Big ignored is not an error received as well", async (t) => {
  // Found by the host target: an MTU below 1280 (RFC 8201 §4), or a quote of a
  // packet r did not send (RFC 5927 §4.2), moved both counters.
  const cases: [string, number, string][] = [
    ["an MTU below 1280", 1000, ADDR6.rLan],
    ["about a packet from another source", 1400, "2001:db8:1::99"],
  ];
  for (const [name, mtu, src] of cases) {
    await t.step(name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      const quoted = ip6({ src, dst: ADDR6.a, proto: NH.UDP, payload: udp6(src, ADDR6.a, 1, 2) });
      const payload = icmp6(ADDR6.a, ADDR6.rLan, T6.TOO_BIG, 0, mtu, quoted);
      lab.a.send(ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto: 58, payload }));
      lab.clock.advance(1);
      assertDelta(d(), {
        "ipv6.packetsDelivered": 1,
        "icmpv6.packetTooBigIgnored": 1,
        "icmpv6.errorsReceived": 0,
      });
    });
  }
});
