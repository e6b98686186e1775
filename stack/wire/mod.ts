/**
 * Packet formats without state: views and `Repr`s that read and write
 * header fields in a {@link PacketBuffer}, addresses, and checksums.
 *
 * @module
 */
export * from "./packet_buffer.ts";
export * from "./ip_address.ts";
export * from "./mac_address.ts";
export * from "./checksum.ts";
export * from "./ethernet.ts";
export * from "./arp.ts";
export * from "./ipv4.ts";
export * from "./ipv4_options.ts";
export * from "./icmpv4.ts";
export * from "./udp.ts";
export * from "./dhcpv4.ts";
export * from "./dhcpv6.ts";
export * from "./dns.ts";
export * from "./dnr.ts";
export * from "./tcp.ts";
export * from "./ipv6.ts";
export * from "./ipv6_ext.ts";
export * from "./icmpv6.ts";
export * from "./ndp.ts";
export * from "./mld.ts";
