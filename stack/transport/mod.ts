/**
 * The transport layer: one UDP for both families with its port
 * demultiplexer, and sockets with Deno's shapes on top of it.
 *
 * @module
 */
export * from "./udp.ts";
export * from "./datagram.ts";
