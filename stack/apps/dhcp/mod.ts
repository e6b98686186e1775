/**
 * DHCP services: the DHCPv4 server and client, and where it keeps its leases.
 *
 * @module
 */
export * from "./server4.ts";
export * from "./client4.ts";
export * from "./lease_store.ts";
export * from "./server6.ts";
export * from "./client6.ts";
export * from "./delegation.ts";
