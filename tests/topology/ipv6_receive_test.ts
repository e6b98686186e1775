/**
 * The IPv6 receive path of a router, branch by branch as gVisor's ipv6.go
 * HandlePacket / processExtensionHeaders: address checks (RFC 4291),
 * extension headers and options (RFC 8200 §4), fragments and reassembly
 * (RFC 8200 §4.5, RFC 6946, RFC 7112, RFC 5722, RFC 6980).
 */
import assert from "node:assert/strict";
import { parseIpv6 } from "../../stack/wire/mod.ts";
import { assertDelta, watch } from "./_topology.ts";
import {
  ADDR6,
  destOpts,
  echo6,
  expectIcmp6,
  type ExtHeader,
  frag,
  fragments,
  hbh,
  type Icmp6Expect,
  ip6,
  na,
  NH,
  ns,
  pattern6,
  readIcmp6,
  routerAlert,
  type RouterLab6,
  routerLab6,
  routing,
  T6,
  udp6,
  unknownOption,
} from "./_topology6.ts";

const R = ADDR6.rLan;
const A = ADDR6.a;
/** A Next Header value nothing handles (RFC 3692 experimentation). */
const UNKNOWN_NH = 253;

/** An echo request a → `dst` behind `ext`. */
function echoVia(ext: ExtHeader[], dst: string = R, src: string = A): Uint8Array {
  return ip6({ src, dst, proto: NH.ICMP6, ext, payload: echo6(src, dst) });
}

interface ReceiveCase {
  name: string;
  /** Packets a sends (each to r's MAC unless `dstMac`). */
  packets: (lab: RouterLab6) => Uint8Array[];
  dstMac?: (lab: RouterLab6) => Uint8Array;
  /** ICMPv6 messages (not NDP/MLD) a gets back, in order. */
  expect: Icmp6Expect[];
  counters: Record<string, number>;
  /** Milliseconds to run after sending (default 10). */
  runMs?: number;
}

const REPLY: Icmp6Expect = { type: T6.ECHO_REPLY, code: 0, src: R, dst: A };
const pp = (code: number, pointer: number): Icmp6Expect => ({
  type: T6.PARAM_PROBLEM,
  code,
  rest: pointer,
  src: R,
  dst: A,
});

