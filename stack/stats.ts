/**
 * Named counters, nested by protocol, in the spirit of gVisor's
 * tcpip.Stats. Every field is a plain number the datapath increments; a
 * dropped packet always raises exactly one `…Dropped`/`…Received` reason.
 *
 * @module
 */

/** Counters kept per NIC. */
export interface NicStats {
  /** Frames read from the link. */
  framesReceived: number;
  /** Bytes of frames read from the link (Ethernet header included). */
  bytesReceived: number;
  /** Frames handed to the link for sending. */
  framesSent: number;
  /** Bytes of frames handed to the link. */
  bytesSent: number;
  /** Frames the link refused to send (queue full, link down, write error). */
  txErrors: number;
  /** Frames shorter than an Ethernet header. */
  runtFramesReceived: number;
  /** Frames whose destination MAC is neither ours, broadcast, nor a group we joined. */
  notForUsFramesReceived: number;
  /** Received frames with EtherType IPv4 (0x0800). */
  ipv4FramesReceived: number;
  /** Received frames with EtherType ARP (0x0806). */
  arpFramesReceived: number;
  /** Received frames with EtherType IPv6 (0x86dd). */
  ipv6FramesReceived: number;
  /** Received 802.1Q/802.1ad tagged frames, dropped: VLANs are not supported yet. */
  vlanTaggedFramesDropped: number;
  /** Received frames with an EtherType tapir does not handle, dropped. */
  unknownEtherTypeFramesDropped: number;
}

/** A zeroed {@link NicStats}. */
export function newNicStats(): NicStats {
  return {
    framesReceived: 0,
    bytesReceived: 0,
    framesSent: 0,
    bytesSent: 0,
    txErrors: 0,
    runtFramesReceived: 0,
    notForUsFramesReceived: 0,
    ipv4FramesReceived: 0,
    arpFramesReceived: 0,
    ipv6FramesReceived: 0,
    vlanTaggedFramesDropped: 0,
    unknownEtherTypeFramesDropped: 0,
  };
}

/** IPv4 counters. */
export interface Ipv4Stats {
  /** IPv4 packets handed to the IPv4 layer. */
  packetsReceived: number;
  /** Packets too short, with a version other than 4, IHL below 5, or a total length that does not fit. */
  malformedPacketsReceived: number;
  /** Packets whose header checksum is wrong. */
  checksumErrors: number;
  /** Packets with a loopback, multicast, broadcast or class E source, or a loopback destination, on a non-loopback NIC (martians). */
  invalidAddressesReceived: number;
  /** Packets whose options are malformed (answered with Parameter Problem). */
  malformedOptionsReceived: number;
  /** Packets delivered to a local protocol (after reassembly). */
  packetsDelivered: number;
  /** Packets neither for a local address nor forwardable (forwarding off on the ingress NIC). */
  notForUsDropped: number;
  /** Multicast packets for groups tapir did not join. */
  multicastNotJoinedDropped: number;
  /** Packets forwarded to the next hop (or queued for its resolution). */
  packetsForwarded: number;
  /** Forwarded packets whose TTL ran out (answered with Time Exceeded). */
  ttlExceeded: number;
  /** Forwarded packets with no route (answered with Destination Unreachable). */
  noRoute: number;
  /** Packets that hit a blackhole route (dropped silently). */
  blackholeDropped: number;
  /** Packets that hit an unreachable route (answered with Net Unreachable). */
  unreachableRouteDropped: number;
  /** Packets that hit a prohibit route (answered with Admin Prohibited). */
  prohibitRouteDropped: number;
  /** Forwarded packets too big for the egress MTU with DF set (answered with Fragmentation Needed). */
  fragmentationNeeded: number;
  /** Packets fragmented on output (forwarded or local). */
  packetsFragmented: number;
  /** Fragments sent. */
  fragmentsCreated: number;
  /** Packets that could not be fragmented (pool exhausted, MTU below 68). */
  fragmentationFailed: number;
  /** ICMP redirects sent (RFC 1812 §5.2.7.2). */
  redirectsSent: number;
  /** Locally generated packets sent. */
  packetsSent: number;
  /** Local packets with no route to their destination. */
  outputNoRoute: number;
  /** Packets for an unknown transport protocol (answered with Protocol Unreachable). */
  unknownProtocolReceived: number;
  /** GSO super-frames segmented in software for a link without offloads. */
  gsoSegmented: number;
  /** GSO super-frames that could not be segmented (not TCP, or malformed), dropped. */
  gsoDropped: number;
  /** Packets dropped by a firewall hook. */
  firewallDropped: number;
  /** TCP resets sent for segments to closed ports (there is no TCP endpoint yet). */
  tcpResetsSent: number;
}

