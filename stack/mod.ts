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
