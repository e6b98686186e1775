/**
 * TCP: the connection engine ({@link TcpConnection}), the demultiplexer
 * and listeners ({@link Tcp}), congestion control and byte rings.
 *
 * @module
 */
export * from "./tcp.ts";
export * from "./connection.ts";
export * from "./congestion.ts";
export * from "./ring.ts";
export * from "./seq.ts";
