/**
 * DHCP services: the DHCPv4 server and where it keeps its leases.
 *
 * @module
 */
export * from "./server4.ts";
export * from "./lease_store.ts";
