/**
 * DNS services: the caching forwarder for the LAN.
 *
 * @module
 */
export * from "./forwarder.ts";
