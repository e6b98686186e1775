/**
 * The drop tables, table-driven: for every drop reason of both families,
 * one injected packet moves exactly the reason's counter by one (no other
 * counter the table names moves) and sends exactly the ICMP error the table
 * names, or none. A reason without a case here fails the test, so a new
 * reason comes with its packet.
 */
import assert from "node:assert/strict";
import { DROP_REASON_NAMES, DropReason as R } from "../../../stack/ip/drop.ts";
import { IPV4_DROPS } from "../../../stack/ipv4/drops.ts";
import { IPV6_DROPS } from "../../../stack/ipv6/drops.ts";
import type { DropRule } from "../../../stack/ip/drop.ts";
import { HEADROOM, PacketBuffer, parseIpv6 } from "../../../stack/wire/mod.ts";
import type { Stack } from "../../../stack/mod.ts";
import type { ManualClock } from "../../../stack/clock.ts";
import {
  ADDR,
  addRoute,
  type RouterLab,
  routerLab,
  type RouterLabOptions,
  watch,
} from "../../topology/_topology.ts";
import { ipv4, PROTO, readIpv4, udp } from "../../topology/_packets.ts";
import {
  ADDR6,
  destOpts,
  echo6,
  frag,
  ip6,
  NH,
  ns,
  pattern6,
  readIcmp6,
  route6,
  type RouterLab6,
  routerLab6,
  type RouterLab6Options,
  routing,
  udp6,
  unknownOption,
} from "../../topology/_topology6.ts";

/** One packet (or two, for an overlap) that makes a path return `reason`. */
interface DropCase<L> {
  reason: number;
  /** The counter it must move (written here, not read from the table). */
  counter: string;
  /** The ICMP error (type, code) it must send, or null. */
  icmp: readonly [number, number] | null;
  /** Options of the lab this case needs. */
  lab?: object;
  /** Put the packet on a's wire, or hand it to r's output. */
  inject(lab: L): void;
  /** The error's rest-of-header, when the table sends one. */
  rest?: number;
}

/** Hand `bytes` (an IP packet) to a layer's output as a locally built packet. */
function localPacket(bytes: Uint8Array): { buf: PacketBuffer; off: number } {
  const buf = new PacketBuffer(HEADROOM + 14 + bytes.length + 64);
  buf.setFrame(HEADROOM, 14 + bytes.length);
  buf.data.set(bytes, HEADROOM + 14);
  return { buf, off: HEADROOM + 14 };
}

/** A UDP packet from a to `dst`. */
function udp4(dst: string, extra: Partial<Parameters<typeof ipv4>[0]> = {}, len = 32) {
  return ipv4({
    src: ADDR.a,
    dst,
    protocol: PROTO.UDP,
    payload: udp(ADDR.a, dst, 40000, 9, len),
    ...extra,
  });
}

const FAR4 = "203.0.113.5";

