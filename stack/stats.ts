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

/**
 * Counters of the router duties of an IP layer (RFC 1812 §5.2–5.3, RFC
 * 8200 §3–5), the same for both families (gVisor's IPForwardingStats).
 */
export interface IpForwardingStats {
  /** Packets forwarded to the next hop (or queued for its resolution). */
  packets: number;
  /** Packets whose TTL / hop limit ran out (answered with Time Exceeded). */
  ttlExceeded: number;
  /** Packets with no route, or whose route's interface is down (answered with Destination Unreachable). */
  noRoute: number;
  /** Packets that hit a blackhole route (dropped silently; local IPv4 packets too). */
  blackholeDropped: number;
  /** Packets that hit an unreachable route (answered with Net Unreachable / No Route; local IPv4 packets too). */
  unreachableRouteDropped: number;
  /** Packets that hit a prohibit route (answered with Administratively Prohibited; local IPv4 packets too). */
  prohibitRouteDropped: number;
  /** Packets too big for the egress MTU that may not be fragmented (IPv4 DF set, any IPv6 packet), answered with Fragmentation Needed / Packet Too Big. */
  packetTooBig: number;
  /** Redirects sent (RFC 1812 §5.2.7.2, RFC 4861 §8.2). */
  redirectsSent: number;
  /** IPv6: packets with a link-local source or destination, which never leave their link. */
  linkLocalNotForwarded: number;
  /** IPv6: NDP and MLD messages that reached the forwarding path: link-local control is never forwarded. */
  linkControlNotForwarded: number;
}

/**
 * Counters of an IP layer, the same shape for IPv4 and IPv6 (gVisor's
 * IPStats); a counter that names one family stays 0 in the other.
 */
