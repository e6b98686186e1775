/**
 * The transport layer: UDP and TCP for both families with their
 * demultiplexers, and sockets with Deno's shapes on top of them.
 *
 * @module
 */
export * from "./udp.ts";
export * from "./datagram.ts";
export * from "./tcp/mod.ts";
export * from "./stream.ts";