/** ICMPv4 counters. */
export interface Icmpv4Stats {
  /** ICMP messages received for local delivery. */
  messagesReceived: number;
  /** ICMP messages shorter than their header, or with a bad checksum. */
  malformedReceived: number;
  /** Echo requests answered. */
  echoRequestsAnswered: number;
  /** Echo replies received (handed to pingers). */
  echoRepliesReceived: number;
  /** Error messages received (handed to pingers and sockets). */
  errorsReceived: number;
  /** Error messages sent, all kinds. */
  errorsSent: number;
  /** Errors not sent because the original was an ICMP error, a broadcast/multicast, a non-initial fragment, or had an invalid source (RFC 1122 §3.2.2). */
  errorsSuppressed: number;
  /** Errors not sent because the token bucket was empty. */
  errorsRateLimited: number;
}

/** ARP counters. */
export interface ArpStats {
  /** ARP packets received. */
  packetsReceived: number;
  /** ARP packets that are not Ethernet/IPv4, or too short. */
  malformedReceived: number;
  /** Requests for one of our addresses, answered. */
  requestsAnswered: number;
  /** Requests for addresses that are not ours. */
  requestsNotForUs: number;
  /** Replies received. */
  repliesReceived: number;
  /** Requests sent (resolution and probes). */
  requestsSent: number;
  /** Gratuitous ARPs sent when an address came up. */
  gratuitousSent: number;
}

/** UDP counters. */
export interface UdpStats {
  /** Datagrams received for local delivery. */
  datagramsReceived: number;
  /** Datagrams shorter than their header or with a length that does not fit. */
  malformedReceived: number;
  /** Datagrams with a bad checksum. */
  checksumErrors: number;
  /** Datagrams for a port nobody listens on (answered with Port Unreachable). */
  unknownPortReceived: number;
  /** Datagrams sent by local sockets. */
  datagramsSent: number;
  /** Datagrams dropped because their socket's receive queue was full. */
  receiveQueueFullDropped: number;
  /** Datagrams a socket could not send: no route, no source address, or no buffer. */
  sendFailed: number;
}

/** IPv6 counters. */
export interface Ipv6Stats {
  /** IPv6 packets handed to the IPv6 layer. */
  packetsReceived: number;
  /** Packets too short, not version 6, with a payload length that does not fit, or a malformed header chain. */
  malformedPacketsReceived: number;
  /** Packets with a multicast or loopback source, or a loopback or unspecified destination (RFC 4291). */
  invalidAddressesReceived: number;
  /** Multicast packets for groups not joined on the receiving NIC. */
  multicastNotJoinedDropped: number;
  /** Unicast packets not for us while forwarding is off on the ingress NIC. */
  notForUsDropped: number;
  /** Packets dropped by Hop-by-Hop or Destination option processing (RFC 8200 §4.2). */
  optionsDropped: number;
  /** Packets with a Routing header whose Segments Left is not 0 (answered with Parameter Problem). */
  routingHeaderDropped: number;
  /** Packets with an unrecognized Next Header (answered with Parameter Problem code 1). */
  unknownNextHeaderReceived: number;
  /** Non-NDP packets for an address that is still tentative (RFC 4862 §5.4). */
  tentativeDropped: number;
  /** Packets delivered to a local upper layer. */
  packetsDelivered: number;
  /** Atomic fragments processed without reassembly (RFC 6946). */
  atomicFragmentsReceived: number;
  /** Fragments with a bad length, offset or incomplete header chain (answered with Parameter Problem). */
  fragmentsMalformed: number;
  /** Datagrams dropped for overlapping fragments (RFC 5722). */
  fragmentOverlapsDropped: number;
  /** Datagrams reassembled. */
  packetsReassembled: number;
  /** Packets forwarded. */
  packetsForwarded: number;
  /** Packets with a link-local source or destination that were not forwarded. */
  linkLocalNotForwarded: number;
  /** Forwarded packets whose hop limit ran out (answered with Time Exceeded). */
  hopLimitExceeded: number;
  /** Forwarded packets with no route (answered with Destination Unreachable code 0). */
  noRoute: number;
  /** Packets that hit a blackhole route. */
  blackholeDropped: number;
  /** Packets that hit an unreachable route. */
  unreachableRouteDropped: number;
  /** Packets that hit a prohibit route. */
  prohibitRouteDropped: number;
  /** Forwarded packets too big for the egress link (answered with Packet Too Big). */
  packetTooBig: number;
  /** Locally generated packets sent. */
  packetsSent: number;
  /** Local packets with no route. */
  outputNoRoute: number;
  /** Local packets for which no source address could be selected. */
  outputNoSource: number;
  /** Local packets fragmented (RFC 8200 §4.5). */
  packetsFragmented: number;
  /** Fragments sent. */
  fragmentsCreated: number;
  /** GSO super-frames segmented in software. */
  gsoSegmented: number;
  /** GSO super-frames that could not be segmented. */
  gsoDropped: number;
  /** Packets dropped by a firewall hook. */
  firewallDropped: number;
  /** TCP resets sent for segments to closed ports over IPv6 (there is no TCP endpoint yet). */
  tcpResetsSent: number;
  /** NDP and MLD messages that reached the forwarding path: link-local control is never forwarded. */
  linkControlNotForwarded: number;
}

