/**
 * The IPv4 drop table: for each reason the IPv4 paths return, the counter
 * it moves and the ICMP error it sends (RFC 792, RFC 1122 §3.2.2, RFC 1812
 * §5.2–5.3, RFC 1191), as Linux's ip_rcv / ip_forward / ip_route answer.
 *
 * @module
 */
import {
  COMMON_DROPS,
  DropReason as R,
  type DropTable,
  type SharedDropReason,
} from "../ip/drop.ts";
import { Icmpv4Code, Icmpv4Type } from "../wire/icmpv4.ts";

/** The reasons an IPv4 path may return. */
export type Ipv4DropReason =
  | SharedDropReason
  | typeof R.BAD_CHECKSUM
  | typeof R.BAD_OPTIONS
  | typeof R.SOURCE_ROUTE
  | typeof R.OUTPUT_TOO_BIG;

const unreachable = (code: number) => ({ type: Icmpv4Type.DEST_UNREACHABLE, code });
/** RFC 792: the Parameter Problem pointer is the first byte of the rest-of-header. */
const pointer = (p: number) => p << 24;
/** RFC 1191: the next-hop MTU in the low 16 bits. */
const mtu = (m: number) => m & 0xffff;

/** What each IPv4 drop reason does. */
export const IPV4_DROPS: DropTable<Ipv4DropReason> = {
  ...COMMON_DROPS,
  [R.BAD_CHECKSUM]: { counter: "checksumErrors", icmp: null },
  [R.BAD_OPTIONS]: {
    counter: "optionsDropped",
    icmp: { type: Icmpv4Type.PARAMETER_PROBLEM, code: 0 },
    rest: pointer,
  },
  // RFC 7126 §4.3.3.3 / RFC 1812 §5.2.4.1: source-routed packets are
  // discarded silently, as Linux does by default (accept_source_route=0).
  [R.SOURCE_ROUTE]: { counter: "sourceRouteDropped", icmp: null },
  // RFC 1122 §3.2.2.1.
  [R.UNKNOWN_PROTOCOL]: {
    counter: "unknownProtocolReceived",
    icmp: unreachable(Icmpv4Code.PROTOCOL_UNREACHABLE),
  },
  // RFC 1812 §5.3.1.
  [R.TTL_EXCEEDED]: {
    counter: "forwarding.ttlExceeded",
    icmp: { type: Icmpv4Type.TIME_EXCEEDED, code: 0 },
  },
  [R.NO_ROUTE]: { counter: "forwarding.noRoute", icmp: unreachable(Icmpv4Code.NET_UNREACHABLE) },
  [R.LINK_DOWN]: { counter: "forwarding.noRoute", icmp: unreachable(Icmpv4Code.HOST_UNREACHABLE) },
  [R.UNREACHABLE_ROUTE]: {
    counter: "forwarding.unreachableRouteDropped",
    icmp: unreachable(Icmpv4Code.NET_UNREACHABLE),
  },
  [R.PROHIBIT_ROUTE]: {
    counter: "forwarding.prohibitRouteDropped",
    icmp: unreachable(Icmpv4Code.ADMIN_PROHIBITED),
  },
  [R.TOO_BIG]: {
    counter: "forwarding.packetTooBig",
    icmp: unreachable(Icmpv4Code.FRAGMENTATION_NEEDED),
    rest: mtu,
  },
  // Linux tells the local sender with an error from ourselves.
  [R.OUTPUT_TOO_BIG]: {
    counter: "outputTooBig",
    icmp: unreachable(Icmpv4Code.FRAGMENTATION_NEEDED),
    rest: mtu,
  },
};
