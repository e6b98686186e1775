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
  describeIcmpv6Error,
  ping,
  type PingError,
  type PingOptions,
  type PingReply,
  type PingResult,
  type ProbeTarget,
  traceroute,
  type TracerouteHop,
  type TracerouteOptions,
  udpProbe,
  type UdpProbeOptions,
} from "./apps/ping.ts";
export * from "./apps/dhcp/mod.ts";
export * from "./apps/dns/mod.ts";
export {
  Ipv6,
  type Ipv6AddressState,
  type Ipv6InterfaceAddress,
  type Ipv6NicState,
  type Ipv6Settings,
} from "./ipv6/ipv6.ts";
export { type Icmpv6Event } from "./ipv6/icmp.ts";
export * from "./ipv6/address_selection.ts";
export * from "./ipv6/interface_id.ts";
export * from "./transport/mod.ts";
export * from "./ipv6/ra.ts";
export * from "./ipv6/slaac.ts";