/** ICMPv6 counters. */
export interface Icmpv6Stats {
  /** ICMPv6 messages received for local delivery. */
  messagesReceived: number;
  /** Messages too short or with a bad checksum. */
  malformedReceived: number;
  /** Echo requests answered. */
  echoRequestsAnswered: number;
  /** Echo replies received. */
  echoRepliesReceived: number;
  /** Error messages received. */
  errorsReceived: number;
  /** Error messages sent. */
  errorsSent: number;
  /** Errors not sent by the rules of RFC 4443 §2.4 (e). */
  errorsSuppressed: number;
  /** Errors not sent because the token bucket was empty. */
  errorsRateLimited: number;
  /** NDP messages that arrived in a fragmented packet, dropped (RFC 6980). */
  ndpInFragmentDropped: number;
}

/** NDP and DAD counters. */
export interface NdpStats {
  /** NDP messages received. */
  messagesReceived: number;
  /** Messages failing the validity checks of RFC 4861 §6.1/§7.1 (hop limit, code, length, options, addresses). */
  invalidDropped: number;
  /** Neighbor Solicitations received. */
  solicitationsReceived: number;
  /** Neighbor Advertisements received. */
  advertisementsReceived: number;
  /** Solicitations for a target that is not ours. */
  notForUs: number;
  /** Our own DAD probes seen again (matching nonce, RFC 7527). */
  loopedBackSolicitations: number;
  /** Advertisements for one of our preferred addresses from another node. */
  duplicateAfterDad: number;
  /** Router Advertisements received. */
  routerAdvertisementsReceived: number;
  /** Router Solicitations received. */
  routerSolicitationsReceived: number;
  /** Redirects received and ignored. */
  redirectsIgnored: number;
  /** Neighbor Solicitations sent (resolution and NUD probes). */
  solicitationsSent: number;
  /** Neighbor Advertisements sent. */
  advertisementsSent: number;
  /** DAD probes sent. */
  dadProbesSent: number;
  /** Addresses that passed DAD. */
  dadSucceeded: number;
  /** Addresses found duplicate (dadfailed). */
  dadFailed: number;
  /** Redirects sent (RFC 4861 §8.2). */
  redirectsSent: number;
}

/** MLD counters. */
export interface MldStats {
  /** Queries received. */
  queriesReceived: number;
  /** Queries from a non-link-local source or malformed, dropped. */
  invalidQueriesDropped: number;
  /** MLDv2 reports sent. */
  reportsSent: number;
}

/** Counters kept for the whole stack. */
export interface StackStats {
  /** Frames for protocols tapir does not implement yet, dropped (all NICs). */
  unknownEtherTypeFramesDropped: number;
  /** Packets dropped because the buffer pool was exhausted. */
  bufferPoolExhausted: number;
  ipv4: Ipv4Stats;
  icmpv4: Icmpv4Stats;
  arp: ArpStats;
  udp: UdpStats;
  ipv6: Ipv6Stats;
  icmpv6: Icmpv6Stats;
  ndp: NdpStats;
  mld: MldStats;
}

