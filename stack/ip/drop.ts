/**
 * Why an IP layer did not deliver, forward or send a packet, and what each
 * reason does: the counter it moves (exactly one) and the ICMP error it
 * sends (or none). The receive, forward and output paths return a
 * {@link DropReason} instead of counting and answering inline; one
 * {@link Dropper} per family applies its table (gVisor's
 * `handleForwardingError` and `icmpReason`, Linux's SKB_DROP_REASON_*).
 *
 * Every error quotes the packet as the layer holds it when it gives up:
 * as it arrived for receive and forward (the TTL not yet decremented), the
 * reassembled datagram for local delivery, our own packet for output.
 *
 * @module
 */
import type { Nic } from "../nic.ts";
import type { PacketBuffer } from "../wire/packet_buffer.ts";
import type { RouteType } from "../route_table.ts";
import type { IcmpErrorSender } from "./icmp_error.ts";
import type { IpForwardingStats, IpStats } from "../stats.ts";

/**
 * The reasons of both families. A family's table names the ones its paths
 * return; `OK` (0) is not a drop.
 */
export const DropReason = {
  OK: 0,
  /** Too short, wrong version, lengths that do not fit, a header chain that does not parse. */
  MALFORMED: 1,
  /** IPv4 header checksum wrong. */
  BAD_CHECKSUM: 2,
  /** A source or destination that never arrives on a wire (martians, RFC 1812 §5.3.7, RFC 4291). */
  INVALID_ADDRESS: 3,
  /** A firewall hook said DROP (the firewall sends its own REJECT). */
  FIREWALL: 4,
  /** Multicast for a group not joined on the arriving NIC. */
  MULTICAST_NOT_JOINED: 5,
  /** Not for us and not forwardable (forwarding off, link-layer broadcast, directed broadcast). */
  NOT_FOR_US: 6,
  /** IPv4 options malformed (Parameter Problem at the pointer). */
  BAD_OPTIONS: 7,
  /** IPv6 Hop-by-Hop/Destination options say discard silently (action 01, two Router Alerts). */
  OPTIONS_DISCARD: 8,
  /** IPv6 options say discard and answer (action 10/11, RFC 8200 §4.2). */
  OPTIONS_PARAMETER_PROBLEM: 9,
  /** A transport nobody handles (IPv4 Protocol Unreachable, IPv6 Parameter Problem code 1). */
  UNKNOWN_PROTOCOL: 10,
  /** IPv6 Routing header with Segments Left > 0 (no routing type is supported). */
  ROUTING_HEADER: 11,
  /** IPv6 packet other than NS/NA to a tentative address (RFC 4862 §5.4). */
  TENTATIVE_ADDRESS: 12,
  /** IPv6 non-last fragment whose length is not a multiple of 8. */
  FRAGMENT_BAD_LENGTH: 13,
  /** IPv6 fragment that would reassemble past 65535 bytes. */
  FRAGMENT_TOO_LONG: 14,
  /** IPv6 first fragment without the whole header chain (RFC 7112). */
  FRAGMENT_INCOMPLETE_CHAIN: 15,
  /** IPv6 fragments that overlap (RFC 5722): the whole datagram goes. */
  FRAGMENT_OVERLAP: 16,
  /** TTL / hop limit would reach 0. */
  TTL_EXCEEDED: 17,
  /** No route to the destination. */
  NO_ROUTE: 18,
  /** The route's interface is gone or down. */
  LINK_DOWN: 19,
  /** A blackhole route. */
  BLACKHOLE_ROUTE: 20,
  /** An unreachable route. */
  UNREACHABLE_ROUTE: 21,
  /** A prohibit route. */
  PROHIBIT_ROUTE: 22,
  /** Bigger than the egress MTU and may not be fragmented (DF, or any IPv6 packet). */
  TOO_BIG: 23,
  /** IPv6 link-local source: never leaves its link (answered with Beyond Scope). */
  LINK_LOCAL_SOURCE: 24,
  /** IPv6 link-local destination on the forwarding path. */
  LINK_LOCAL_DESTINATION: 25,
  /** NDP or MLD on the forwarding path: link control is never forwarded. */
  LINK_CONTROL: 26,
  /** A local packet with no route. */
  OUTPUT_NO_ROUTE: 27,
  /** A local IPv6 packet for which no source address could be selected. */
  OUTPUT_NO_SOURCE: 28,
  /** A local IPv4 packet bigger than the egress MTU with DF set (the error goes to ourselves). */
  OUTPUT_TOO_BIG: 29,
  /** IPv4 with a loose or strict source route option (Linux's default accept_source_route=0). */
  SOURCE_ROUTE: 30,
  /** IPv6 header chain that ends in No Next Header (59) for us: nothing to deliver (RFC 8200 §4.7). */
  NO_NEXT_HEADER: 31,
} as const;

/** One of {@link DropReason}'s values. */
export type DropReason = typeof DropReason[keyof typeof DropReason];

/** The drop reason of a route that is not unicast (a `local` route is no route to forward by). */
export function routeTypeReason(
  type: RouteType,
):
  | typeof DropReason.BLACKHOLE_ROUTE
  | typeof DropReason.UNREACHABLE_ROUTE
  | typeof DropReason.PROHIBIT_ROUTE
  | typeof DropReason.NO_ROUTE {
  switch (type) {
    case "blackhole":
      return DropReason.BLACKHOLE_ROUTE;
    case "unreachable":
      return DropReason.UNREACHABLE_ROUTE;
    case "prohibit":
      return DropReason.PROHIBIT_ROUTE;
    default:
      return DropReason.NO_ROUTE;
  }
}