const V4_CASES: DropCase<RouterLab>[] = [
  {
    reason: R.MALFORMED,
    counter: "malformedPacketsReceived",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { version: 5 })),
  },
  {
    reason: R.BAD_CHECKSUM,
    counter: "checksumErrors",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { checksum: 0x1234 })),
  },
  {
    reason: R.INVALID_ADDRESS,
    counter: "invalidAddressesReceived",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { src: "127.0.0.1" })),
  },
  {
    reason: R.FIREWALL,
    counter: "firewallDropped",
    icmp: null,
    inject: (l) => {
      l.r.ipv4.hooks.prerouting = () => false;
      l.a.sendIp(udp4(ADDR.b));
    },
  },
  {
    reason: R.MULTICAST_NOT_JOINED,
    counter: "multicastNotJoinedDropped",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4("239.1.2.3")),
  },
  {
    // RFC 1812 §5.3.4: unicast in a link-layer broadcast is not forwarded.
    reason: R.NOT_FOR_US,
    counter: "notForUsDropped",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4(ADDR.b), { dstMac: new Uint8Array(6).fill(0xff) }),
  },
  {
    reason: R.BAD_OPTIONS,
    counter: "optionsDropped",
    icmp: [12, 0],
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { options: [7, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0] })),
    rest: 22 << 24,
  },
  {
    // A loose source route (RFC 791 §3.1) through r: dropped, as Linux by default.
    reason: R.SOURCE_ROUTE,
    counter: "sourceRouteDropped",
    icmp: null,
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { options: [131, 7, 4, 198, 51, 100, 10] })),
  },
  {
    reason: R.UNKNOWN_PROTOCOL,
    counter: "unknownProtocolReceived",
    icmp: [3, 2],
    inject: (l) =>
      l.a.sendIp(ipv4({ src: ADDR.a, dst: ADDR.rLan, protocol: 253, payload: new Uint8Array(8) })),
  },
  {
    reason: R.TTL_EXCEEDED,
    counter: "forwarding.ttlExceeded",
    icmp: [11, 0],
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { ttl: 1 })),
    rest: 0,
  },
  {
    reason: R.NO_ROUTE,
    counter: "forwarding.noRoute",
    icmp: [3, 0],
    inject: (l) => l.a.sendIp(udp4(FAR4)),
  },
  {
    reason: R.LINK_DOWN,
    counter: "forwarding.noRoute",
    icmp: [3, 1],
    inject: (l) => {
      l.rWan.close();
      l.a.sendIp(udp4(ADDR.b));
    },
  },
  ...([
    ["blackhole", R.BLACKHOLE_ROUTE, "forwarding.blackholeDropped", null],
    ["unreachable", R.UNREACHABLE_ROUTE, "forwarding.unreachableRouteDropped", [3, 0]],
    ["prohibit", R.PROHIBIT_ROUTE, "forwarding.prohibitRouteDropped", [3, 13]],
  ] as const).map(([type, reason, counter, icmp]) => ({
    reason,
    counter,
    icmp,
    inject: (l: RouterLab) => {
      addRoute(l.r, l.rWan, "203.0.113.0/24", null, type);
      l.a.sendIp(udp4(FAR4));
    },
  })),
  {
    reason: R.TOO_BIG,
    counter: "forwarding.packetTooBig",
    icmp: [3, 4],
    lab: { wanMtu: 576 },
    inject: (l) => l.a.sendIp(udp4(ADDR.b, { df: true }, 1000)),
    rest: 576,
  },
  {
    reason: R.OUTPUT_NO_ROUTE,
    counter: "outputNoRoute",
    icmp: null,
    inject: (l) => {
      const p = localPacket(
        ipv4({
          src: ADDR.rWan,
          dst: FAR4,
          protocol: PROTO.UDP,
          payload: udp(ADDR.rWan, FAR4, 1, 9, 8),
        }),
      );
      assert.equal(l.r.ipv4.output(p.buf, p.off), false);
    },
  },
  {
    // Linux tells the local sender with an error from ourselves.
    reason: R.OUTPUT_TOO_BIG,
    counter: "outputTooBig",
    icmp: [3, 4],
    lab: { wanMtu: 576 },
    inject: (l) => {
      const p = localPacket(
        ipv4({
          src: ADDR.rWan,
          dst: ADDR.b,
          protocol: PROTO.UDP,
          df: true,
          payload: udp(ADDR.rWan, ADDR.b, 1, 9, 1000),
        }),
      );
      assert.equal(l.r.ipv4.output(p.buf, p.off), false);
    },
    rest: 576,
  },
];