export interface IpStats {
  /** Packets handed to the layer. */
  packetsReceived: number;
  /** Packets too short, of another version, with lengths that do not fit, or with a malformed IPv6 header chain. */
  malformedPacketsReceived: number;
  /** IPv4: packets whose header checksum is wrong. */
  checksumErrors: number;
  /** Packets with a source or destination that never arrives on a wire: loopback, multicast or (IPv4) broadcast and class E sources, loopback or unspecified destinations. */
  invalidAddressesReceived: number;
  /** IPv4: packets with a loose or strict source route option, dropped (Linux's default accept_source_route=0, RFC 7126 §4.3.3.3). */
  sourceRouteDropped: number;
  /** Packets dropped for their options: malformed IPv4 options (answered with Parameter Problem), IPv6 Hop-by-Hop or Destination options (RFC 8200 §4.2). */
  optionsDropped: number;
  /** IPv6: packets with a Routing header whose Segments Left is not 0 (answered with Parameter Problem). */
  routingHeaderDropped: number;
  /** Packets for a transport nobody handles (answered with Protocol Unreachable / Parameter Problem code 1). */
  unknownProtocolReceived: number;
  /** IPv6: packets for us whose header chain ends in No Next Header (59), dropped silently: nothing to deliver (RFC 8200 §4.7). */
  noNextHeaderReceived: number;
  /** IPv6: non-NDP packets for an address that is still tentative (RFC 4862 §5.4). */
  tentativeDropped: number;
  /** Packets delivered to a local transport (after reassembly). */
  packetsDelivered: number;
  /** Packets neither for a local address nor forwardable (forwarding off, a link-layer or directed broadcast). */
  notForUsDropped: number;
  /** Multicast packets for groups not joined on the arriving NIC. */
  multicastNotJoinedDropped: number;
  /** IPv6: atomic fragments processed without reassembly (RFC 6946). */
  atomicFragmentsReceived: number;
  /** IPv6: fragments with a bad length, offset or incomplete header chain (answered with Parameter Problem). */
  fragmentsMalformed: number;
  /** IPv6: datagrams dropped for overlapping fragments (RFC 5722). */
  fragmentOverlapsDropped: number;
  /** IPv6: datagrams reassembled (IPv4's are counted by its reassembler). */
  packetsReassembled: number;
  /** Locally generated packets sent. */
  packetsSent: number;
  /** Local packets with no route to their destination. */
  outputNoRoute: number;
  /** IPv6: local packets for which no source address could be selected. */
  outputNoSource: number;
  /** IPv4: local packets bigger than the egress MTU with DF set (the error goes to the local sender). */
  outputTooBig: number;
  /** Packets fragmented on output. */
  packetsFragmented: number;
  /** Fragments sent. */
  fragmentsCreated: number;
  /** IPv4: packets that could not be fragmented (pool exhausted, MTU below 68). */
  fragmentationFailed: number;
  /** GSO super-frames segmented in software for a link without offloads. */
  gsoSegmented: number;
  /** GSO super-frames that could not be segmented (not TCP, or malformed), dropped. */
  gsoDropped: number;
  /** Packets dropped by a firewall hook. */
  firewallDropped: number;
  /** TCP resets sent for segments to closed ports (there is no TCP endpoint yet). */
  tcpResetsSent: number;
  /** The router duties. */
  forwarding: IpForwardingStats;
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
  /** Messages of a type tapir neither answers nor hands on (timestamp, information, router discovery, …), discarded. */
  unknownTypeReceived: number;
  /** Echo requests to a broadcast or multicast address, not answered (Linux's icmp_echo_ignore_broadcasts). */
  broadcastEchoesIgnored: number;
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
  /** ARP packets with an operation other than request (1) or reply (2), dropped. */
  unknownOpDropped: number;
  /** ARP packets whose sender hardware address is a broadcast or multicast MAC, dropped (RFC 1812 §3.3.2). */
  groupSenderDropped: number;
  /** Requests for one of our addresses, answered. */
  requestsAnswered: number;
  /**
   * Requests for one of our addresses left unanswered: the neighbour table
   * was full and the sender had not asked in the last 2–4 s (a host asks
   * again after 1 s).
   */
  requestsUnanswered: number;
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

/** TCP counters (one set for both families). */
export interface TcpStats {
  /** Connections opened by a local connect (SYN sent; Linux's ActiveOpens). */
  activeOpens: number;
  /** Connections opened by a SYN to a listener (Linux's PassiveOpens). */
  passiveOpens: number;
  /** Connects that failed: refused by a reset or timed out in SYN-SENT. */
  attemptFails: number;
  /** Established connections ended by the peer's reset. */
  establishedResets: number;
  /** Segments delivered to a connection. */
  segmentsReceived: number;
  /** Segments sent by connections (super-frames count once). */
  segmentsSent: number;
  /** Segments sent again (RTO, fast or RACK recovery, tail loss probes). */
  retransmittedSegments: number;
  /** Resets sent by connections and listeners (not the no-socket resets, which IP counts). */
  resetsSent: number;
  /** Resets received by connections. */
  resetsReceived: number;
  /** Segments with a bad checksum, dropped. */
  checksumErrors: number;
  /** Segments shorter than a header, with a bad data offset or option list, or to a multicast or broadcast address, dropped. */
  malformedReceived: number;
  /** Segments for no connection and no listener (answered with a reset). */
  noSocketReceived: number;
  /** Segments outside the receive window, dropped (and answered with an ACK). */
  outOfWindowDropped: number;
  /** Duplicate ACKs not sent for bare out-of-window segments: one per 500 ms (tcp_invalid_ratelimit). */
  outOfWindowAcksLimited: number;
  /** Segments with an older timestamp than the connection's (PAWS, RFC 7323 §5), dropped. */
  pawsDropped: number;
  /** Challenge ACKs sent for an in-window reset or SYN, or an old ACK (RFC 5961). */
  challengeAcksSent: number;
  /** Challenge ACKs not sent: over the per-second limit (RFC 5961 §7). */
  challengeAcksLimited: number;
  /** Segments acknowledging data never sent, dropped (and answered with an ACK). */
  ackTooNewDropped: number;
  /** Segments held out of order for a hole to fill. */
  outOfOrderQueued: number;
  /** Segment bytes beyond the receive window or buffer, dropped. */
  receiveBufferFullDropped: number;
  /** Loss recoveries entered (SACK/RACK or three duplicate ACKs). */
  sackRecoveries: number;
  /** Segments RACK (RFC 8985) marked lost. */
  rackLossesDetected: number;
  /** Tail loss probes sent (RFC 8985 §7). */
  tailLossProbes: number;
  /** Retransmission timeouts of established connections. */
  timeouts: number;
  /** Zero-window probes sent by the persist timer. */
  zeroWindowProbesSent: number;
  /** Keepalive probes sent. */
  keepalivesSent: number;
  /** Connections ended because keepalive probes went unanswered. */
  keepaliveTimeouts: number;
  /** ACKs sent by the delayed-ACK timer. */
  delayedAcks: number;
  /** D-SACK blocks received (RFC 2883). */
  dsacksReceived: number;
  /** D-SACK blocks sent for duplicate data. */
  dsacksSent: number;
  /** SYN and SYN-ACK retransmissions. */
  synRetransmits: number;
  /** SYNs or handshake ACKs that found the accept queue full (Linux's ListenOverflows). */
  listenOverflows: number;
  /** SYNs and handshake ACKs a listener dropped (queue full without cookies). */
  listenDrops: number;
  /** Segments to a listener that open nothing, dropped: a reset, no SYN, SYN with FIN, or an ACK with no cookie behind it (answered with a reset). */
  listenSegmentsDropped: number;
  /** SYN-ACKs sent with a SYN cookie (the SYN queue was full). */
  synCookiesSent: number;
  /** Valid SYN cookies that made a connection. */
  synCookiesReceived: number;
  /** Handshake ACKs to a listener whose cookie did not check, answered with a reset. */
  synCookiesFailed: number;
  /** TIME-WAIT connections replaced by a newer SYN (RFC 6191). */
  timeWaitReused: number;
  /** Connections closed with unread data, or sent data after close, ended with a reset. */
  closedWithUnreadData: number;
  /** Segments that could not leave: no route, no source, no buffer, or the firewall. */
  sendFailed: number;
  /** Segments that arrived with ECN Congestion Experienced on an ECN connection. */
  ecnCeReceived: number;
  /** Congestion window reductions for an ECN-Echo (RFC 3168 §6.1.2). */
  ecnReductions: number;
  /** MSS lowered after RTOs with no ICMP: a suspected PMTU black hole (RFC 4821). */
  pmtuBlackholeFallbacks: number;
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
  /** Error messages received (a Packet Too Big ignored counts as packetTooBigIgnored instead). */
  errorsReceived: number;
  /** Informational messages of a type tapir does not handle, discarded (RFC 4443 §2.4 (b)). */
  unknownTypeReceived: number;
  /** Error messages sent. */
  errorsSent: number;
  /** Errors not sent by the rules of RFC 4443 §2.4 (e). */
  errorsSuppressed: number;
  /** Errors not sent because the token bucket was empty. */
  errorsRateLimited: number;
  /** NDP messages that arrived in a fragmented packet, dropped (RFC 6980). */
  ndpInFragmentDropped: number;
  /** Packet Too Big messages ignored: an MTU below 1280 (RFC 8201 §4), or about a packet that is not ours (RFC 5927 §4.2). */
  packetTooBigIgnored: number;
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
  /**
   * Solicitations left unanswered: the neighbour table was full and the
   * source had not solicited in the last 2–4 s (a host repeats after 1 s).
   */
  solicitationsUnanswered: number;
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
  /** Reports (MLDv1, MLDv2) and Done messages received: tapir is no querier, so it keeps no listener state from them. */
  reportsReceived: number;
  /** MLDv2 reports sent. */
  reportsSent: number;
}

/** Counters kept for the whole stack. */
export interface StackStats {
  /** Frames for protocols tapir does not implement yet, dropped (all NICs). */
  unknownEtherTypeFramesDropped: number;
  /** Packets dropped because the buffer pool was exhausted. */
  bufferPoolExhausted: number;
  ipv4: IpStats;
  icmpv4: Icmpv4Stats;
  arp: ArpStats;
  udp: UdpStats;
  tcp: TcpStats;
  ipv6: IpStats;
  icmpv6: Icmpv6Stats;
  ndp: NdpStats;
  mld: MldStats;
}

function zeroed<T>(keys: readonly (keyof T)[]): T {
  const o: Record<string, number> = {};
  for (const k of keys) o[k as string] = 0;
  return o as T;
}

/** A zeroed {@link IpStats}. */
export function newIpStats(): IpStats {
  return {
    ...zeroed<Omit<IpStats, "forwarding">>([
      "packetsReceived",
      "malformedPacketsReceived",
      "checksumErrors",
      "invalidAddressesReceived",
      "sourceRouteDropped",
      "optionsDropped",
      "routingHeaderDropped",
      "unknownProtocolReceived",
      "noNextHeaderReceived",
      "tentativeDropped",
      "packetsDelivered",
      "notForUsDropped",
      "multicastNotJoinedDropped",
      "atomicFragmentsReceived",
      "fragmentsMalformed",
      "fragmentOverlapsDropped",
      "packetsReassembled",
      "packetsSent",
      "outputNoRoute",
      "outputNoSource",
      "outputTooBig",
      "packetsFragmented",
      "fragmentsCreated",
      "fragmentationFailed",
      "gsoSegmented",
      "gsoDropped",
      "firewallDropped",
      "tcpResetsSent",
    ]),
    forwarding: zeroed<IpForwardingStats>([
      "packets",
      "ttlExceeded",
      "noRoute",
      "blackholeDropped",
      "unreachableRouteDropped",
      "prohibitRouteDropped",
      "packetTooBig",
      "redirectsSent",
      "linkLocalNotForwarded",
      "linkControlNotForwarded",
    ]),
  };
}

/** A zeroed {@link StackStats}. */
export function newStackStats(): StackStats {
  return {
    unknownEtherTypeFramesDropped: 0,
    bufferPoolExhausted: 0,
    ipv4: newIpStats(),
    icmpv4: zeroed<Icmpv4Stats>([
      "messagesReceived",
      "malformedReceived",
      "echoRequestsAnswered",
      "echoRepliesReceived",
      "errorsReceived",
      "unknownTypeReceived",
      "broadcastEchoesIgnored",
      "errorsSent",
      "errorsSuppressed",
      "errorsRateLimited",
    ]),
    arp: zeroed<ArpStats>([
      "packetsReceived",
      "malformedReceived",
      "unknownOpDropped",
      "groupSenderDropped",
      "requestsAnswered",
      "requestsUnanswered",
      "requestsNotForUs",
      "repliesReceived",
      "requestsSent",
      "gratuitousSent",
    ]),
    ipv6: newIpStats(),
    icmpv6: zeroed<Icmpv6Stats>([
      "messagesReceived",
      "malformedReceived",
      "echoRequestsAnswered",
      "echoRepliesReceived",
      "errorsReceived",
      "unknownTypeReceived",
      "errorsSent",
      "errorsSuppressed",
      "errorsRateLimited",
      "ndpInFragmentDropped",
      "packetTooBigIgnored",
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
      "solicitationsUnanswered",
      "dadProbesSent",
      "dadSucceeded",
      "dadFailed",
      "redirectsSent",
    ]),
    mld: zeroed<MldStats>([
      "queriesReceived",
      "invalidQueriesDropped",
      "reportsReceived",
      "reportsSent",
    ]),
    udp: zeroed<UdpStats>([
      "datagramsReceived",
      "malformedReceived",
      "checksumErrors",
      "unknownPortReceived",
      "datagramsSent",
      "receiveQueueFullDropped",
      "sendFailed",
    ]),
    tcp: zeroed<TcpStats>([
      "activeOpens",
      "passiveOpens",
      "attemptFails",
      "establishedResets",
      "segmentsReceived",
      "segmentsSent",
      "retransmittedSegments",
      "resetsSent",
      "resetsReceived",
      "checksumErrors",
      "malformedReceived",
      "noSocketReceived",
      "outOfWindowDropped",
      "outOfWindowAcksLimited",
      "pawsDropped",
      "challengeAcksSent",
      "challengeAcksLimited",
      "ackTooNewDropped",
      "outOfOrderQueued",
      "receiveBufferFullDropped",
      "sackRecoveries",
      "rackLossesDetected",
      "tailLossProbes",
      "timeouts",
      "zeroWindowProbesSent",
      "keepalivesSent",
      "keepaliveTimeouts",
      "delayedAcks",
      "dsacksReceived",
      "dsacksSent",
      "synRetransmits",
      "listenOverflows",
      "listenDrops",
      "listenSegmentsDropped",
      "synCookiesSent",
      "synCookiesReceived",
      "synCookiesFailed",
      "timeWaitReused",
      "closedWithUnreadData",
      "sendFailed",
      "ecnCeReceived",
      "ecnReductions",
      "pmtuBlackholeFallbacks",
    ]),
  };
}