/** The names of {@link DropReason}, by value (for tests and logs). */
export const DROP_REASON_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(DropReason)) names[v] = k;
  return names;
})();

/** A counter of {@link IpStats}: a field, or `forwarding.` and a field of the router part. */
export type IpCounter =
  | Exclude<keyof IpStats, "forwarding">
  | `forwarding.${keyof IpForwardingStats}`;

/** What one drop reason does in one family. */
export interface DropRule {
  /** The counter it moves by one. */
  readonly counter: IpCounter;
  /** The ICMP error it sends about the packet, or null for a silent drop. */
  readonly icmp: { readonly type: number; readonly code: number } | null;
  /**
   * The error's 32-bit rest-of-header from the value the path gives (a
   * pointer, an MTU); absent: 0.
   */
  readonly rest?: (param: number) => number;
  /**
   * The error may answer a packet to a multicast destination (IPv6 Packet
   * Too Big and option Parameter Problems, RFC 4443 §2.4 (e.3)).
   */
  readonly toMulticast?: boolean;
}

/** A family's drop table: a rule for each reason its paths return. */
export type DropTable<R extends DropReason> = { readonly [K in R]: DropRule };

/** The reasons both families drop alike: silently, moving a counter of the same name. */
export type CommonDropReason =
  | typeof DropReason.MALFORMED
  | typeof DropReason.INVALID_ADDRESS
  | typeof DropReason.FIREWALL
  | typeof DropReason.MULTICAST_NOT_JOINED
  | typeof DropReason.NOT_FOR_US
  | typeof DropReason.BLACKHOLE_ROUTE
  | typeof DropReason.OUTPUT_NO_ROUTE;

/** The forwarding and delivery reasons both families have (each with its own error). */
export type SharedDropReason =
  | CommonDropReason
  | typeof DropReason.UNKNOWN_PROTOCOL
  | typeof DropReason.TTL_EXCEEDED
  | typeof DropReason.NO_ROUTE
  | typeof DropReason.LINK_DOWN
  | typeof DropReason.UNREACHABLE_ROUTE
  | typeof DropReason.PROHIBIT_ROUTE
  | typeof DropReason.TOO_BIG;

/** The part of both families' drop tables that is the same (their stats share these names). */
export const COMMON_DROPS = {
  [DropReason.MALFORMED]: { counter: "malformedPacketsReceived", icmp: null },
  [DropReason.INVALID_ADDRESS]: { counter: "invalidAddressesReceived", icmp: null },
  [DropReason.FIREWALL]: { counter: "firewallDropped", icmp: null },
  [DropReason.MULTICAST_NOT_JOINED]: { counter: "multicastNotJoinedDropped", icmp: null },
  [DropReason.NOT_FOR_US]: { counter: "notForUsDropped", icmp: null },
  [DropReason.BLACKHOLE_ROUTE]: { counter: "forwarding.blackholeDropped", icmp: null },
  [DropReason.OUTPUT_NO_ROUTE]: { counter: "outputNoRoute", icmp: null },
} as const satisfies DropTable<CommonDropReason>;

/**
 * The one drop handler of a family: moves the reason's counter and sends
 * its error.
 */
export class Dropper<R extends DropReason> {
  /** The value the last {@link fail} gave for its error. */
  #param = 0;
  /** Per reason, the object that holds its counter and the counter's name (resolved once). */
  readonly #holder: Record<string, number>[] = [];
  readonly #key: string[] = [];

  constructor(
    readonly table: DropTable<R>,
    readonly stats: IpStats,
    readonly sendError: IcmpErrorSender,
  ) {
    for (const [reason, rule] of Object.entries<DropRule>(table)) {
      const [a, b] = rule.counter.split(".");
      const holder = (b === undefined ? stats : stats.forwarding) as unknown as Record<
        string,
        number
      >;
      this.#holder[Number(reason)] = holder;
      this.#key[Number(reason)] = b ?? a!;
    }
  }

  /** Give up with `reason`, handing its error `param` (a pointer, an MTU): a path's `return`. */
  fail(reason: R, param: number): R {
    this.#param = param;
    return reason;
  }

  /**
   * Act on what a path returned: nothing for OK, else the drop (with the
   * value of the path's {@link fail}, if it gave one).
   *
   * @returns true for OK
   */
  verdict(
    r: R | typeof DropReason.OK,
    pkt: PacketBuffer,
    ipOff: number,
    inNic: Nic | null,
  ): boolean {
    if (r === DropReason.OK) return true;
    const param = this.#param;
    this.#param = 0;
    this.drop(r as R, pkt, ipOff, inNic, param);
    return false;
  }

  /**
   * Account for a packet the layer gave up on.
   *
   * @param inNic where the packet arrived (null: generated locally)
   * @param param the value the rule's `rest` takes (a pointer, an MTU)
   */
  drop(reason: R, pkt: PacketBuffer, ipOff: number, inNic: Nic | null, param = 0): void {
    const rule = this.table[reason];
    this.#holder[reason]![this.#key[reason]!]!++;
    const e = rule.icmp;
    if (e === null) return;
    const rest = rule.rest === undefined ? 0 : rule.rest(param);
    this.sendError(pkt, ipOff, inNic, e.type, e.code, rest, rule.toMulticast === true);
  }
}