const V6_CASES: DropCase<RouterLab6>[] = [
  {
    reason: R.MALFORMED,
    counter: "malformedPacketsReceived",
    icmp: null,
    inject: (l) =>
      l.a.send(ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, 1, 9),
        payloadLength: 200,
      })),
  },
  {
    reason: R.INVALID_ADDRESS,
    counter: "invalidAddressesReceived",
    icmp: null,
    inject: (l) =>
      l.a.send(
        ip6({
          src: "ff02::1",
          dst: ADDR6.b,
          proto: NH.UDP,
          payload: udp6("ff02::1", ADDR6.b, 1, 9),
        }),
      ),
  },
  {
    reason: R.FIREWALL,
    counter: "firewallDropped",
    icmp: null,
    inject: (l) => {
      l.r.ipv6.hooks.prerouting = () => false;
      l.a.send(udpTo6(ADDR6.b));
    },
  },
  {
    reason: R.MULTICAST_NOT_JOINED,
    counter: "multicastNotJoinedDropped",
    icmp: null,
    inject: (l) => l.a.send(udpTo6("ff0e::1234")),
  },
  {
    reason: R.NOT_FOR_US,
    counter: "notForUsDropped",
    icmp: null,
    lab: { forwarding: false },
    inject: (l) => l.a.send(udpTo6(ADDR6.b)),
  },
  {
    reason: R.OPTIONS_DISCARD,
    counter: "optionsDropped",
    icmp: null,
    inject: (l) => l.a.send(udpTo6(ADDR6.rLan, [destOpts(...unknownOption(1))])),
  },
  {
    reason: R.OPTIONS_PARAMETER_PROBLEM,
    counter: "optionsDropped",
    icmp: [4, 2],
    inject: (l) => l.a.send(udpTo6(ADDR6.rLan, [destOpts(...unknownOption(2))])),
    rest: 42,
  },
  {
    reason: R.UNKNOWN_PROTOCOL,
    counter: "unknownProtocolReceived",
    icmp: [4, 1],
    inject: (l) =>
      l.a.send(ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto: 253, payload: new Uint8Array(8) })),
    rest: 6,
  },
  {
    reason: R.ROUTING_HEADER,
    counter: "routingHeaderDropped",
    icmp: [4, 0],
    inject: (l) => l.a.send(udpTo6(ADDR6.rLan, [routing(0, 1)])),
    rest: 42,
  },
  {
    // RFC 8200 §4.7: a chain that ends in No Next Header has nothing to deliver.
    reason: R.NO_NEXT_HEADER,
    counter: "noNextHeaderReceived",
    icmp: null,
    inject: (l) =>
      l.a.send(ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto: 59, payload: new Uint8Array(8) })),
  },
  {
    // RFC 4862 §5.4: an echo request to a tentative address is discarded.
    reason: R.TENTATIVE_ADDRESS,
    counter: "tentativeDropped",
    icmp: null,
    inject: (l) => {
      const t = "2001:db8:1::77";
      l.r.ipv6.addAddress(l.rLan, parseIpv6(t), 64);
      l.a.send(ip6({ src: ADDR6.a, dst: t, proto: NH.ICMP6, payload: echo6(ADDR6.a, t) }));
    },
  },
  {
    reason: R.FRAGMENT_BAD_LENGTH,
    counter: "fragmentsMalformed",
    icmp: [4, 0],
    inject: (l) => l.a.send(fragmentToR(NH.UDP, 13, frag(0, true, 7))),
    rest: 4,
  },
  {
    reason: R.FRAGMENT_TOO_LONG,
    counter: "fragmentsMalformed",
    icmp: [4, 0],
    inject: (l) => l.a.send(fragmentToR(NH.UDP, 16, frag(65528, false, 8))),
    rest: 42,
  },
  {
    // RFC 7112: a first fragment whose TCP header is cut.
    reason: R.FRAGMENT_INCOMPLETE_CHAIN,
    counter: "fragmentsMalformed",
    icmp: [4, 3],
    inject: (l) => l.a.send(fragmentToR(NH.TCP, 16, frag(0, true, 9))),
    rest: 0,
  },
  {
    reason: R.FRAGMENT_OVERLAP,
    counter: "fragmentOverlapsDropped",
    icmp: null,
    inject: (l) => {
      for (const off of [0, 8]) {
        l.a.send(fragmentToR(NH.UDP, 16, frag(off, true, 10)));
      }
    },
  },
  {
    reason: R.TTL_EXCEEDED,
    counter: "forwarding.ttlExceeded",
    icmp: [3, 0],
    inject: (l) =>
      l.a.send(ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, 1, 9),
        hopLimit: 1,
      })),
    rest: 0,
  },
  {
    reason: R.NO_ROUTE,
    counter: "forwarding.noRoute",
    icmp: [1, 0],
    inject: (l) => l.a.send(udpTo6(ADDR6.far)),
  },
  {
    reason: R.LINK_DOWN,
    counter: "forwarding.noRoute",
    icmp: [1, 0],
    inject: (l) => {
      l.rWan.close();
      l.a.send(udpTo6(ADDR6.b));
    },
  },
  ...([
    ["blackhole", R.BLACKHOLE_ROUTE, "forwarding.blackholeDropped", null],
    ["unreachable", R.UNREACHABLE_ROUTE, "forwarding.unreachableRouteDropped", [1, 0]],
    ["prohibit", R.PROHIBIT_ROUTE, "forwarding.prohibitRouteDropped", [1, 1]],
  ] as const).map(([type, reason, counter, icmp]) => ({
    reason,
    counter,
    icmp,
    inject: (l: RouterLab6) => {
      route6(l.r, l.rWan, "2001:db8:99::/48", null, type);
      l.a.send(udpTo6(ADDR6.far));
    },
  })),
  {
    reason: R.TOO_BIG,
    counter: "forwarding.packetTooBig",
    icmp: [2, 0],
    lab: { wanMtu: 1280 },
    inject: (l) =>
      l.a.send(ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.UDP,
        payload: udp6(ADDR6.a, ADDR6.b, 1, 9, 1400),
      })),
    rest: 1280,
  },
  {
    reason: R.LINK_LOCAL_SOURCE,
    counter: "forwarding.linkLocalNotForwarded",
    icmp: [1, 2],
    inject: (l) =>
      l.a.send(
        ip6({
          src: ADDR6.aLL,
          dst: ADDR6.b,
          proto: NH.UDP,
          payload: udp6(ADDR6.aLL, ADDR6.b, 1, 9),
        }),
      ),
  },
  {
    reason: R.LINK_LOCAL_DESTINATION,
    counter: "forwarding.linkLocalNotForwarded",
    icmp: null,
    inject: (l) => l.a.send(udpTo6("fe80::99")),
  },
  {
    // An NS for b, addressed to b through r: link control is never forwarded.
    reason: R.LINK_CONTROL,
    counter: "forwarding.linkControlNotForwarded",
    icmp: null,
    inject: (l) =>
      l.a.send(ip6({
        src: ADDR6.a,
        dst: ADDR6.b,
        proto: NH.ICMP6,
        hopLimit: 255,
        payload: ns(ADDR6.a, ADDR6.b, ADDR6.b),
      })),
  },
  {
    reason: R.OUTPUT_NO_ROUTE,
    counter: "outputNoRoute",
    icmp: null,
    inject: (l) => {
      const p = localPacket(
        ip6({
          src: ADDR6.rWan,
          dst: ADDR6.far,
          proto: NH.UDP,
          payload: udp6(ADDR6.rWan, ADDR6.far, 1, 9),
        }),
      );
      assert.equal(l.r.ipv6.output(p.buf, p.off), false);
    },
  },
  {
    // wan0 without any address: nothing to send to ff02::1 from.
    reason: R.OUTPUT_NO_SOURCE,
    counter: "outputNoSource",
    icmp: null,
    inject: (l) => {
      const st = l.r.ipv6.nicState(l.rWan)!;
      for (const a of [...st.addresses]) l.r.ipv6.removeAddress(l.rWan, a.address);
      const p = localPacket(
        ip6({ src: "::", dst: "ff02::1", proto: NH.UDP, payload: udp6("::", "ff02::1", 1, 9) }),
      );
      assert.equal(l.r.ipv6.output(p.buf, p.off, { nic: l.rWan }), false);
    },
  },
];