const CASES: ReceiveCase[] = [
  {
    name: "a control row: a plain echo request is answered",
    packets: () => [echoVia([])],
    expect: [REPLY],
    counters: { "ipv6.packetsDelivered": 1, "icmpv6.echoRequestsAnswered": 1 },
  },
  {
    name: "multicast source dropped (RFC 4291 §2.7)",
    packets: () => [echoVia([], R, "ff02::1")],
    expect: [],
    counters: { "ipv6.invalidAddressesReceived": 1, "ipv6.packetsDelivered": 0 },
  },
  {
    name: "loopback source dropped (RFC 4291 §2.5.3)",
    packets: () => [echoVia([], R, "::1")],
    expect: [],
    counters: { "ipv6.invalidAddressesReceived": 1 },
  },
  {
    name: "loopback destination dropped",
    packets: () => [echoVia([], "::1")],
    expect: [],
    counters: { "ipv6.invalidAddressesReceived": 1 },
  },
  {
    name: "a multicast group not joined is dropped",
    packets: () => [echoVia([], "ff02::1234")],
    expect: [],
    counters: { "ipv6.multicastNotJoinedDropped": 1, "ipv6.packetsDelivered": 0 },
  },
  {
    name: "Hop-by-Hop after Destination Options: PP code 1 at the Next Header that named it",
    packets: () => [echoVia([destOpts(), hbh()])],
    // The Destination Options header sits at 40; its Next Header byte names Hop-by-Hop.
    expect: [pp(1, 40)],
    counters: { "icmpv6.errorsSent": 1, "ipv6.packetsDelivered": 0 },
  },
  {
    name: "Router Alert once is accepted",
    packets: () => [echoVia([hbh(...routerAlert(0))])],
    expect: [REPLY],
    counters: { "ipv6.packetsDelivered": 1 },
  },
  {
    name: "two Router Alerts in one Hop-by-Hop header: dropped (RFC 2711 §2.1)",
    packets: () => [echoVia([hbh(...routerAlert(0), ...routerAlert(0))])],
    expect: [],
    counters: { "ipv6.optionsDropped": 1, "ipv6.packetsDelivered": 0, "icmpv6.errorsSent": 0 },
  },
  ...[["Hop-by-Hop", hbh] as const, ["Destination Options", destOpts] as const].flatMap((
    [where, mk],
  ): ReceiveCase[] => [
    {
      name: `${where}: unknown option action 00 is skipped (echo answered)`,
      packets: () => [echoVia([mk(...unknownOption(0))])],
      expect: [REPLY],
      counters: { "ipv6.packetsDelivered": 1, "ipv6.optionsDropped": 0 },
    },
    {
      name: `${where}: unknown option action 01 discards silently`,
      packets: () => [echoVia([mk(...unknownOption(1))])],
      expect: [],
      counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 0 },
    },
    {
      name: `${where}: unknown option action 10 discards with PP code 2 at the option type`,
      packets: () => [echoVia([mk(...unknownOption(2))])],
      expect: [pp(2, 42)],
      counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 1 },
    },
    {
      name: `${where}: unknown option action 10 to a multicast destination still gets PP code 2`,
      packets: () => [echoVia([mk(...unknownOption(2))], "ff02::1")],
      expect: [{ type: T6.PARAM_PROBLEM, code: 2, rest: 42, dst: A }],
      counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 1 },
    },
    {
      name: `${where}: unknown option action 11 discards with PP code 2`,
      packets: () => [echoVia([mk(...unknownOption(3))])],
      expect: [pp(2, 42)],
      counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 1 },
    },
    {
      name: `${where}: unknown option action 11 to a multicast destination: silent`,
      packets: () => [echoVia([mk(...unknownOption(3))], "ff02::1")],
      expect: [],
      counters: { "ipv6.optionsDropped": 1, "icmpv6.errorsSent": 0 },
    },
    {
      name: `${where}: the pointer counts from the IPv6 header (option after PadN)`,
      packets: () => [echoVia([mk(1, 0, ...unknownOption(2))])],
      expect: [pp(2, 44)],
      counters: { "icmpv6.errorsSent": 1 },
    },
  ]),
  {
    name: "Routing header with Segments Left ≠ 0: PP code 0 at the Routing Type",
    packets: () => [echoVia([routing(0, 1)])],
    expect: [pp(0, 42)],
    counters: { "ipv6.routingHeaderDropped": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "Routing header behind Hop-by-Hop: the pointer moves with it",
    packets: () => [echoVia([hbh(), routing(4, 2)])],
    expect: [pp(0, 50)],
    counters: { "ipv6.routingHeaderDropped": 1 },
  },
  {
    name: "Routing header with Segments Left 0 is processed",
    packets: () => [echoVia([routing(0, 0)])],
    expect: [REPLY],
    counters: { "ipv6.packetsDelivered": 1, "ipv6.routingHeaderDropped": 0 },
  },
  {
    name: "an atomic fragment is processed without reassembly (RFC 6946)",
    packets: () => [echoVia([frag(0, false, 77)])],
    expect: [REPLY],
    counters: {
      "ipv6.atomicFragmentsReceived": 1,
      "ipv6.packetsDelivered": 1,
      "ipv6.packetsReassembled": 0,
    },
  },
  {
    name: "two fragments are reassembled and answered",
    packets: () =>
      fragments({
        src: A,
        dst: R,
        proto: NH.ICMP6,
        payload: echo6(A, R, 1, 1, 40),
        id: 5,
        cuts: [0, 24],
      }),
    expect: [REPLY],
    counters: { "ipv6.packetsReassembled": 1, "icmpv6.echoRequestsAnswered": 1 },
  },
  {
    name: "a non-last fragment not a multiple of 8: PP code 0 at the Payload Length",
    packets: () => [
      ip6({
        src: A,
        dst: R,
        proto: NH.ICMP6,
        ext: [frag(0, true, 9)],
        payload: echo6(A, R, 1, 1, 14),
      }),
    ],
    expect: [pp(0, 4)],
    counters: { "ipv6.fragmentsMalformed": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "a fragment past 65535 bytes: PP code 0 at the Fragment Offset",
    packets: () => [
      ip6({ src: A, dst: R, proto: NH.ICMP6, ext: [frag(65528, true, 9)], payload: pattern6(16) }),
    ],
    expect: [pp(0, 42)],
    counters: { "ipv6.fragmentsMalformed": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "a first fragment without the whole header chain: PP code 3 (RFC 7112)",
    packets: () => [
      ip6({ src: A, dst: R, proto: NH.TCP, ext: [frag(0, true, 9)], payload: pattern6(8) }),
    ],
    expect: [pp(3, 0)],
    counters: { "ipv6.fragmentsMalformed": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "overlapping fragments drop the whole datagram, with no answer (RFC 5722)",
    packets: () => {
      const m = echo6(A, R, 1, 1, 40); // 48 bytes
      const f = (off: number, to: number, more: boolean) =>
        ip6({
          src: A,
          dst: R,
          proto: NH.ICMP6,
          ext: [frag(off, more, 11)],
          payload: m.subarray(off, to),
        });
      return [f(0, 16, true), f(8, 24, true), f(16, 48, false)];
    },
    expect: [],
    counters: {
      "ipv6.fragmentOverlapsDropped": 1,
      "ipv6.packetsReassembled": 0,
      "icmpv6.errorsSent": 0,
    },
  },
  {
    name: "NDP inside a fragmented packet is dropped (RFC 6980)",
    packets: (lab) =>
      fragments({
        src: A,
        dst: R,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(A, R, R, { slla: lab.a.mac }),
        id: 12,
        cuts: [0, 8],
      }),
    expect: [],
    counters: {
      "ipv6.packetsReassembled": 1,
      "icmpv6.ndpInFragmentDropped": 1,
      "ndp.messagesReceived": 0,
    },
  },
  {
    name: "reassembly timeout with the first fragment: Time Exceeded code 1 after 60 s",
    packets: () => [
      ip6({
        src: A,
        dst: R,
        proto: NH.ICMP6,
        ext: [frag(0, true, 13)],
        payload: echo6(A, R, 1, 1, 16),
      }),
    ],
    runMs: 60_001,
    expect: [{ type: T6.TIME_EXCEEDED, code: 1, rest: 0, src: R, dst: A }],
    counters: { "icmpv6.errorsSent": 1 },
  },
  {
    name: "reassembly timeout without the first fragment: silent",
    packets: () => [
      ip6({ src: A, dst: R, proto: NH.ICMP6, ext: [frag(8, true, 14)], payload: pattern6(16) }),
    ],
    runMs: 60_001,
    expect: [],
    counters: { "icmpv6.errorsSent": 0 },
  },
  {
    name: "unknown Next Header: PP code 1 at the IPv6 header's Next Header",
    packets: () => [ip6({ src: A, dst: R, proto: UNKNOWN_NH, payload: pattern6(8) })],
    expect: [pp(1, 6)],
    counters: { "ipv6.unknownProtocolReceived": 1, "icmpv6.errorsSent": 1 },
  },
  {
    name: "unknown Next Header after Destination Options: PP code 1 at its Next Header field",
    packets:
      () => [ip6({ src: A, dst: R, proto: UNKNOWN_NH, ext: [destOpts()], payload: pattern6(8) })],
    expect: [pp(1, 40)],
    counters: { "ipv6.unknownProtocolReceived": 1 },
  },
  {
    name: "No Next Header (59) ends processing silently",
    packets: () => [ip6({ src: A, dst: R, proto: NH.NONE, payload: new Uint8Array(0) })],
    expect: [],
    counters: { "icmpv6.errorsSent": 0, "ipv6.unknownProtocolReceived": 0 },
  },
  {
    name: "UDP to a closed port: Destination Unreachable code 4",
    packets: () => [ip6({ src: A, dst: R, proto: NH.UDP, payload: udp6(A, R, 40000, 9) })],
    expect: [{ type: T6.DEST_UNREACH, code: 4, src: R, dst: A }],
    counters: { "icmpv6.errorsSent": 1 },
  },
];

Deno.test("IPv6 receive path: addresses, extension headers, fragments", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, () => {
      const lab = routerLab6();
      const d = watch(lab.r);
      for (const p of c.packets(lab)) lab.a.send(p, { dstMac: c.dstMac?.(lab) });
      lab.clock.advance(c.runMs ?? 10);
      const got = lab.a.icmp6NoControl();
      assert.equal(
        got.length,
        c.expect.length,
        `ICMPv6 back to a: ${
          JSON.stringify(got.map((f) => [readIcmp6(f).type, readIcmp6(f).code]))
        }`,
      );
      c.expect.forEach((e, i) => expectIcmp6(got[i]!, e, `message ${i}`));
      assert.equal(lab.b.data().length, 0, "nothing leaves on the WAN");
      assertDelta(d(), c.counters);
    });
  }
});

Deno.test("IPv6 receive path: errors quote the invoking packet", async (t) => {
  await t.step("the Parameter Problem quotes the packet from its IPv6 header", () => {
    const lab = routerLab6();
    const sent = echoVia([destOpts(...unknownOption(2))]);
    lab.a.send(sent);
    lab.clock.advance(10);
    const [f] = lab.a.icmp6NoControl();
    const m = expectIcmp6(f!, { type: T6.PARAM_PROBLEM, code: 2, rest: 42 });
    assert.deepEqual(m.body, sent);
  });
  await t.step("NA to r about an address nobody has is ignored", () => {
    const lab = routerLab6();
    const d = watch(lab.r);
    lab.a.send(ip6({
      src: A,
      dst: R,
      proto: NH.ICMP6,
      hopLimit: 255,
      payload: na(A, R, "2001:db8:1::99", { s: true }),
    }));
    lab.clock.advance(10);
    assert.equal(lab.a.icmp6NoControl().length, 0);
    assertDelta(d(), { "ndp.advertisementsReceived": 1, "icmpv6.errorsSent": 0 });
    assert.ok(parseIpv6(R));
  });
});