function zeroed<T>(keys: readonly (keyof T)[]): T {
  const o: Record<string, number> = {};
  for (const k of keys) o[k as string] = 0;
  return o as T;
}

/** A zeroed {@link StackStats}. */
export function newStackStats(): StackStats {
  return {
    unknownEtherTypeFramesDropped: 0,
    bufferPoolExhausted: 0,
    ipv4: zeroed<Ipv4Stats>([
      "packetsReceived",
      "malformedPacketsReceived",
      "checksumErrors",
      "invalidAddressesReceived",
      "malformedOptionsReceived",
      "packetsDelivered",
      "notForUsDropped",
      "multicastNotJoinedDropped",
      "packetsForwarded",
      "ttlExceeded",
      "noRoute",
      "blackholeDropped",
      "unreachableRouteDropped",
      "prohibitRouteDropped",
      "fragmentationNeeded",
      "packetsFragmented",
      "fragmentsCreated",
      "fragmentationFailed",
      "redirectsSent",
      "packetsSent",
      "outputNoRoute",
      "unknownProtocolReceived",
      "gsoSegmented",
      "gsoDropped",
      "firewallDropped",
      "tcpResetsSent",
    ]),
    icmpv4: zeroed<Icmpv4Stats>([
      "messagesReceived",
      "malformedReceived",
      "echoRequestsAnswered",
      "echoRepliesReceived",
      "errorsReceived",
      "errorsSent",
      "errorsSuppressed",
      "errorsRateLimited",
    ]),
    arp: zeroed<ArpStats>([
      "packetsReceived",
      "malformedReceived",
      "requestsAnswered",
      "requestsNotForUs",
      "repliesReceived",
      "requestsSent",
      "gratuitousSent",
    ]),
    ipv6: zeroed<Ipv6Stats>([
      "packetsReceived",
      "malformedPacketsReceived",
      "invalidAddressesReceived",
      "multicastNotJoinedDropped",
      "notForUsDropped",
      "optionsDropped",
      "routingHeaderDropped",
      "unknownNextHeaderReceived",
      "tentativeDropped",
      "packetsDelivered",
      "atomicFragmentsReceived",
      "fragmentsMalformed",
      "fragmentOverlapsDropped",
      "packetsReassembled",
      "packetsForwarded",
      "linkLocalNotForwarded",
      "hopLimitExceeded",
      "noRoute",
      "blackholeDropped",
      "unreachableRouteDropped",
      "prohibitRouteDropped",
      "packetTooBig",
      "packetsSent",
      "outputNoRoute",
      "outputNoSource",
      "packetsFragmented",
      "fragmentsCreated",
      "gsoSegmented",
      "gsoDropped",
      "firewallDropped",
      "tcpResetsSent",
      "linkControlNotForwarded",
    ]),
    icmpv6: zeroed<Icmpv6Stats>([
      "messagesReceived",
      "malformedReceived",
      "echoRequestsAnswered",
      "echoRepliesReceived",
      "errorsReceived",
      "errorsSent",
      "errorsSuppressed",
      "errorsRateLimited",
      "ndpInFragmentDropped",
    ]),
    ndp: zeroed<NdpStats>([
      "messagesReceived",
      "invalidDropped",
      "solicitationsReceived",
      "advertisementsReceived",
      "notForUs",
      "loopedBackSolicitations",
      "duplicateAfterDad",
      "routerAdvertisementsReceived",
      "routerSolicitationsReceived",
      "redirectsIgnored",
      "solicitationsSent",
      "advertisementsSent",
      "dadProbesSent",
      "dadSucceeded",
      "dadFailed",
      "redirectsSent",
    ]),
    mld: zeroed<MldStats>(["queriesReceived", "invalidQueriesDropped", "reportsSent"]),
    udp: zeroed<UdpStats>([
      "datagramsReceived",
      "malformedReceived",
      "checksumErrors",
      "unknownPortReceived",
      "datagramsSent",
      "receiveQueueFullDropped",
      "sendFailed",
    ]),
  };
}
