/**
 * The IPv6 drop table: for each reason the IPv6 paths return, the counter
 * it moves and the ICMPv6 error it sends (RFC 4443 §3, RFC 8200 §4–5,
 * RFC 7112, RFC 4291 §2.5.6), as Linux's ip6_rcv / ip6_forward answer.
 *
 * @module
 */
import {
  COMMON_DROPS,
  DropReason as R,
  type DropTable,
  type SharedDropReason,
} from "../ip/drop.ts";
import { Icmpv6Code, Icmpv6Type } from "../wire/icmpv6.ts";

/** The reasons an IPv6 path may return. */
export type Ipv6DropReason =
  | SharedDropReason
  | typeof R.OPTIONS_DISCARD
  | typeof R.OPTIONS_PARAMETER_PROBLEM
  | typeof R.ROUTING_HEADER
  | typeof R.TENTATIVE_ADDRESS
  | typeof R.FRAGMENT_BAD_LENGTH
  | typeof R.FRAGMENT_TOO_LONG
  | typeof R.FRAGMENT_INCOMPLETE_CHAIN
  | typeof R.FRAGMENT_OVERLAP
  | typeof R.LINK_LOCAL_SOURCE
  | typeof R.LINK_LOCAL_DESTINATION
  | typeof R.LINK_CONTROL
  | typeof R.OUTPUT_NO_SOURCE
  | typeof R.NO_NEXT_HEADER;

const unreachable = (code: number) => ({ type: Icmpv6Type.DEST_UNREACHABLE, code });
const parameterProblem = (code: number) => ({ type: Icmpv6Type.PARAMETER_PROBLEM, code });
/** RFC 4443 §3.4: the pointer is the whole 32-bit field. */
const asIs = (p: number) => p;

/** What each IPv6 drop reason does. */
export const IPV6_DROPS: DropTable<Ipv6DropReason> = {
  ...COMMON_DROPS,
  [R.OPTIONS_DISCARD]: { counter: "optionsDropped", icmp: null },
  // RFC 8200 §4.7: the chain ends and whatever follows is ignored (Linux
  // consumes it too); no transport gets it.
  [R.NO_NEXT_HEADER]: { counter: "noNextHeaderReceived", icmp: null },
  // RFC 8200 §4.2: code 2, even to a multicast destination for action 10
  // (the option walk turns action 11 to a multicast destination into a discard).
  [R.OPTIONS_PARAMETER_PROBLEM]: {
    counter: "optionsDropped",
    icmp: parameterProblem(Icmpv6Code.UNRECOGNIZED_OPTION),
    rest: asIs,
    toMulticast: true,
  },
  // RFC 8200 §4: an unrecognized Next Header, code 1 at the field that names it.
  [R.UNKNOWN_PROTOCOL]: {
    counter: "unknownProtocolReceived",
    icmp: parameterProblem(Icmpv6Code.UNRECOGNIZED_NEXT_HEADER),
    rest: asIs,
  },
  // RFC 8200 §4.4: code 0 at the Routing Type.
  [R.ROUTING_HEADER]: {
    counter: "routingHeaderDropped",
    icmp: parameterProblem(Icmpv6Code.ERRONEOUS_HEADER_FIELD),
    rest: asIs,
  },
  [R.TENTATIVE_ADDRESS]: { counter: "tentativeDropped", icmp: null },
  // RFC 8200 §4.5: code 0 at the Payload Length ...
  [R.FRAGMENT_BAD_LENGTH]: {
    counter: "fragmentsMalformed",
    icmp: parameterProblem(Icmpv6Code.ERRONEOUS_HEADER_FIELD),
    rest: asIs,
  },
  // ... or at the Fragment Offset.
  [R.FRAGMENT_TOO_LONG]: {
    counter: "fragmentsMalformed",
    icmp: parameterProblem(Icmpv6Code.ERRONEOUS_HEADER_FIELD),
    rest: asIs,
  },
  // RFC 7112 §5: code 3.
  [R.FRAGMENT_INCOMPLETE_CHAIN]: {
    counter: "fragmentsMalformed",
    icmp: parameterProblem(Icmpv6Code.INCOMPLETE_HEADER_CHAIN),
  },
  [R.FRAGMENT_OVERLAP]: { counter: "fragmentOverlapsDropped", icmp: null },
  [R.TTL_EXCEEDED]: {
    counter: "forwarding.ttlExceeded",
    icmp: { type: Icmpv6Type.TIME_EXCEEDED, code: Icmpv6Code.HOP_LIMIT_EXCEEDED },
  },
  [R.NO_ROUTE]: { counter: "forwarding.noRoute", icmp: unreachable(Icmpv6Code.NO_ROUTE) },
  [R.LINK_DOWN]: { counter: "forwarding.noRoute", icmp: unreachable(Icmpv6Code.NO_ROUTE) },
  // Linux answers an `unreachable` route with code 0 (no route).
  [R.UNREACHABLE_ROUTE]: {
    counter: "forwarding.unreachableRouteDropped",
    icmp: unreachable(Icmpv6Code.NO_ROUTE),
  },
  [R.PROHIBIT_ROUTE]: {
    counter: "forwarding.prohibitRouteDropped",
    icmp: unreachable(Icmpv6Code.ADMIN_PROHIBITED),
  },
  // RFC 8200 §5: routers never fragment; Packet Too Big with the link MTU,
  // also about a multicast destination (RFC 4443 §2.4 (e.3)).
  [R.TOO_BIG]: {
    counter: "forwarding.packetTooBig",
    icmp: { type: Icmpv6Type.PACKET_TOO_BIG, code: 0 },
    rest: asIs,
    toMulticast: true,
  },
  // RFC 4291 §2.5.6, RFC 4443 §3.1 code 2.
  [R.LINK_LOCAL_SOURCE]: {
    counter: "forwarding.linkLocalNotForwarded",
    icmp: unreachable(Icmpv6Code.BEYOND_SCOPE),
  },
  [R.LINK_LOCAL_DESTINATION]: { counter: "forwarding.linkLocalNotForwarded", icmp: null },
  [R.LINK_CONTROL]: { counter: "forwarding.linkControlNotForwarded", icmp: null },
  [R.OUTPUT_NO_SOURCE]: { counter: "outputNoSource", icmp: null },
};
