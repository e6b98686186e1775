/**
 * The network stack: NICs, neighbor resolution, IPv4/IPv6, ICMP, routing,
 * forwarding, firewall and transport, driven by an injected {@link Clock}
 * and {@link Random}, writing to {@link LinkEndpoint}s.
 *
 * @module
 */
export * from "./clock.ts";
export * from "./random.ts";
export * from "./link_endpoint.ts";
export * from "./stats.ts";
export * from "./nic.ts";
export * from "./stack.ts";
export * from "./route_table.ts";
export * from "./neighbor_cache.ts";
export * from "./reassembly.ts";
export { type FragmentError, fragmentIpv4 } from "./ipv4/fragmentation.ts";
export * from "./token_bucket.ts";
export { Ipv4, type Ipv4Hook, type Ipv4Hooks, type Ipv4InterfaceAddress } from "./ipv4/ipv4.ts";
export { type Icmpv4Event, icmpv4IsError } from "./ipv4/icmp.ts";
export {
  describeIcmpv4Error,
  ping,
  type PingError,
  type PingOptions,
  type PingReply,
  type PingResult,
  traceroute,
  type TracerouteHop,
  type TracerouteOptions,
} from "./ipv4/ping.ts";
export { Udp, type UdpDatagram, type UdpSocket } from "./udp.ts";