/** A fragment from a to r: `n` data bytes of `proto` behind the Fragment header `f`. */
function fragmentToR(proto: number, n: number, f: ReturnType<typeof frag>): Uint8Array {
  return ip6({ src: ADDR6.a, dst: ADDR6.rLan, proto, payload: pattern6(n), ext: [f] });
}

/** A UDP packet from a to `dst`, with extension headers. */
function udpTo6(dst: string, ext: ReturnType<typeof frag>[] = []): Uint8Array {
  return ip6({ src: ADDR6.a, dst, proto: NH.UDP, payload: udp6(ADDR6.a, dst, 1, 9), ext });
}

/** An ICMP error as the test saw it: where it arrived, type, code, rest. */
interface SeenError {
  type: number;
  code: number;
  rest: number;
}

interface Family<L> {
  name: "ipv4" | "ipv6";
  icmpStats: "icmpv4" | "icmpv6";
  table: Record<number, DropRule>;
  cases: DropCase<L>[];
  build(opts: object): L & { r: Stack; clock: ManualClock };
  /** Errors a received since frame `since`, and those r sent to itself. */
  errorsAt(lab: L, since: number): SeenError[];
  received(lab: L): number;
  listenLocal(lab: L, into: SeenError[]): void;
}

const ICMPV4_ERRORS = new Set([3, 4, 5, 11, 12]);
const ICMPV6_ERRORS = new Set([1, 2, 3, 4]);

const V4: Family<RouterLab> = {
  name: "ipv4",
  icmpStats: "icmpv4",
  table: IPV4_DROPS as unknown as Family<RouterLab>["table"],
  cases: V4_CASES,
  build: (o) => routerLab(o as RouterLabOptions),
  received: (l) => l.a.received.length,
  errorsAt: (l, since) =>
    l.a.icmp(undefined, since).map((f) => {
      const m = readIpv4(f, 14).payload;
      return { type: m[0]!, code: m[1]!, rest: new DataView(m.buffer, m.byteOffset).getUint32(4) };
    }).filter((e) => ICMPV4_ERRORS.has(e.type)),
  listenLocal: (l, into) =>
    l.r.ipv4.icmp.listeners.add((e) => {
      if (ICMPV4_ERRORS.has(e.type)) into.push({ type: e.type, code: e.code, rest: e.mtu });
    }),
};

const V6: Family<RouterLab6> = {
  name: "ipv6",
  icmpStats: "icmpv6",
  table: IPV6_DROPS as unknown as Family<RouterLab6>["table"],
  cases: V6_CASES,
  build: (o) => routerLab6(o as RouterLab6Options),
  received: (l) => l.a.received.length,
  errorsAt: (l, since) =>
    l.a.icmp6NoControl(since).map(readIcmp6).filter((m) => ICMPV6_ERRORS.has(m.type)).map((m) => ({
      type: m.type,
      code: m.code,
      rest: m.rest,
    })),
  listenLocal: (l, into) =>
    l.r.ipv6.icmp.listeners.add((e) => {
      if (ICMPV6_ERRORS.has(e.type)) into.push({ type: e.type, code: e.code, rest: 0 });
    }),
};

function runFamily<L>(f: Family<L>) {
  Deno.test(`${f.name} drop table: each reason moves exactly its counter and sends exactly its error`, async (t) => {
    const reasons = Object.keys(f.table).map(Number).sort((a, b) => a - b);
    await t.step("every reason of the table has a case, and every case a reason", () => {
      const cased = f.cases.map((c) => c.reason).sort((a, b) => a - b);
      assert.deepEqual(
        cased.map((r) => DROP_REASON_NAMES[r]),
        reasons.map((r) => DROP_REASON_NAMES[r]),
      );
    });
    const counters = new Set(reasons.map((r) => `${f.name}.${f.table[r]!.counter}`));
    for (const c of f.cases) {
      const rule = f.table[c.reason]!;
      const what = rule.icmp === null ? "no error" : `ICMP ${rule.icmp.type}/${rule.icmp.code}`;
      await t.step(`${DROP_REASON_NAMES[c.reason]}: ${rule.counter} +1, ${what}`, () => {
        // The table says what this test says, written independently.
        assert.equal(rule.counter, c.counter, "the table's counter");
        assert.deepEqual(
          rule.icmp === null ? null : [rule.icmp.type, rule.icmp.code],
          c.icmp === null ? null : [...c.icmp],
        );
        const lab = f.build(c.lab ?? {});
        const local: SeenError[] = [];
        f.listenLocal(lab, local);
        const since = f.received(lab);
        const d = watch(lab.r);
        c.inject(lab);
        lab.clock.advance(1);
        const delta = d();
        const mine = `${f.name}.${rule.counter}`;
        for (const k of counters) {
          assert.equal(
            delta[k] ?? 0,
            k === mine ? 1 : 0,
            `counter ${k} (changed: ${JSON.stringify(delta)})`,
          );
        }
        const errors = [...f.errorsAt(lab, since), ...local];
        if (rule.icmp === null) {
          assert.deepEqual(errors, [], "no ICMP error");
          assert.equal(delta[`${f.icmpStats}.errorsSent`] ?? 0, 0);
          return;
        }
        assert.equal(errors.length, 1, `exactly one error: ${JSON.stringify(errors)}`);
        assert.equal(delta[`${f.icmpStats}.errorsSent`], 1);
        const e = errors[0]!;
        assert.deepEqual([e.type, e.code], [rule.icmp.type, rule.icmp.code]);
        if (c.rest !== undefined && local.length === 0) {
          assert.equal(e.rest, c.rest >>> 0, "rest of header");
        }
        if (c.rest !== undefined && local.length > 0 && f.name === "ipv4") {
          assert.equal(e.rest, c.rest);
        }
      });
    }
  });
}

runFamily(V4);
runFamily(V6);
